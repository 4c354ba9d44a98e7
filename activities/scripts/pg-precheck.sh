# PgPrecheck: checks a node before anything is changed and reports every problem as a
# "problem.<what>" fact, so the workflow can list all nodes' problems together.
# Inputs: ca (the CA marker file), unmanaged (the message for a node without it), node_cert and
# node_key (the certificate PostgreSQL serves; empty in a plain-text lab), etcd_count,
# etcd_probes (one "host|port|host:port" line per etcd endpoint), and pgEnv's PGBIN, PGDATA,
# PGPORT, PIGWF_CLUSTER.
problem() { echo "fact: problem.$1=$2"; }
[ -f "$ca" ] || problem managed "$unmanaged"
# PostgreSQL with ssl=on does not start without its certificate and a key it may read.
if [ -f "$ca" ] && [ -n "$node_cert" ]; then
  { [ -f "$node_cert" ] && runuser -u postgres -- test -r "$node_key"; } ||
    problem tls "no node certificate $node_cert with a key postgres can read ($node_key): run pigwf start node-init --cluster $PIGWF_CLUSTER again (it issues them)"
fi
[ -x "$PGBIN/postgres" ] || problem binaries "no PostgreSQL server at $PGBIN: run node-init (package postgresql-15)"
sysid=$(pg_sysid)
[ -f /var/lib/pigwf/pg-cluster ] && fact marker "$(cat /var/lib/pigwf/pg-cluster)"
if [ -n "$sysid" ]; then fact sysid "$sysid"; note "data directory $PGDATA holds system $sysid"
elif [ -d "$PGDATA" ] && [ -n "$(ls -A "$PGDATA" 2>/dev/null)" ]; then problem datadir "$PGDATA is not empty and holds no PostgreSQL cluster: move it away"
fi
if listener=$(ss -Htlnp "sport = :$PGPORT" 2>/dev/null) && [ -n "$listener" ]; then
  pid=$(head -n1 "$PGDATA/postmaster.pid" 2>/dev/null || true)
  if [ -n "$pid" ] && echo "$listener" | grep -q "pid=$pid,"; then fact port ours; note "port $PGPORT is held by this data directory's PostgreSQL"
  else problem port "port $PGPORT is in use by another process ($(echo "$listener" | grep -o 'users:(("[^"]*"' | head -n1 | cut -d'"' -f2)): stop it or set pg_port"; fi
fi
reach=0; unreach=""
while IFS='|' read -r host port hostport; do
  [ -n "$hostport" ] || continue
  timeout 2 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null && reach=$((reach+1)) || unreach="$unreach $hostport"
done <<ETCD
$etcd_probes
ETCD
if [ "$etcd_count" -gt 0 ] && [ "$reach" -eq 0 ]; then problem etcd "no etcd endpoint answers from this node:$unreach"
elif [ -n "$unreach" ]; then note "etcd unreachable from here:$unreach"; fi
