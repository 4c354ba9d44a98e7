package activities

import (
	_ "embed"
	"strings"

	"github.com/pigwf/pigwf/activities/sshrun"
)

// Step scripts longer than a screenful live in scripts/*.sh, embedded in the worker. Each runs
// after scriptPrelude (changed, note, fact, fail) and reads its inputs from shell variables that
// withInputs assigns first, so a value is always one quoted word (sshrun.ShellQuote), never
// spliced into the script's text. Secrets never go in a script: they travel on stdin.
var (
	//go:embed scripts/ha-agent.sh
	haAgentScript string
	//go:embed scripts/pg-precheck.sh
	pgPrecheckScript string
	//go:embed scripts/pg-clone.sh
	pgCloneScript string
	//go:embed scripts/pitr-precheck.sh
	pitrPrecheckScript string
	//go:embed scripts/pitr-restore.sh
	pitrRestoreScript string
	//go:embed scripts/pitr-history.sh
	pitrHistoryScript string
	//go:embed scripts/pitr-finalize.sh
	pitrFinalizeScript string
	//go:embed scripts/pitr-putback.sh
	pitrPutBackScript string
	//go:embed scripts/haproxy.sh
	haproxyScript string
	//go:embed scripts/pg-backup.sh
	pgBackupScript string
	//go:embed scripts/backup-server.sh
	backupServerScript string
	//go:embed scripts/pg-config-files.sh
	pgConfigFilesScript string
	//go:embed scripts/ha-agent-stop.sh
	haAgentStopScript string
	//go:embed scripts/ha-agent-start.sh
	haAgentStartScript string
	//go:embed scripts/pg-data-aside.sh
	pgDataAsideScript string
	//go:embed scripts/pg-data-purge.sh
	pgDataPurgeScript string
)

// shellVar is one input of a script: the assignment name=value.
type shellVar struct{ name, value string }

// withInputs is script preceded by the assignments of its inputs, in order.
func withInputs(script string, vars ...shellVar) string {
	var b strings.Builder
	for _, v := range vars {
		b.WriteString(v.name + "=" + sshrun.ShellQuote(v.value) + "\n")
	}
	b.WriteString(script)
	return b.String()
}
