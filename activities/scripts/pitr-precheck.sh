# PITRPrecheck, on every member: what the plan needs to know, changing nothing.
# Inputs: pgEnv's PGBIN, PGDATA, PGPORT, PIGWF_CLUSTER; repo (the pgBackRest repository path);
# key (this run's key).
parent=$(dirname "$PGDATA")
fact avail "$(df --output=avail -B1 "$parent" | tail -n1 | tr -d ' ')"
if [ -d "$PGDATA" ]; then fact data_bytes "$(du -sb "$PGDATA" 2>/dev/null | cut -f1)"; else fact data_bytes 0; fi
fact sysid "$(pg_sysid)"
aside="$PGDATA.before-pitr-$key"
[ -e "$aside" ] && fact aside_exists "$aside"
# The highest timeline with a history file in the archive: a promotion picks the next id.
maxtl=$(runuser -u postgres -- sh -c 'ls -1 "$1"/archive/"$2"/*/ 2>/dev/null' _ "$repo" "$PIGWF_CLUSTER" | grep -E '^[0-9A-F]{8}\.history$' | sort | tail -n1 | cut -c1-8)
fact archive_max_history "${maxtl:-00000001}"
command -v pgbackrest >/dev/null || fail "pgbackrest is not installed on $(hostname): run pg-cluster-create first"
