# Sourced by make-fixture.sh and verify-rendering.sh: throwaway PostgreSQL 15 clusters with
# pgBackRest 2.45 in one temp dir. Cluster N has its data dir $T/data-N, socket dir $T/sock-N,
# pgBackRest config $T/pgbackrest-N.conf with its own lock and log paths, and port ${PORT[N]};
# all share the repository $T/repo (stanza "pitr"). Never /etc/pgbackrest.conf, never /pg.
BIN=/usr/lib/postgresql/15/bin
declare -A PORT

as_pg() { runuser -u postgres -- "$@"; }

# throwaway_dir PREFIX: T becomes a new temp dir owned by postgres. On exit, also after a
# failure, every cluster in it is stopped (pg_ctl -m fast) and it is removed (KEEP=1 keeps it).
throwaway_dir() {
  T=$(mktemp -d "/tmp/$1.XXXXXX")
  chown postgres:postgres "$T"
  trap throwaway_cleanup EXIT
}

throwaway_cleanup() {
  local pid
  for pid in "$T"/data-*/postmaster.pid; do
    [ -f "$pid" ] && as_pg $BIN/pg_ctl -D "$(dirname "$pid")" -m fast -w stop >/dev/null 2>&1 || true
  done
  if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}

# pgbackrest_conf N PORT: the pgBackRest config of cluster N.
pgbackrest_conf() {
  local n=$1
  PORT[$n]=$2
  as_pg mkdir -p "$T/repo" "$T/lock-$n" "$T/log-$n" "$T/sock-$n"
  as_pg tee "$T/pgbackrest-$n.conf" >/dev/null <<CONF
[global]
repo1-path=$T/repo
lock-path=$T/lock-$n
log-path=$T/log-$n
log-level-console=warn
start-fast=y
compress-type=gz

[pitr]
pg1-path=$T/data-$n
pg1-port=${PORT[$n]}
pg1-socket-path=$T/sock-$n
CONF
}

# pg_settings N [archive]: appends cluster N's port and socket (no TCP) to its postgresql.conf,
# and with "archive", archiving into the stanza through its own config.
pg_settings() {
  local n=$1
  as_pg tee -a "$T/data-$n/postgresql.conf" >/dev/null <<CONF
port=${PORT[$n]}
listen_addresses=''
unix_socket_directories='$T/sock-$n'
CONF
  if [ "${2:-}" = archive ]; then
    as_pg tee -a "$T/data-$n/postgresql.conf" >/dev/null <<CONF
archive_mode=on
archive_command='pgbackrest --config=$T/pgbackrest-$n.conf --stanza=pitr archive-push %p'
CONF
  fi
}

# pg_start N / pg_stop N: start (log in $T/data-N.log) and stop cluster N.
pg_start() { as_pg $BIN/pg_ctl -D "$T/data-$1" -l "$T/data-$1.log" -w start >/dev/null; }
pg_stop() { as_pg $BIN/pg_ctl -D "$T/data-$1" -m fast -w stop >/dev/null; }

# wait_promoted N: until cluster N has left recovery (30 s at most).
wait_promoted() {
  local i
  for i in $(seq 1 60); do
    [ "$(sql "$1" 'select pg_is_in_recovery()')" = f ] && return 0
    sleep 0.5
  done
  echo "cluster $1 did not leave recovery" >&2
  return 1
}

# sql N QUERY: one query on cluster N, unaligned rows.
sql() { as_pg psql -X -q -h "$T/sock-$1" -p "${PORT[$1]}" -U postgres -d postgres -Atc "$2"; }

# pb N ARGS...: pgbackrest with cluster N's config, stanza pitr.
pb() { local n=$1; shift; as_pg pgbackrest --config="$T/pgbackrest-$n.conf" --stanza=pitr "$@"; }
