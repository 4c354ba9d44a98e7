# DataPurge: deletes, for good, the data directory a removal moved aside to $aside, after its own
# approval. Unchanged when it is gone already. Nothing else is deleted: not $PGDATA, not backups.
# Inputs: aside, and pgEnv's PGDATA.
if [ ! -e "$aside" ]; then note "there is no $aside: nothing to delete"; exit 0; fi
[ "$aside" != "$PGDATA" ] || fail "refusing to delete the data directory itself"
size=$(du -sh "$aside" | cut -f1)
rm -rf -- "$aside"
changed "deleted $aside ($size)"
