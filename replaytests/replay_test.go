package replaytests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/workflows"
)

const testdata = "testdata"

// histories is every saved history, testdata/<runbook>/<label>.json.
func histories(t *testing.T) []string {
	t.Helper()
	files, err := Files(testdata)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no saved histories in testdata/<runbook>/: run `make replay-refresh`")
	}
	return files
}

// historyName is how a test names a history: <runbook>/<label>.json.
func historyName(file string) string {
	rel, err := filepath.Rel(testdata, file)
	if err != nil {
		return file
	}
	return filepath.ToSlash(rel)
}

func loadHistory(t *testing.T, file string) *historypb.History {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hist, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return hist
}

// Every history ever saved replays: runs recorded by any earlier version of a workflow may still
// be in flight when a worker with the current code picks them up.
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

// A history lies in its workflow's directory, and nothing lies where the tests do not look.
func TestTestdataLayout(t *testing.T) {
	stray, err := filepath.Glob(filepath.Join(testdata, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range stray {
		t.Errorf("%s is not replayed: histories belong in testdata/<runbook>/", f)
	}
	for _, file := range histories(t) {
		wfType, _, err := describe(loadHistory(t, file))
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if dir := filepath.Base(filepath.Dir(file)); runbooks[wfType] != dir {
			t.Errorf("%s records a %s run, which belongs in testdata/%s/", file, wfType, runbooks[wfType])
		}
	}
}

// names records the workflow names registered on it.
type names []string

func (n *names) RegisterWorkflowWithOptions(_ interface{}, o workflow.RegisterOptions) {
	*n = append(*n, o.Name)
}

// Every registered workflow has its directory under testdata/, so its histories can be saved.
func TestEveryWorkflowHasADirectory(t *testing.T) {
	var registered names
	workflows.Register(&registered)
	for _, name := range registered {
		if runbooks[name] == "" {
			t.Errorf("workflow %s has no directory under testdata/: add it to runbooks in histories.go", name)
		}
	}
}

// Save adds a file named by the run's day and version markers and never replaces one.
func TestSaveNeverOverwrites(t *testing.T) {
	src := filepath.Join(testdata, workflows.PgClusterCreateRunbook, "2026-11-21-no-version-markers.json")
	hist := loadHistory(t, src)
	root := t.TempDir()
	var paths []string
	for range 2 {
		p, err := Save(root, hist)
		if err != nil {
			t.Fatal(err)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.ToSlash(rel))
	}
	want := []string{"pg-cluster-create/2026-11-21-no-version-markers.json", "pg-cluster-create/2026-11-21-no-version-markers-2.json"}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("saved as %v, want %v", paths, want)
	}
	for _, p := range paths {
		saved := loadHistory(t, filepath.Join(root, p))
		if len(saved.GetEvents()) != len(hist.GetEvents()) {
			t.Errorf("%s holds %d events, the original %d", p, len(saved.GetEvents()), len(hist.GetEvents()))
		}
	}
}

// A history that took versioned branches is labelled with its markers.
func TestLabelNamesVersionMarkers(t *testing.T) {
	dc := converter.GetDefaultDataConverter()
	marker := func(changeID string, version int) *historypb.HistoryEvent {
		id, _ := dc.ToPayloads(changeID)
		v, _ := dc.ToPayloads(version)
		return &historypb.HistoryEvent{Attributes: &historypb.HistoryEvent_MarkerRecordedEventAttributes{
			MarkerRecordedEventAttributes: &historypb.MarkerRecordedEventAttributes{MarkerName: "Version", Details: map[string]*commonpb.Payloads{"change-id": id, "version": v}}}}
	}
	hist := loadHistory(t, filepath.Join(testdata, workflows.PgClusterCreateRunbook, "2026-11-21-no-version-markers.json"))
	hist.Events = append(hist.Events, marker("pgcc-current-leader", 1), marker("another-change", 2))
	label, err := Label(hist)
	if err != nil {
		t.Fatal(err)
	}
	if want := "2026-11-21-another-change.2-pgcc-current-leader.1"; label != want {
		t.Errorf("label = %q, want %q", label, want)
	}
}
