# PITRFinalize, last part, on the promoted member (its history file and WAL archived): a clean
# stop and no recovery settings left behind, so the agent starts it as the leader with archiving
# on. Inputs: pgEnv's PGBIN, PGDATA, PGPORT; key; tl (the new timeline id).
if runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  # A fast stop writes the shutdown checkpoint itself.
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 600 stop >/dev/null
  changed "stopped PostgreSQL cleanly"
fi
conf="$PGDATA/postgresql.auto.conf"
keys='restore_command|recovery_target|recovery_target_time|recovery_target_lsn|recovery_target_xid|recovery_target_name|recovery_target_inclusive|recovery_target_timeline|recovery_target_action|archive_mode'
if grep -Eq "^[[:space:]]*($keys)[[:space:]]*=" "$conf"; then
  grep -Ev "^[[:space:]]*($keys)[[:space:]]*=" "$conf" > "$conf.pigwf-tmp" || true
  chown postgres:postgres "$conf.pigwf-tmp"; chmod 600 "$conf.pigwf-tmp"; mv "$conf.pigwf-tmp" "$conf"
  changed "removed the recovery settings pgBackRest wrote to postgresql.auto.conf"
fi
for f in recovery.signal standby.signal; do
  if [ -e "$PGDATA/$f" ]; then rm -f "$PGDATA/$f"; changed "removed $f"; fi
done
cd=$("$PGBIN/pg_controldata" -D "$PGDATA")
state=$(echo "$cd" | sed -n 's/^Database cluster state: *//p')
[ "$state" = "shut down" ] || fail "PostgreSQL in $PGDATA is '$state', not cleanly shut down"
fact checkpoint_lsn "$(echo "$cd" | sed -n 's/^Latest checkpoint location: *//p')"
fact timeline "$(echo "$cd" | sed -n "s/^Latest checkpoint's TimeLineID: *//p")"
note "$PGDATA: shut down on timeline $tl, archiving on, no recovery settings left"
