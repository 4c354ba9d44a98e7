package activities

import (
	"os/exec"
	"strings"
	"testing"
)

// Every embedded script is valid sh after the prelude it runs behind.
func TestEmbeddedScriptsParse(t *testing.T) {
	for name, script := range map[string]string{"ha-agent.sh": haAgentScript, "pg-precheck.sh": pgPrecheckScript, "pg-clone.sh": pgCloneScript,
		"pg-backup.sh": pgBackupScript, "backup-server.sh": backupServerScript, "pg-config-files.sh": pgConfigFilesScript} {
		if strings.TrimSpace(script) == "" {
			t.Errorf("%s is empty", name)
			continue
		}
		cmd := exec.Command("sh", "-n")
		cmd.Stdin = strings.NewReader(scriptPrelude + sysidScript + script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s does not parse: %v\n%s", name, err, out)
		}
	}
}

// A script's inputs reach it as the exact values, whatever characters they hold.
func TestWithInputsKeepsValues(t *testing.T) {
	values := []string{"plain", "", "it's \"quoted\"", "$(touch /tmp/pigwf-never) `x` $HOME", "two\nlines\n", "a|b #c"}
	for _, v := range values {
		out, err := exec.Command("sh", "-c", withInputs(`printf '%s' "$v"`, shellVar{"v", v})).Output()
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if string(out) != v {
			t.Errorf("the script saw %q, not %q", out, v)
		}
	}
}
