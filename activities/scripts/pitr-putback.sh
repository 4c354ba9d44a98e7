# PITRPutBack: compensation of a restore that did not reach its promotion. Puts this member's
# original data directory back where it was; whatever a restore left in its place is kept as
# <data_dir>.pitr-failed-<key>, never deleted. Inputs: pgEnv's PGBIN, PGDATA; key.
mkdir -p /var/lib/pigwf
exec 9> /var/lib/pigwf/pitr-restore.lock
flock -w 3600 9 || fail "a restore still holds /var/lib/pigwf/pitr-restore.lock"
aside="$PGDATA.before-pitr-$key"
[ -f "/var/lib/pigwf/pitr-$key.promoted" ] && fail "this run promoted the restored data already: it goes forward, not back"
if [ ! -e "$aside" ]; then note "nothing was kept aside by this run: $PGDATA is as it was"; exit 0; fi
if runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w -t 120 stop >/dev/null
  changed "stopped the recovering PostgreSQL"
fi
if [ -d "$PGDATA" ] && [ -n "$(ls -A "$PGDATA")" ]; then
  mv "$PGDATA" "$PGDATA.pitr-failed-$key"; changed "kept what the restore left as $PGDATA.pitr-failed-$key"
elif [ -d "$PGDATA" ]; then
  rmdir "$PGDATA"
fi
mv "$aside" "$PGDATA"
[ -f "/var/lib/pigwf/pitr-$key.restored" ] && mv "/var/lib/pigwf/pitr-$key.restored" "/var/lib/pigwf/pitr-$key.undone"
changed "put the original data directory back in $PGDATA"
