package activities

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// configFilesBench runs pg-config-files.sh (configFilesScript) with /bin/sh in a directory of its
// own: a data directory, pigwf's state directory, and stand-ins for runuser, chown, pg_ctl
// (status: $PG_STATUS) and psql (pg_hba_file_rules answers $HBA_ERRORS; pg_reload_conf is
// logged, or fails when $RELOAD_FAILS is set).
type configFilesBench struct {
	t                  *testing.T
	dir, data, log     string
	running            bool
	hbaErrors          string
	reloadFails        bool
	conf               string
	spec               PGSpec
	prevConfigStateDir string
}

func newConfigFilesBench(t *testing.T) *configFilesBench {
	t.Helper()
	dir := t.TempDir()
	b := &configFilesBench{t: t, dir: dir, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "calls.log")}
	stubs := map[string]string{
		"path/runuser": "#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done\nshift\nexec \"$@\"\n",
		"path/chown":   "#!/bin/sh\nexit 0\n",
		"path/psql": "#!/bin/sh\nfor a; do sql=$a; done\n" +
			"case $sql in\n  *pg_hba_file_rules*) echo \"psql check\" >> \"$CALLS\"; printf '%s\\n' \"$HBA_ERRORS\" ;;\n" +
			"  *pg_reload_conf*) [ -z \"$RELOAD_FAILS\" ] || exit 2; echo reload >> \"$CALLS\" ;;\nesac\n",
		"bin/pg_ctl": "#!/bin/sh\nexit $PG_STATUS\n",
	}
	for name, text := range stubs {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(b.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.data, "PG_VERSION"), []byte("15\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.spec = PGSpec{Cluster: "pg-test", Port: 5432, DataDir: b.data, BinDir: filepath.Join(dir, "bin")}
	b.prevConfigStateDir, configStateDir = configStateDir, filepath.Join(dir, "state")
	t.Cleanup(func() { configStateDir = b.prevConfigStateDir })
	return b
}

// run runs the script for hba (and b.conf) and returns its output and exit status.
func (b *configFilesBench) run(hba []string, dry bool) (string, int) {
	b.t.Helper()
	spec := b.spec
	spec.HBA = hba
	// The steps' own prelude, its journal in the bench's directory.
	prelude := strings.NewReplacer(JournalPath, filepath.Join(b.dir, "journal.log"), "mkdir -p /var/lib/pigwf", "mkdir -p "+b.dir).Replace(scriptPrelude)
	if strings.Contains(prelude, "/var/lib/pigwf") {
		b.t.Fatalf("the prelude would write to the machine's /var/lib/pigwf:\n%s", prelude)
	}
	cmd := exec.Command("/bin/sh", "-c", prelude+"PIGWF_STEP=pg_hba\n"+configFilesScript(PgNodeInput{Spec: spec}, b.conf, dry))
	status := "3"
	if b.running {
		status = "0"
	}
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(b.dir, "path")+":"+os.Getenv("PATH"), "CALLS="+b.log, "PG_STATUS="+status,
		"HBA_ERRORS="+b.hbaErrors, "RELOAD_FAILS="+map[bool]string{true: "1"}[b.reloadFails])
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		b.t.Fatal(err)
	}
	return string(out), code
}

func (b *configFilesBench) file(name string) string {
	b.t.Helper()
	data, err := os.ReadFile(filepath.Join(b.data, name))
	if err != nil {
		b.t.Fatal(err)
	}
	return string(data)
}

// calls is what the stand-ins were asked since the last call, and forgets it.
func (b *configFilesBench) calls() string {
	data, _ := os.ReadFile(b.log)
	_ = os.Remove(b.log)
	return strings.TrimSpace(string(data))
}

func (b *configFilesBench) pending() bool {
	_, err := os.Stat(filepath.Join(configStateDir, "config-reload-pending"))
	return err == nil
}

var (
	hbaV1 = []string{"local   all          postgres                       peer", "host    all          app            10.0.0.0/8         scram-sha-256"}
	hbaV2 = []string{"local   all          postgres                       peer", "host    all          app2           10.0.0.0/8         scram-sha-256"}
)

