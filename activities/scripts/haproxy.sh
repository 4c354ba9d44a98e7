# PGService: installs the cluster's HAProxy configuration and runs HAProxy with it. A changed
# file is checked by `haproxy -c` before it replaces the running one, and HAProxy is reloaded,
# not restarted: the new process takes the listening sockets from the old one, which keeps
# serving its sessions until they end, so no connection is refused or cut.
# Inputs: conf (config path), want (its content), rundir (pid file and admin socket),
# ports (the ports that must listen afterwards, space-separated), boot and bwant (the boot
# service that runs HAProxy where no systemd does, and its content).
command -v haproxy >/dev/null 2>&1 || fail "haproxy is not installed on this host: add haproxy to node_packages and run node-init (Debian package haproxy)"
mkdir -p "$(dirname "$conf")" "$rundir"; chmod 700 "$rundir"
reload=0
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
  printf '%s\n' "$want" > "$conf.pigwf-new"; chmod 644 "$conf.pigwf-new"
  if ! out=$(haproxy -c -q -f "$conf.pigwf-new" 2>&1); then
    rm -f "$conf.pigwf-new"
    fail "haproxy -c refused the new configuration, the running one is unchanged: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-600)"
  fi
  [ -f "$conf" ] && cp -p "$conf" "$conf.pigwf-prev"
  mv "$conf.pigwf-new" "$conf"; changed "wrote $conf"; reload=1
fi

# listening: every service port is bound.
listening() {
  for p in $ports; do ss -Hltn "sport = :$p" | grep -q . || return 1; done
}

if [ -d /run/systemd/system ]; then
  systemctl is-enabled -q haproxy 2>/dev/null || { systemctl enable -q haproxy; changed "enabled haproxy"; }
  if ! systemctl is-active -q haproxy; then systemctl start haproxy || fail "haproxy did not start: see journalctl -u haproxy"; changed "started haproxy"
  elif [ "$reload" = 1 ]; then systemctl reload haproxy || fail "haproxy did not reload: see journalctl -u haproxy"; changed "reloaded haproxy"; fi
else
  if [ "$(cat $boot 2>/dev/null)" != "$bwant" ]; then mkdir -p /etc/pigwf/boot.d /var/log/pigwf; printf '%s\n' "$bwant" > $boot; chmod 755 $boot; changed "wrote $boot"; fi
  master=$(cat "$rundir/haproxy.pid" 2>/dev/null | head -1)
  # A pid file from before a host restart may name another process now.
  if [ -n "$master" ] && [ "$(cat /proc/$master/comm 2>/dev/null)" != haproxy ]; then master=""; fi
  if [ -z "$master" ]; then
    setsid $boot < /dev/null > /dev/null 2>&1 &
    for i in $(seq 1 50); do master=$(cat "$rundir/haproxy.pid" 2>/dev/null | head -1); [ -n "$master" ] && [ "$(cat /proc/$master/comm 2>/dev/null)" = haproxy ] && break; master=""; sleep 0.1; done
    [ -n "$master" ] || fail "haproxy did not start: $(tail -n 5 /var/log/pigwf/haproxy.log 2>/dev/null | tr '\n' ' ' | cut -c1-600) (/var/log/pigwf/haproxy.log)"
    changed "started haproxy"
  elif [ "$reload" = 1 ]; then
    before=$(pgrep -P "$master" | sort | tr '\n' ' ')
    kill -USR2 "$master"
    new=""
    for i in $(seq 1 100); do
      for w in $(pgrep -P "$master"); do case " $before " in *" $w "*) ;; *) new=$w;; esac; done
      [ -n "$new" ] && break; sleep 0.05
    done
    [ -n "$new" ] || fail "haproxy did not start a worker with the new configuration: see /var/log/pigwf/haproxy.log"
    changed "reloaded haproxy (worker $new; the old one finishes its sessions)"
  else
    note "haproxy is running with this configuration"
  fi
fi
for i in $(seq 1 50); do listening && break; sleep 0.1; done
listening || fail "haproxy does not listen on every service port ($ports): see /var/log/pigwf/haproxy.log"
