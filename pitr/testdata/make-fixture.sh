#!/bin/bash
# Builds the pgbackrest info JSON fixtures in this directory from a throwaway PostgreSQL 15 and
# pgBackRest 2.45 (throwaway.sh). Run as root from the repository root (it uses runuser -u
# postgres):
#   OUT_FINAL=pitr/testdata bash pitr/testdata/make-fixture.sh
# KEEP=1 keeps the temp dir for inspection; PostgreSQL is stopped with pg_ctl -m fast either way.
set -euo pipefail
OUT_FINAL=${OUT_FINAL:?set OUT_FINAL}
. "$(dirname "$0")/throwaway.sh"
throwaway_dir pitr-fixture
as_pg mkdir "$T/out"

# Cluster 1: three backups (full, incr, diff) on timeline 1, WAL switched after each.
pgbackrest_conf 1 55432
as_pg $BIN/initdb -D "$T/data-1" -U postgres --auth=trust >/dev/null
pg_settings 1 archive
pg_start 1
pb 1 stanza-create
pb 1 check
pb 1 --type=full backup
sql 1 "create table t(id int primary key, at timestamptz default clock_timestamp()); insert into t(id) select generate_series(1,1000);"
sql 1 "select pg_create_restore_point('before_incr');"
sql 1 "select pg_switch_wal();" >/dev/null
pb 1 --type=incr backup
sql 1 "insert into t(id) select generate_series(1001,2000);"
sql 1 "select pg_switch_wal();" >/dev/null
pb 1 --type=diff backup
sql 1 "insert into t(id) select generate_series(2001,3000);"
sql 1 "select pg_switch_wal();" >/dev/null
sleep 2
pb 1 info --output=json > "$T/out/info-one-timeline.json"

# Cluster 2: a copy restored to a time between the incr and the diff backup, promoted (timeline
# 2), archiving into the same stanza; one full backup on timeline 2.
TARGET=$(sql 1 "select max(at) from t where id <= 1500;")
pg_stop 1
pgbackrest_conf 2 55433
pb 2 --type=time "--target=$TARGET" --target-action=promote restore
pg_settings 2 archive
pg_start 2
wait_promoted 2
sql 2 "insert into t(id) select generate_series(5001,5500);"
sql 2 "select pg_switch_wal();" >/dev/null
pb 2 --type=full backup
sql 2 "insert into t(id) select generate_series(5501,6000);"
sql 2 "select pg_switch_wal();" >/dev/null
sleep 2
pb 2 info --output=json > "$T/out/info-two-timelines.json"
cp "$T/repo/archive/pitr/15-1/00000002.history" "$T/out/two-timelines-00000002.history"
# Not fixtures, printed for the record: where the copy stopped and what the archive holds.
echo "restore target: $TARGET"
grep -h "recovery stopping\|selected new timeline" "$T/data-2.log" || true
ls -R "$T/repo/archive/pitr/"
pg_stop 2
mkdir -p "$OUT_FINAL"
cp "$T/out/"* "$OUT_FINAL/"
echo done
