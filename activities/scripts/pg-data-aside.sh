# DataAside: moves the member's data directory aside to $aside (a name of this run: a retry finds
# it there), never deleting it, once its PostgreSQL is stopped. With empty=1 an empty data
# directory is left for the agent to clone into (pg-reinit); otherwise none (a removal), and the
# node's markers of the cluster's data ($state/pg-cluster, clone.done) go.
# Inputs: aside, empty (1 or 0), state (pigwf's state directory on the node), and pgEnv's PGBIN, PGDATA.
if [ -e "$aside" ]; then
  note "kept aside already: $aside"
else
  if runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    fail "PostgreSQL still runs in $PGDATA: its agent must stop it first; nothing was moved"
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
if [ "$empty" != 1 ] && [ -f "$state/pg-cluster" ]; then rm -f "$state/pg-cluster"; changed "removed the node's marker $state/pg-cluster"; fi
exit 0
