// Package replaytests replays saved histories of real runs against the current workflow code.
// A logic change to a released workflow that is not behind workflow.GetVersion fails here with
// a non-determinism error ([TMPRL1100]).
//
// The histories are kept per workflow and per recording, never overwritten: testdata/<runbook>/
// <label>.json. Executions started by any earlier version may still be running when a worker
// with new code picks them up, so the code must replay every history ever recorded, not only the
// newest. `make replay-refresh` adds histories of new runs (Save); this file is the one home of
// the layout, used by the replay tests and by the integration tests that record.
package replaytests

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/sdk/converter"

	"github.com/pigwf/pigwf/workflows"
)

// runbooks names each workflow type's directory under testdata/.
var runbooks = map[string]string{
	workflows.NodeInitName:        workflows.NodeInitRunbook,
	workflows.PgClusterCreateName: workflows.PgClusterCreateRunbook,
	workflows.SwitchoverName:      workflows.SwitchoverRunbook,
	workflows.PITRRestoreName:     workflows.PITRRestoreRunbook,
	workflows.PgServiceName:       workflows.PgServiceRunbook,
	workflows.PgRestartName:       workflows.PgRestartRunbook,
	workflows.PgReloadName:        workflows.PgReloadRunbook,
	workflows.PgUsersName:         workflows.PgUsersRunbook,
	workflows.PgDatabasesName:     workflows.PgDatabasesRunbook,
	workflows.PgHBAName:           workflows.PgHBARunbook,
	workflows.RunbookName:         workflows.RunbookRunbook,
	workflows.PgBackupName:        workflows.PgBackupRunbook,
	workflows.PgMemberAddName:     workflows.PgMemberAddRunbook,
	workflows.PgReinitName:        workflows.PgReinitRunbook,
	workflows.PgMemberRemoveName:  workflows.PgMemberRemoveRunbook,
	workflows.PgClusterRemoveName: workflows.PgClusterRemoveRunbook,
	workflows.ClusterLockName:     "cluster-lock",
}

// Files lists every saved history under root (a testdata directory), runbook by runbook.
func Files(root string) ([]string, error) {
	return filepath.Glob(filepath.Join(root, "*", "*.json"))
}

// Save adds hist under root as <runbook>/<label>.json and returns the file's path. It never
// replaces a file: a second history with the same label becomes <label>-2.json, and so on.
func Save(root string, hist *historypb.History) (string, error) {
	wfType, _, err := describe(hist)
	if err != nil {
		return "", err
	}
	runbook, ok := runbooks[wfType]
	if !ok {
		return "", fmt.Errorf("no testdata directory for workflow type %q", wfType)
	}
	data, err := temporalproto.CustomJSONMarshalOptions{Indent: "  "}.Marshal(hist)
	if err != nil {
		return "", fmt.Errorf("while encoding the history: %w", err)
	}
	dir := filepath.Join(root, runbook)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	label, err := Label(hist)
	if err != nil {
		return "", err
	}
	for n := 1; ; n++ {
		name := label
		if n > 1 {
			name = fmt.Sprintf("%s-%d", label, n)
		}
		path := filepath.Join(dir, name+".json")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		if _, err := f.Write(data); err != nil {
			f.Close()
			return "", fmt.Errorf("while writing %s: %w", path, err)
		}
		return path, f.Close()
	}
}

// Label names a history by the day its run started (UTC) and the workflow.GetVersion markers it
// recorded, which say which branches of versioned code it took:
// 2026-12-01-pgcc-current-leader.1, or 2026-12-01-no-version-markers.
func Label(hist *historypb.History) (string, error) {
	_, started, err := describe(hist)
	if err != nil {
		return "", err
	}
	markers, err := versionMarkers(hist)
	if err != nil {
		return "", err
	}
	if len(markers) == 0 {
		markers = []string{"no-version-markers"}
	}
	return started.UTC().Format(time.DateOnly) + "-" + strings.Join(markers, "-"), nil
}

// describe is the workflow type and start time of the run a history records.
func describe(hist *historypb.History) (wfType string, started time.Time, err error) {
	events := hist.GetEvents()
	if len(events) == 0 || events[0].GetWorkflowExecutionStartedEventAttributes() == nil {
		return "", time.Time{}, errors.New("the history does not begin with the workflow's start")
	}
	first := events[0]
	return first.GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName(), first.GetEventTime().AsTime(), nil
}

// versionMarkers are the history's GetVersion markers as <change-id>.<version>, sorted.
func versionMarkers(hist *historypb.History) ([]string, error) {
	dc := converter.GetDefaultDataConverter()
	var out []string
	for _, e := range hist.GetEvents() {
		m := e.GetMarkerRecordedEventAttributes()
		if m == nil || m.GetMarkerName() != "Version" {
			continue
		}
		var changeID string
		var version int
		if err := dc.FromPayloads(m.GetDetails()["change-id"], &changeID); err != nil {
			return nil, fmt.Errorf("version marker of event %d: %w", e.GetEventId(), err)
		}
		if err := dc.FromPayloads(m.GetDetails()["version"], &version); err != nil {
			return nil, fmt.Errorf("version marker %s: %w", changeID, err)
		}
		out = append(out, fmt.Sprintf("%s.%d", changeID, version))
	}
	slices.Sort(out)
	return out, nil
}
