# The one way pigwf moves a data directory out of the way: renamed to $aside, never deleted, only
# while no PostgreSQL runs on it. Used by pg-reinit and pg-member-remove (DataAside), PITRRestore
# (PITRKeepAside) and PgClusterCreate's approved move of another system (PgMoveAside).
# Inputs:
#   aside   where it goes (a name of the run, so a retry finds it there)
#   empty   1: leave an empty data directory (for a clone or a restore); 0: none
#   forget  1: the node leaves the cluster: its marker $state/pg-cluster goes too
#   seen    the system identifier the approver saw; when set, a directory holding another is refused
#   state   pigwf's state directory on the node
# and pgEnv's PGBIN, PGDATA; pg_sysid from sysidScript.
# The finished-clone marker always goes: the data it vouched for is no longer in $PGDATA.
if [ -e "$aside" ]; then
  note "kept aside already: $aside"
else
  if [ -n "$seen" ]; then
    sysid=$(pg_sysid)
    if [ -z "$sysid" ]; then note "$PGDATA holds no cluster any more: nothing to move"; exit 0; fi
    [ "$sysid" = "$seen" ] || fail "$PGDATA now holds system $sysid, not $seen as approved: run again to review it"
  fi
  if runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    fail "PostgreSQL still runs in $PGDATA: stop it first (its agent does); nothing was moved"
  fi
  if [ -d "$PGDATA" ] && [ -n "$(ls -A "$PGDATA" 2>/dev/null)" ]; then
    mv "$PGDATA" "$aside"; changed "moved $PGDATA aside to $aside (kept, not deleted)"
  elif [ -d "$PGDATA" ]; then
    note "$PGDATA is empty: nothing to keep"
  else
    note "there is no $PGDATA: nothing to keep"
  fi
fi
[ -e "$aside" ] && fact aside "$aside"
if [ "$empty" = 1 ] && [ ! -d "$PGDATA" ]; then
  mkdir -p "$PGDATA"; chown postgres:postgres "$PGDATA"; chmod 700 "$PGDATA"; changed "left an empty $PGDATA"
fi
rm -f "$state/clone.done"
if [ "$forget" = 1 ] && [ -f "$state/pg-cluster" ]; then rm -f "$state/pg-cluster"; changed "removed the node's marker $state/pg-cluster"; fi
exit 0