// The one writer of postgresql.conf and pg_hba.conf, run for real with /bin/sh: a file is written
// only when it differs, a running PostgreSQL reloaded once, a dry run reports lines and writes
// nothing, a file PostgreSQL refuses is put back, and a reload owed survives a failed attempt.
func TestConfigFilesScript(t *testing.T) {
	b := newConfigFilesBench(t)
	b.conf = "port = 5432"

	// A stopped PostgreSQL: both files written, nothing reloaded, nothing owed.
	out, code := b.run(hbaV1, false)
	if code != 0 || !strings.Contains(out, "changed: wrote "+b.data+"/postgresql.conf") || !strings.Contains(out, "changed: wrote "+b.data+"/pg_hba.conf") ||
		strings.Contains(out, "reloaded") || b.calls() != "" || b.pending() {
		t.Fatalf("first write (%d):\n%s", code, out)
	}
	if got := b.file("pg_hba.conf"); got != HBAFile(hbaV1) {
		t.Errorf("pg_hba.conf:\n%s\nwant\n%s", got, HBAFile(hbaV1))
	}
	if fi, err := os.Stat(filepath.Join(b.data, "pg_hba.conf")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("pg_hba.conf's mode: %v %v", fi.Mode(), err)
	}

	// The same again on a running PostgreSQL: nothing written, nothing reloaded.
	b.running = true
	if out, code := b.run(hbaV1, false); code != 0 || strings.Contains(out, "changed") || b.calls() != "" {
		t.Errorf("rerun (%d):\n%s", code, out)
	}
	if out, code := b.run(hbaV1, true); code != 0 || out != "" {
		t.Errorf("a dry run with nothing to change (%d):\n%s", code, out)
	}

	// A dry run of other rules: the lines, and nothing else.
	b.conf = ""
	out, code = b.run(hbaV2, true)
	if code != 0 || strings.Contains(out, "changed") || b.calls() != "" || !strings.Contains(out, "fact: differs=1") ||
		!strings.Contains(out, "note: would remove from pg_hba.conf: host    all          app            10.0.0.0/8") ||
		!strings.Contains(out, "note: would add to pg_hba.conf: host    all          app2           10.0.0.0/8") {
		t.Errorf("dry run (%d):\n%s", code, out)
	}
	if b.file("pg_hba.conf") != HBAFile(hbaV1) || b.pending() {
		t.Errorf("the dry run changed something")
	}

	// Rules PostgreSQL refuses: put back, not reloaded, the step fails for good.
	b.hbaErrors = "line 3: invalid IP mask"
	out, code = b.run(hbaV2, false)
	if code != exitPermanent || !strings.Contains(out, "PostgreSQL refuses the new pg_hba.conf (line 3: invalid IP mask)") ||
		!strings.Contains(out, "put "+b.data+"/pg_hba.conf back as it was") || b.calls() != "psql check" {
		t.Errorf("refused rules (%d):\n%s", code, out)
	}
	if b.file("pg_hba.conf") != HBAFile(hbaV1) || b.pending() {
		t.Errorf("the refused file is in place:\n%s", b.file("pg_hba.conf"))
	}

	// Written, but the reload fails (a worker dying there is alike): the reload is owed, and the
	// retry, with nothing left to write, still does it.
	b.hbaErrors, b.reloadFails = "", true
	if out, code := b.run(hbaV2, false); code == 0 || !strings.Contains(out, "changed: wrote "+b.data+"/pg_hba.conf") || !b.pending() {
		t.Fatalf("a failed reload (%d):\n%s", code, out)
	}
	b.calls()
	b.reloadFails = false
	out, code = b.run(hbaV2, false)
	if code != 0 || strings.Contains(out, "wrote") || !strings.Contains(out, "changed: reloaded PostgreSQL") || b.calls() != "psql check\nreload" || b.pending() {
		t.Errorf("the retry (%d):\n%s", code, out)
	}
	if out, code := b.run(hbaV2, false); code != 0 || strings.Contains(out, "changed") {
		t.Errorf("after the reload (%d):\n%s", code, out)
	}
}
