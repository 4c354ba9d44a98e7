# PgBackup's backup: one pgBackRest backup of the stanza, taken on this member, annotated with
# the run that asked for it (pigwf-run), so that a retried attempt (its worker died, its SSH
# session dropped) waits for its earlier attempt's pgbackrest and then finds that backup, and
# never takes a second one. Expiry is PgBackup's next step (--no-expire-auto here), so it runs
# with the inventory's retention and reports what it removed.
# Inputs: stanza, type (full, diff or incr), run (the annotation's value), opts (the options of
# a backup from a standby, as quoted words: StandbyBackupOptions; "" on the leader).
pgb() { runuser -u postgres -- pgbackrest --stanza="$stanza" "$@"; }
taken() { pgb --output=json info 2>/dev/null | grep -qF "\"pigwf-run\":\"$run\""; }
# sshd does not stop a session's command when its connection drops: an earlier attempt's
# pgbackrest may still run and hold the stanza's lock.
while pgrep -u postgres -f -- "--annotation=pigwf-run=$run" >/dev/null; do sleep 1; done
if taken; then note "taken by an earlier attempt of this run"; exit 0; fi
# opts holds words as sshrun.ShellQuote wrote them (a plain word as it is, any other
# single-quoted), so eval splits them back into those words and expands nothing.
eval "set -- $opts"
# The log file at detail level names each file copied with the share done so far: the
# activity reads it for its heartbeats.
if ! out=$(pgb --type="$type" --annotation=pigwf-run="$run" --no-expire-auto --log-level-console=warn --log-level-file=detail "$@" backup 2>&1); then
  printf '%s\n' "$out" | grep -E '^(ERROR|WARN): |^ +HINT: ' | tail -n 6 >&2
  exit 64
fi
changed "pgbackrest backup --type=$type"
