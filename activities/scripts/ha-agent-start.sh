# AgentStart: starts the member's HA agent as it is installed (pg-cluster-create's HAAgent wrote
# its configuration and service); unchanged when it runs. Its PostgreSQL starts with it: a replica
# whose data directory is empty is first cloned from the leader by the agent.
# Inputs: conf (config path), bin (the agent binary).
if [ -d /run/systemd/system ] && [ -f /etc/systemd/system/pg-ha-agent.service ]; then
  if systemctl is-active -q pg-ha-agent; then note "pg-ha-agent is running"; exit 0; fi
  systemctl start pg-ha-agent; changed "started pg-ha-agent"; exit 0
fi
boot=/etc/pigwf/boot.d/50-pg-ha-agent
[ -x "$boot" ] || fail "no $boot on this node: the HA agent is not installed here (pigwf start pg-cluster-create --cluster $PIGWF_CLUSTER installs it)"
if pgrep -f "^$bin supervise --config $conf" >/dev/null; then note "pg-ha-agent is running"; exit 0; fi
setsid $boot < /dev/null > /dev/null 2>&1 &
for i in $(seq 1 50); do pgrep -f "^$bin supervise --config $conf" >/dev/null && break; sleep 0.1; done
pgrep -f "^$bin supervise --config $conf" >/dev/null || fail "pg-ha-agent did not start: see /pg/log/ha-agent/supervise.log"
changed "started pg-ha-agent"
