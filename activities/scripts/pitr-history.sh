# PITRFinalize, first part, on the promoted member: the new timeline's history file must be in
# the archive, or the next promotion (or PITR) would reuse the timeline id. Starts PostgreSQL
# again when a retry finds it stopped before that. Prints the fact running=1 when it runs.
# Inputs: pgEnv's PGBIN, PGDATA, PIGWF_CLUSTER; repo; key; tl (the new timeline id).
running() { runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }
hist=$(printf '%08X.history' "$tl")
archived() { runuser -u postgres -- sh -c 'ls "$1"/archive/"$2"/*/"$3"' _ "$repo" "$PIGWF_CLUSTER" "$hist" >/dev/null 2>&1; }
[ -f "/var/lib/pigwf/pitr-$key.promoted" ] || fail "this run has not promoted $PGDATA"
if ! archived; then
  if ! running; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -l "/pg/log/pitr-$key.log" -o "-c logging_collector=off" -w -t 600 start >/dev/null
    changed "started PostgreSQL again to archive $hist"
  fi
  for i in $(seq 1 600); do archived && break; sleep 0.1; done
  archived || fail "$hist was not archived within 60 s: see pg_stat_archiver and /pg/log/pitr-$key.log on $(hostname)"
  changed "$hist archived"
else
  note "$hist is archived"
fi
running && fact running 1
true
