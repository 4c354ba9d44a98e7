# HAAgent: writes the agent's configuration and service and (re)starts the agent when either
# changed. A systemd unit where systemd runs; otherwise a boot script in /etc/pigwf/boot.d (run
# at host start), started now as well.
# Inputs: conf (config path), want (its content), restart (1: the binary was just replaced),
# bin (the agent binary), leader (1: this member's agent answers /primary with 200).
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
  mkdir -p /etc/pigwf; printf '%s\n' "$want" > "$conf.pigwf-tmp"; chmod 644 "$conf.pigwf-tmp"; mv "$conf.pigwf-tmp" "$conf"
  changed "wrote $conf"; restart=1
fi
mkdir -p /pg/log/ha-agent; chown postgres:postgres /pg/log/ha-agent
if [ -d /run/systemd/system ]; then
  unit=/etc/systemd/system/pg-ha-agent.service
  uwant="[Unit]
Description=pigwf HA agent (owns PostgreSQL on this node)
After=network-online.target
[Service]
User=postgres
ExecStart=$bin supervise --config $conf
Restart=always
RestartSec=100ms
KillMode=mixed
[Install]
WantedBy=multi-user.target"
  if [ "$(cat $unit 2>/dev/null)" != "$uwant" ]; then printf '%s\n' "$uwant" > $unit; systemctl daemon-reload; changed "wrote $unit"; restart=1; fi
  systemctl is-enabled -q pg-ha-agent || { systemctl enable -q pg-ha-agent; changed "enabled pg-ha-agent"; }
  if ! systemctl is-active -q pg-ha-agent; then systemctl start pg-ha-agent; changed "started pg-ha-agent"
  elif [ "$restart" = 1 ]; then systemctl restart pg-ha-agent; changed "restarted pg-ha-agent"; fi
  exit 0
fi
boot=/etc/pigwf/boot.d/50-pg-ha-agent
bwant="#!/bin/sh
# managed by pigwf: runs the HA agent at host start (this host has no systemd)
exec runuser -u postgres -- $bin supervise --config $conf >> /pg/log/ha-agent/supervise.log 2>&1"
if [ "$(cat $boot 2>/dev/null)" != "$bwant" ]; then mkdir -p /etc/pigwf/boot.d; printf '%s\n' "$bwant" > $boot; chmod 755 $boot; changed "wrote $boot"; fi
running=$(pgrep -f "^$bin supervise --config $conf" || true)
# A running agent whose binary was replaced since it started (its /proc exe is "(deleted)") runs
# old code: restart it too.
for p in $running $(pgrep -f "^$bin run --config $conf" || true); do
  case "$(readlink /proc/$p/exe 2>/dev/null)" in *"(deleted)") stale=1;; esac
done
[ "${stale:-0}" = 1 ] && { restart=1; note "the running agent predates the installed binary"; }
if [ -n "$running" ] && [ "$restart" = 1 ] && [ "$leader" = 1 ]; then
  # Restarting the leader's agent restarts its PostgreSQL (it dies with its agent): a failover.
  note "pg-ha-agent on the current leader runs an older binary or configuration: not restarted now; move the leader away first (pigwf start switchover), then run again"
  restart=0
fi
if [ -n "$running" ] && [ "$restart" = 1 ]; then
  kill $running; for i in $(seq 1 100); do pgrep -f "^$bin supervise" >/dev/null || break; sleep 0.1; done
  running=""; note "stopped the agent to restart it"
fi
if [ -z "$running" ]; then
  setsid $boot < /dev/null > /dev/null 2>&1 &
  for i in $(seq 1 50); do pgrep -f "^$bin supervise" >/dev/null && break; sleep 0.1; done
  pgrep -f "^$bin supervise" >/dev/null || fail "pg-ha-agent did not start: see /pg/log/ha-agent/supervise.log"
  changed "started pg-ha-agent"
else
  note "pg-ha-agent is running"
fi
