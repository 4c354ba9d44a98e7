package main

import (
	"testing"

	"github.com/urfave/cli/v2"
)

// Bad flags of `pigwf schedule` and `pigwf start pg-backup` are refused before anything is
// created or started: no Temporal is dialed, and the message names the flag.
func TestScheduleAndBackupRefuseBadFlags(t *testing.T) {
	checkRefusals(t, []*cli.Command{startCmd(), scheduleCmd()}, []flagCase{
		{[]string{"schedule", "create", "--cluster", "pg-test", "--every", "500ms"}, "--every 500ms: give whole seconds, at least 1s"},
		{[]string{"schedule", "create", "--cluster", "pg-test", "--cron", "0 2 * *"}, `--cron "0 2 * *": 4 fields`},
		{[]string{"schedule", "create", "--cluster", "pg-test", "--cron", "0 2 * * *", "--every", "1h"}, "--cron and --every both given"},
		{[]string{"schedule", "create", "--cluster", "pg-test"}, "no time given: give --cron"},
		{[]string{"schedule", "create", "--cluster", "pg-test", "--every", "1h", "--runbook", "switchover"}, "--runbook switchover: schedules run pg-backup"},
		{[]string{"schedule", "create", "--cluster", "pg-test", "--every", "1h", "--type", "weekly"}, `--type "weekly" is not a backup type`},
		{[]string{"schedule", "create", "--cluster", "pg-nope", "--every", "1h"}, "pg-nope"},
		{[]string{"start", "pg-backup", "--cluster", "pg-test", "--type", "weekly"}, `--type "weekly" is not a backup type: give full, diff or incr`},
	})
}
