# The one writer of the configuration files pigwf owns in a member's data directory
# (PgConfigure: postgresql.conf and pg_hba.conf; PgHBA: pg_hba.conf).
# Inputs: conf, hba (a file's whole content without its last newline; "" leaves that file
# alone), dry (1: report what would change, line by line, and change nothing), state (pigwf's
# directory on the node).
# A file is written only when it differs (owner postgres, mode 0600, by rename: PostgreSQL never
# reads half a file). A running PostgreSQL is reloaded once something was written; before that,
# PostgreSQL itself checks pg_hba.conf (pg_hba_file_rules), and a file it refuses is put back as
# it was. The reload owed survives a retry: $marker records it until it is done.
[ -f "$PGDATA/PG_VERSION" ] || fail "$PGDATA holds no PostgreSQL cluster yet"
marker="$state/config-reload-pending"
keep="$state/config-previous"
running() { runuser -u postgres -- "$PGBIN/pg_ctl" status -D "$PGDATA" >/dev/null 2>&1; }
local_sql() { runuser -u postgres -- psql -X -q -At -v ON_ERROR_STOP=1 -h /var/run/postgresql -p "$PGPORT" -d postgres -c "$1"; }
put() { name=$1; want=$2; f="$PGDATA/$name"
  [ -n "$want" ] || return 0
  [ "$(cat "$f" 2>/dev/null)" != "$want" ] || return 0
  if [ "$dry" = 1 ]; then
    fact differs 1
    if [ ! -f "$f" ]; then note "would create $f"; return 0; fi
    note "would write $f"
    printf '%s\n' "$want" | diff -U0 "$f" - | grep -E '^[-+]' | grep -vE '^(---|\+\+\+)( |$)' | tr -cd '[:print:]\n' |
      while IFS= read -r l; do
        case $l in
          -*) note "would remove from $name: ${l#-}" ;;
          +*) note "would add to $name: ${l#+}" ;;
        esac
      done
    return 0
  fi
  mkdir -p "$keep"
  # the file in force: kept until the reload, unless an earlier write not reloaded yet kept it
  if [ -f "$f" ] && [ ! -e "$keep/$name" ]; then cp -p "$f" "$keep/$name"; fi
  printf '%s\n' "$want" > "$f.pigwf-tmp"; chown postgres:postgres "$f.pigwf-tmp"; chmod 600 "$f.pigwf-tmp"
  : > "$marker"
  mv "$f.pigwf-tmp" "$f"
  changed "wrote $f"
}
put postgresql.conf "$conf"
put pg_hba.conf "$hba"
if [ "$dry" = 1 ]; then exit 0; fi
[ -f "$marker" ] || exit 0
if ! running; then
  rm -f "$marker" "$keep/postgresql.conf" "$keep/pg_hba.conf" # a start reads the files
  exit 0
fi
if [ -n "$hba" ]; then
  errs=$(local_sql "SELECT string_agg('line ' || line_number || ': ' || error, '; ') FROM pg_catalog.pg_hba_file_rules WHERE error IS NOT NULL") ||
    fail "could not ask PostgreSQL to check $PGDATA/pg_hba.conf; nothing was reloaded"
  if [ -n "$errs" ]; then
    # what this attempt or an earlier one of the same change wrote: the files kept are those
    # in force before it
    for name in postgresql.conf pg_hba.conf; do
      if [ -f "$keep/$name" ]; then mv "$keep/$name" "$PGDATA/$name"; note "put $PGDATA/$name back as it was"; fi
    done
    rm -f "$marker"
    fail "PostgreSQL refuses the new pg_hba.conf ($errs): the file in force was kept and nothing was reloaded"
  fi
fi
local_sql 'SELECT pg_reload_conf()' >/dev/null
rm -f "$marker" "$keep/postgresql.conf" "$keep/pg_hba.conf"
changed "reloaded PostgreSQL"
