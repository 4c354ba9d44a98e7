# PgClone: makes this replica's data directory a pg_basebackup copy of the primary, once, and
# never of a member in recovery.
# Inputs: want (the cluster's system identifier), primary (host to clone from), conninfo (the
# libpq connection string to it: the replication user, whose password is in ~postgres/.pgpass,
# and TLS verified against the deployment CA), and pgEnv's PGBIN, PGDATA, PGPORT, PIGWF_CLUSTER.
done_file=/var/lib/pigwf/clone.done
exec 9> /var/lib/pigwf/clone.lock
flock -w 1800 9 || fail "another clone holds /var/lib/pigwf/clone.lock"
sysid=$(pg_sysid)
if [ -n "$sysid" ] && [ "$sysid" != "$want" ]; then fail "$PGDATA holds system $sysid, not this cluster's $want: move it away (pigwf never deletes a data directory)"; fi
# Complete data of this system: a finished clone, or a former primary's initdb (the marker).
if [ -n "$sysid" ] && { [ "$(cat $done_file 2>/dev/null)" = "$want" ] || [ "$(cat /var/lib/pigwf/pg-cluster 2>/dev/null)" = "$PIGWF_CLUSTER $want" ]; }; then
  fact sysid "$sysid"; note "$PGDATA holds system $sysid"; exit 0
fi
# Only from a primary: a member in recovery may lag the leader (it was demoted by a failover since
# the run read the leader). The run then fails; run it again to clone from the current leader.
if [ "$(runuser -u postgres -- env PGCONNECT_TIMEOUT=10 psql -X -w -A -t -d "$conninfo dbname=postgres" -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = t ]; then
  fail "$primary is in recovery, not the leader (a failover since the leader was read?): not cloned from it; run again to clone from the current leader"
fi
if [ -d "$PGDATA" ] && [ -n "$(ls -A "$PGDATA")" ]; then
  aside="$PGDATA.pigwf-partial-$(date -u +%Y%m%dT%H%M%SZ)"
  mv "$PGDATA" "$aside"; changed "moved an unfinished clone aside to $aside"
fi
mkdir -p "$PGDATA"; chown postgres:postgres "$PGDATA"; chmod 700 "$PGDATA"
start=$(date +%s)
if ! runuser -u postgres -- "$PGBIN/pg_basebackup" -d "$conninfo" -D "$PGDATA" -X stream -c fast --no-password > /var/lib/pigwf/clone.log 2>&1; then
  tail -n 5 /var/lib/pigwf/clone.log >&2; exit 1
fi
sysid=$(pg_sysid)
[ "$sysid" = "$want" ] || fail "the clone holds system $sysid, not $want: is $primary this cluster's primary?"
echo "$want" > $done_file
echo "$PIGWF_CLUSTER $sysid" > /var/lib/pigwf/pg-cluster
fact sysid "$sysid"
changed "cloned $PGDATA from $primary in $(( $(date +%s) - start )) s ($(du -sh "$PGDATA" | cut -f1))"
