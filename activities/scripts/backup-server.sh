# BackupServer, after backupConfScript (which set confchanged): pgBackRest's TLS server
# (`pgbackrest server`, as postgres) running with the configuration just written, restarted when
# it changed, and listening on its port. A systemd unit where systemd runs; otherwise a boot
# script in /etc/pigwf/boot.d (run at host start), started now as well.
# Inputs: port (the server's port).
bin=$(command -v pgbackrest) || fail "pgbackrest is not installed on this host: add pgbackrest to node_packages and run node-init"
listening() { ss -Hltn "sport = :$port" | grep -q .; }
if [ -d /run/systemd/system ]; then
  unit=/etc/systemd/system/pgbackrest-server.service
  uwant="[Unit]
Description=pgBackRest TLS server (pigwf: backups from a standby reach the leader through it)
After=network-online.target
[Service]
User=postgres
ExecStart=$bin server
Restart=always
RestartSec=1
[Install]
WantedBy=multi-user.target"
  if [ "$(cat $unit 2>/dev/null)" != "$uwant" ]; then printf '%s\n' "$uwant" > $unit; systemctl daemon-reload; changed "wrote $unit"; confchanged=1; fi
  systemctl is-enabled -q pgbackrest-server || { systemctl enable -q pgbackrest-server; changed "enabled pgbackrest-server"; }
  if ! systemctl is-active -q pgbackrest-server; then systemctl start pgbackrest-server; changed "started pgbackrest-server"
  elif [ "$confchanged" = 1 ]; then systemctl restart pgbackrest-server; changed "restarted pgbackrest-server"; fi
else
  boot=/etc/pigwf/boot.d/60-pgbackrest-server
  bwant="#!/bin/sh
# managed by pigwf: runs pgBackRest's TLS server at host start (this host has no systemd)
exec runuser -u postgres -- $bin server >> /pg/log/pgbackrest/server.out 2>&1"
  if [ "$(cat $boot 2>/dev/null)" != "$bwant" ]; then mkdir -p /etc/pigwf/boot.d; printf '%s\n' "$bwant" > $boot; chmod 755 $boot; changed "wrote $boot"; fi
  running=$(pgrep -u postgres -fx "$bin server" || true)
  if [ -n "$running" ] && [ "$confchanged" = 1 ]; then
    kill $running; for i in $(seq 1 50); do pgrep -u postgres -fx "$bin server" >/dev/null || break; sleep 0.1; done
    running=""; note "stopped pgbackrest server to start it with the new configuration"
  fi
  if [ -z "$running" ]; then
    setsid $boot < /dev/null > /dev/null 2>&1 &
    changed "started pgbackrest server"
  fi
fi
for i in $(seq 1 50); do listening && break; sleep 0.1; done
listening || fail "pgbackrest server does not listen on port $port: see /pg/log/pgbackrest/server.out or journalctl -u pgbackrest-server"
if [ "$confchanged" = 0 ]; then note "pgbackrest server listens on port $port"; fi
