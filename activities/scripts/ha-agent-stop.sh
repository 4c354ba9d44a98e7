# AgentStop: stops the member's HA agent, which stops its PostgreSQL (fast) and deletes its member
# key on the way out (a planned stop: it releases the leader key too, were it to hold it). With
# disable=1 the agent is also kept from starting at the host's next start: the systemd unit is
# disabled, or the boot script moves out of /etc/pigwf/boot.d into /etc/pigwf/disabled (kept,
# not deleted). Unchanged when the agent is stopped already.
# Inputs: conf (config path), bin (the agent binary), disable (1 or 0), and pgEnv's PGBIN, PGDATA.
if [ -d /run/systemd/system ] && [ -f /etc/systemd/system/pg-ha-agent.service ]; then
  if systemctl is-active -q pg-ha-agent; then systemctl stop pg-ha-agent; changed "stopped pg-ha-agent (it stopped PostgreSQL)"; fi
  if [ "$disable" = 1 ] && systemctl is-enabled -q pg-ha-agent 2>/dev/null; then
    systemctl disable -q pg-ha-agent; changed "disabled pg-ha-agent: it does not start at the next boot"
  fi
else
  # The supervisor forwards its signal to the agent and ends; an agent without one gets it itself.
  # Never both: a second signal could cut the agent's clean shutdown short.
  sup=$(pgrep -f "^$bin supervise --config $conf" || true)
  run=$(pgrep -f "^$bin run --config $conf" || true)
  if [ -n "$sup" ]; then kill $sup 2>/dev/null || true; elif [ -n "$run" ]; then kill $run 2>/dev/null || true; fi
  if [ -n "$sup$run" ]; then
    # The agent's shutdown stops PostgreSQL within 60 s, then deletes its member key.
    for i in $(seq 1 900); do pgrep -f "^$bin (supervise|run) --config $conf" >/dev/null || break; sleep 0.1; done
    pgrep -f "^$bin (supervise|run) --config $conf" >/dev/null && fail "pg-ha-agent did not stop within 90 s: see /pg/log/ha-agent/ha-agent.log"
    changed "stopped pg-ha-agent (it stopped PostgreSQL)"
  fi
  boot=/etc/pigwf/boot.d/50-pg-ha-agent
  if [ "$disable" = 1 ] && [ -f "$boot" ]; then
    mkdir -p /etc/pigwf/disabled; mv "$boot" /etc/pigwf/disabled/50-pg-ha-agent
    changed "moved $boot to /etc/pigwf/disabled: the agent does not start at the next boot"
  fi
fi
# A clone the agent was running may outlive it (the tool is its child, not PostgreSQL): it would
# go on writing into $PGDATA once the data directory is moved aside. It is stopped here, by pid.
clones=$(pgrep -u postgres -f "pg_basebackup -D $PGDATA( |\$)" || true)
if [ -n "$clones" ]; then
  kill $clones 2>/dev/null || true
  for i in $(seq 1 50); do pgrep -u postgres -f "pg_basebackup -D $PGDATA( |\$)" >/dev/null || break; sleep 0.1; done
  changed "stopped the unfinished clone (pg_basebackup) the stopped agent left"
fi
if runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  fail "PostgreSQL still runs in $PGDATA with its agent stopped: stop it by hand (pg_ctl -D $PGDATA stop -m fast) and run again"
fi
note "pg-ha-agent and PostgreSQL are stopped"
