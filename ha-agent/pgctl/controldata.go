package pgctl

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// ControlData is what the agent reads from pg_controldata while
// PostgreSQL is not running.
type ControlData struct {
	Sysid string
	// State is "Database cluster state": "shut down", "shut down in
	// recovery", "in production", "in archive recovery", "in crash
	// recovery", "shutting down".
	State              string
	CheckpointLSN      haagent.LSN
	RedoLSN            haagent.LSN
	Timeline           uint32 // latest checkpoint's TimeLineID
	MinRecoveryLSN     haagent.LSN
	MinRecoveryTL      uint32
	DataChecksums      bool
	WALLogHints        bool
	raw                map[string]string
	controlFileModTime int64
}

// Cluster states pg_controldata prints as "Database cluster state" (it runs
// with LC_ALL=C). This is the one place that matches them: callers use the
// predicates below, State is for humans.
const (
	stateShutDown           = "shut down"
	stateShutDownInRecovery = "shut down in recovery"
	stateShuttingDown       = "shutting down"
	stateInProduction       = "in production"
)

// CleanShutdown: the cluster was shut down cleanly (as primary or standby).
func (c *ControlData) CleanShutdown() bool {
	return c.State == stateShutDown || c.State == stateShutDownInRecovery
}

// WasPrimary: the control file says it last ran as a primary.
func (c *ControlData) WasPrimary() bool {
	return c.State == stateShutDown || c.State == stateInProduction || c.State == stateShuttingDown
}

// ShutDownAsPrimary: the cluster last ran as a primary and was shut down
// cleanly, so its latest checkpoint (the shutdown checkpoint) is the end
// of its WAL.
func (c *ControlData) ShutDownAsPrimary() bool {
	return c.State == stateShutDown
}

func parseControlData(out string) (*ControlData, error) {
	cd := &ControlData{raw: map[string]string{}}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		cd.raw[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	cd.Sysid = cd.raw["Database system identifier"]
	cd.State = cd.raw["Database cluster state"]
	if cd.Sysid == "" || cd.State == "" {
		return nil, fmt.Errorf("pg_controldata output lacks the system identifier or cluster state")
	}
	lsn := func(key string) haagent.LSN {
		l, _ := haagent.ParseLSN(cd.raw[key])
		return l
	}
	tl := func(key string) uint32 {
		n, _ := strconv.ParseUint(cd.raw[key], 10, 32)
		return uint32(n)
	}
	cd.CheckpointLSN = lsn("Latest checkpoint location")
	cd.RedoLSN = lsn("Latest checkpoint's REDO location")
	cd.Timeline = tl("Latest checkpoint's TimeLineID")
	cd.MinRecoveryLSN = lsn("Minimum recovery ending location")
	cd.MinRecoveryTL = tl("Min recovery ending loc's timeline")
	cd.DataChecksums = cd.raw["Data page checksum version"] != "" && cd.raw["Data page checksum version"] != "0"
	cd.WALLogHints = cd.raw["wal_log_hints setting"] == "on"
	return cd, nil
}

// runControlData runs pg_controldata. It gets its own timeout: on a busy
// host exec alone can take longer than one probe's budget.
func runControlData(binDir, dataDir string) (*ControlData, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "pg_controldata"), "-D", dataDir)
	cmd.Env = append(cmd.Environ(), "LC_ALL=C", "LANG=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		text := strings.TrimSpace(string(out))
		if len(text) > 200 {
			text = text[:200] + "…"
		}
		return nil, fmt.Errorf("pg_controldata -D %s: %w: %s", dataDir, err, text)
	}
	return parseControlData(string(out))
}
