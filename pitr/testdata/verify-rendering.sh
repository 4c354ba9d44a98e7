#!/bin/bash
# Proves the rendering against real software: a throwaway PostgreSQL 15 with pgBackRest 2.45
# (throwaway.sh), 20 rows committed one per transaction, then for each target the options pitr
# renders (rendercheck: Parse, SelectBackup, PgBackRest) are given to `pgbackrest restore` into a
# second data dir, which is started, and its rows counted against what the target must keep.
# Exits non-zero on a mismatch. Run as root from the repository root:
#   bash pitr/testdata/verify-rendering.sh
set -euo pipefail
. "$(dirname "$0")/throwaway.sh"
throwaway_dir pitr-verify
RC=$T/rendercheck
go build -o "$RC" ./pitr/testdata/rendercheck

pgbackrest_conf 1 55442
as_pg $BIN/initdb -D "$T/data-1" -U postgres --auth=trust >/dev/null
pg_settings 1 archive
echo "track_commit_timestamp=on" | as_pg tee -a "$T/data-1/postgresql.conf" >/dev/null
pg_start 1
pb 1 stanza-create
pb 1 --type=full backup
sql 1 "create table t(id int primary key)"
for i in $(seq 1 20); do
  sql 1 "insert into t values ($i)"
  echo "$i $(sql 1 "select pg_current_wal_lsn()")" >> "$T/lsns"
  [ $i = 12 ] && sql 1 "select pg_create_restore_point('after-12')" >/dev/null
  sleep 0.05
done
sql 1 "select pg_switch_wal()" >/dev/null
sleep 1
pb 1 info --output=json > "$T/info.json"
# row 8's commit time, written in +08 with microseconds, and 1 microsecond before it in RFC 3339
# at -03:30; row 10's xid; the LSN after row 15's commit
TS8=$(sql 1 "set timezone='Asia/Shanghai'; select to_char(pg_xact_commit_timestamp(xmin), 'YYYY-MM-DD HH24:MI:SS.US') || '+08' from t where id=8" | tail -1)
TS8m=$(sql 1 "set timezone='America/St_Johns'; select to_char(pg_xact_commit_timestamp(xmin) - interval '1 microsecond', 'YYYY-MM-DD\"T\"HH24:MI:SS.USOF') from t where id=8" | tail -1)
XID10=$(sql 1 "select xmin from t where id=10")
LSN15=$(awk '$1==15{print $2}' "$T/lsns")
SET=$(python3 -c "import json;print(json.load(open('$T/info.json'))[0]['backup'][0]['label'])")
pg_stop 1

# check NAME ROWS RENDERCHECK-ARGS...: restore cluster 2 to the rendered target, count its rows.
pgbackrest_conf 2 55443
check() {
  local name=$1 want=$2; shift 2
  local A; mapfile -t A < <($RC "$T/info.json" "$@")
  as_pg rm -rf "$T/data-2" "$T/data-2.log"
  pb 2 "${A[@]}" --target-action=promote --archive-mode=off restore
  pg_settings 2
  pg_start 2
  wait_promoted 2
  local got; got=$(sql 2 "select count(*)||' max '||max(id) from t")
  echo "$name: args [${A[*]}] rows: $got (want $want) | $(grep -h 'recovery stopping' "$T/data-2.log")"
  [ "${got%% *}" = "$want" ] || { echo "FAIL: $name"; FAILED=1; }
  pg_stop 2
}
echo "TS8=$TS8 TS8m=$TS8m XID10=$XID10 LSN15=$LSN15"
check time-inclusive 8 time "$TS8" 1
check time-exclusive 7 time-exclusive "$TS8" 1
check time-minus-1us 7 time "$TS8m" 1
check lsn 15 lsn "$LSN15" 1
check xid 10 xid "$XID10" 1 "$SET"
check name 12 name after-12 1 "$SET"
exit ${FAILED:-0}
