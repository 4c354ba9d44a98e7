// Package replaytests replays saved histories of real runs against the current workflow code.
// A logic change to a released workflow that is not behind workflow.GetVersion fails here with
// a non-determinism error ([TMPRL1100]). Refresh the histories with `make replay-refresh`.
package replaytests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/worker"

	"github.com/pigwf/pigwf/workflows"
)

func histories(t *testing.T) []string {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no saved histories in testdata/: run `make replay-refresh`")
	}
	return files
}

func TestReplaySavedHistories(t *testing.T) {
	for _, file := range histories(t) {
		t.Run(historyName(file), func(t *testing.T) {
			replayer := worker.NewWorkflowReplayer()
			workflows.Register(replayer)
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatalf("replay of %s: %v", file, err)
			}
		})
	}
}

// Secrets never enter workflow history: no key material, no inventory passwords.
func TestHistoriesHoldNoSecrets(t *testing.T) {
	for _, file := range histories(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"PRIVATE KEY", "DBUser.Meta", "BEGIN CERTIFICATE"} {
			if strings.Contains(string(data), secret) {
				t.Errorf("%s contains %q", file, secret)
			}
		}
	}
}

func historyName(file string) string { return filepath.Base(file) }
