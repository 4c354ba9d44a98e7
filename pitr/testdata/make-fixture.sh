#!/bin/bash
# Builds the pgbackrest info JSON fixtures in this directory from a throwaway PostgreSQL 15 and
# pgBackRest 2.45 in a temp dir (own port, socket dir, repo, lock and log paths; never
# /etc/pgbackrest.conf). Run as root (it uses runuser -u postgres):
#   OUT_FINAL=pitr/testdata bash pitr/testdata/make-fixture.sh
# KEEP=1 keeps the temp dir for inspection; PostgreSQL is stopped with pg_ctl -m fast either way.
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
T=$(mktemp -d /tmp/pitr-fixture.XXXXXX)
chown postgres:postgres "$T"
OUT_FINAL=${OUT_FINAL:?set OUT_FINAL}
PORT=${PORT:-55432}
PORT2=${PORT2:-55433}
cat > "$T/pgbackrest.conf" <<CONF
[global]
repo1-path=$T/repo
lock-path=$T/lock
log-path=$T/log
log-level-console=warn
log-level-file=info
start-fast=y
archive-async=n
compress-type=gz

[pitr]
pg1-path=$T/data
pg1-port=$PORT
pg1-socket-path=$T/sock
CONF
cat > "$T/pgbackrest2.conf" <<CONF
[global]
repo1-path=$T/repo
lock-path=$T/lock2
log-path=$T/log2
log-level-console=warn
start-fast=y
compress-type=gz

[pitr]
pg1-path=$T/data2
pg1-port=$PORT2
pg1-socket-path=$T/sock2
CONF
chown postgres:postgres "$T"/*.conf
as_pg() { runuser -u postgres -- "$@"; }
cleanup() {
  for d in "$T/data" "$T/data2"; do
    [ -f "$d/postmaster.pid" ] && runuser -u postgres -- $BIN/pg_ctl -D "$d" -m fast -w stop >/dev/null 2>&1 || true
  done
  if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
as_pg mkdir -p "$T/repo" "$T/lock" "$T/log" "$T/sock" "$T/lock2" "$T/log2" "$T/sock2" "$T/out"
as_pg $BIN/initdb -D "$T/data" -U postgres --auth=trust >/dev/null
cat >> "$T/data/postgresql.conf" <<CONF
port=$PORT
listen_addresses=''
unix_socket_directories='$T/sock'
archive_mode=on
archive_command='pgbackrest --config=$T/pgbackrest.conf --stanza=pitr archive-push %p'
wal_level=replica
max_wal_senders=3
CONF
as_pg $BIN/pg_ctl -D "$T/data" -l "$T/data.log" -w start >/dev/null
PB="pgbackrest --config=$T/pgbackrest.conf --stanza=pitr"
psql1() { as_pg psql -X -q -h "$T/sock" -p $PORT -U postgres -d postgres -Atc "$1"; }
as_pg $PB stanza-create
as_pg $PB check
as_pg $PB --type=full backup
psql1 "create table t(id int primary key, at timestamptz default clock_timestamp()); insert into t(id) select generate_series(1,1000);"
psql1 "select pg_create_restore_point('before_incr');"
psql1 "select pg_switch_wal();" >/dev/null
as_pg $PB --type=incr backup
psql1 "insert into t(id) select generate_series(1001,2000);"
psql1 "select pg_switch_wal();" >/dev/null
as_pg $PB --type=diff backup
psql1 "insert into t(id) select generate_series(2001,3000);"
psql1 "select pg_switch_wal();" >/dev/null
sleep 2
as_pg $PB info --output=json > "$T/out/info-one-timeline.json"
# Second timeline: restore a copy to a point in time, promote it, let it archive into the same stanza.
TARGET=$(psql1 "select max(at) from t where id <= 1500;")
as_pg $BIN/pg_ctl -D "$T/data" -m fast -w stop >/dev/null
as_pg pgbackrest --config=$T/pgbackrest2.conf --stanza=pitr --type=time "--target=$TARGET" --target-action=promote restore
cat >> "$T/data2/postgresql.conf" <<CONF
port=$PORT2
unix_socket_directories='$T/sock2'
archive_command='pgbackrest --config=$T/pgbackrest2.conf --stanza=pitr archive-push %p'
CONF
as_pg $BIN/pg_ctl -D "$T/data2" -l "$T/data2.log" -w start >/dev/null
psql2() { as_pg psql -X -q -h "$T/sock2" -p $PORT2 -U postgres -d postgres -Atc "$1"; }
for i in $(seq 1 60); do [ "$(psql2 'select pg_is_in_recovery()')" = f ] && break; sleep 1; done
psql2 "insert into t(id) select generate_series(5001,5500);"
psql2 "select pg_switch_wal();" >/dev/null
PB2="pgbackrest --config=$T/pgbackrest2.conf --stanza=pitr"
as_pg $PB2 --type=full backup
psql2 "insert into t(id) select generate_series(5501,6000);"
psql2 "select pg_switch_wal();" >/dev/null
sleep 2
as_pg $PB2 info --output=json > "$T/out/info-two-timelines.json"
cp "$T/repo/archive/pitr/15-1/00000002.history" "$T/out/two-timelines-00000002.history"
# Not fixtures, printed for the record: where the copy stopped and what the archive holds.
echo "restore target: $TARGET"
grep -h "recovery stopping\|selected new timeline" "$T/data2.log" || true
ls -R "$T/repo/archive/pitr/"
as_pg $BIN/pg_ctl -D "$T/data2" -m fast -w stop >/dev/null
mkdir -p "$OUT_FINAL"
cp "$T/out/"* "$OUT_FINAL/"
echo done
