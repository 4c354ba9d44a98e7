# PITRRestore: restores a backup set into this member's (empty) data directory with the target's
# recovery settings, once per run. Inputs: pgEnv's PGBIN, PGDATA, PIGWF_CLUSTER; key; set (the
# backup label); args (pgbackrest restore options, one per line).
mkdir -p /var/lib/pigwf
exec 9> /var/lib/pigwf/pitr-restore.lock
# A retry after the worker died waits here for the earlier attempt (sshd does not stop a
# session's command when its connection drops), then finds its marker: never a second restore.
flock -w 3600 9 || fail "another restore holds /var/lib/pigwf/pitr-restore.lock"
marker=/var/lib/pigwf/pitr-$key.restored
if [ -f "$marker" ]; then fact backup "$(cat "$marker")"; note "restored already by this run (backup $(cat "$marker"))"; exit 0; fi
[ -d "$PGDATA.before-pitr-$key" ] || fail "$PGDATA was not kept aside as $PGDATA.before-pitr-$key: refusing to restore over it"
if runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then fail "PostgreSQL runs in $PGDATA: refusing to restore"; fi
if [ -d "$PGDATA" ] && [ -n "$(ls -A "$PGDATA")" ]; then
  partial="$PGDATA.pitr-partial-$(date -u +%Y%m%dT%H%M%SZ)"
  mv "$PGDATA" "$partial"; changed "moved an unfinished restore aside to $partial"
fi
mkdir -p "$PGDATA"; chown postgres:postgres "$PGDATA"; chmod 700 "$PGDATA"
set --
while IFS= read -r a; do [ -n "$a" ] && set -- "$@" "$a"; done <<ARGS
$args
ARGS
start=$(date +%s%N)
log=/pg/log/pitr-$key-restore.log
if ! runuser -u postgres -- pgbackrest --stanza="$PIGWF_CLUSTER" --set="$set" "$@" restore > "$log" 2>&1; then
  tail -n 5 "$log" >&2; exit 1
fi
[ -f "$PGDATA/recovery.signal" ] || fail "pgbackrest restore left no recovery.signal in $PGDATA (see $log)"
echo "$set" > "$marker"
# The journal line first: when the worker died meanwhile, writing to its closed session ends this
# script (SIGPIPE) at the first output, and the journal must still say the restore happened.
changed "restored backup $set into $PGDATA in $(( ($(date +%s%N) - start) / 1000000 )) ms ($(du -sh "$PGDATA" | cut -f1))"
fact backup "$set"
