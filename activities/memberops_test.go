package activities

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pigwf/pigwf/activities/sshrun"
)

// The member operations' scripts are valid sh after the prelude they run behind.
func TestMemberScriptsParse(t *testing.T) {
	for name, script := range map[string]string{"ha-agent-stop.sh": haAgentStopScript, "ha-agent-start.sh": haAgentStartScript,
		"pg-data-aside.sh": pgDataAsideScript, "pg-data-purge.sh": pgDataPurgeScript} {
		if strings.TrimSpace(script) == "" {
			t.Errorf("%s is empty", name)
			continue
		}
		cmd := exec.Command("sh", "-n")
		cmd.Stdin = strings.NewReader(scriptPrelude + script)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s does not parse: %v\n%s", name, err, out)
		}
	}
}

// asideBench runs pg-data-aside.sh and pg-data-purge.sh with /bin/sh in a directory of its own:
// a data directory, pigwf's state directory with the node's markers, and stand-ins for runuser,
// chown and pg_ctl (status: $PG_STATUS).
type asideBench struct {
	t         *testing.T
	dir, data string
	running   bool
	in        MemberNodeInput
}

func newAsideBench(t *testing.T) *asideBench {
	t.Helper()
	dir := t.TempDir()
	b := &asideBench{t: t, dir: dir, data: filepath.Join(dir, "data")}
	files := map[string]string{
		"path/runuser":       "#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done\nshift\nexec \"$@\"\n",
		"path/chown":         "#!/bin/sh\nexit 0\n",
		"bin/pg_ctl":         "#!/bin/sh\nexit $PG_STATUS\n",
		"data/PG_VERSION":    "15\n",
		"data/base/1/1259":   "rows\n",
		"state/pg-cluster":   "pg-test 7300000000000000001\n",
		"state/clone.done":   "7300000000000000001\n",
		"state/journal.keep": "",
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	prev := configStateDir
	configStateDir = filepath.Join(dir, "state")
	t.Cleanup(func() { configStateDir = prev })
	b.in = MemberNodeInput{Member: "pg-test-3", Node: goodNode, Key: "20261130T174800Z",
		Spec: PGSpec{Cluster: "pg-test", Port: 5432, DataDir: b.data, BinDir: filepath.Join(dir, "bin")}}
	return b
}

// run runs script (an activity's, as the fake remote received it) and returns its output and
// exit status.
func (b *asideBench) run(script string) (string, int) {
	b.t.Helper()
	// The steps' own prelude, its journal in the bench's directory.
	script = strings.NewReplacer(JournalPath, filepath.Join(b.dir, "journal.log"), "mkdir -p /var/lib/pigwf", "mkdir -p "+b.dir).Replace(script)
	if strings.Contains(script, "/var/lib/pigwf") {
		b.t.Fatalf("the script would touch the machine's /var/lib/pigwf:\n%s", script)
	}
	cmd := exec.Command("/bin/sh", "-c", script)
	status := "3"
	if b.running {
		status = "0"
	}
	cmd.Env = append(os.Environ(), "PATH="+filepath.Join(b.dir, "path")+":"+os.Getenv("PATH"), "PG_STATUS="+status)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		b.t.Fatal(err)
	}
	return string(out), code
}

// script is what activity sends to the node, captured by a fake remote.
func (b *asideBench) script(activity func(a *Activities) error) string {
	b.t.Helper()
	remote := &fakeRemote{}
	_ = activity(&Activities{Remote: remote})
	cmds := remote.commands()
	if len(cmds) != 1 || cmds[0].AsUser != "root" {
		b.t.Fatalf("commands: %+v", cmds)
	}
	return cmds[0].Script
}

func (b *asideBench) exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// A reinit moves the data directory aside under the run's key and leaves an empty one; a second
// attempt changes nothing; the aside copy holds everything; the cluster's marker stays.
func TestDataAsideReinit(t *testing.T) {
	b := newAsideBench(t)
	script := b.script(func(a *Activities) error {
		_, err := a.DataAside(context.Background(), DataAsideInput{MemberNodeInput: b.in, Why: AsideReinit})
		return err
	})
	aside := b.data + ".reinit-20261130T174800Z"
	out, code := b.run(script)
	if code != 0 || !strings.Contains(out, "changed: moved "+b.data+" aside to "+aside) || !strings.Contains(out, "fact: aside="+aside) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !b.exists(filepath.Join(aside, "base/1/1259")) {
		t.Error("the data did not move aside whole")
	}
	if entries, err := os.ReadDir(b.data); err != nil || len(entries) != 0 {
		t.Errorf("the data directory is not left empty: %v %v", entries, err)
	}
	if !b.exists(filepath.Join(b.dir, "state/pg-cluster")) || b.exists(filepath.Join(b.dir, "state/clone.done")) {
		t.Error("a reinit keeps the cluster's marker and forgets the finished clone")
	}
	out, code = b.run(script)
	if code != 0 || strings.Contains(out, "changed:") || !strings.Contains(out, "note: kept aside already: "+aside) {
		t.Errorf("second run, exit %d:\n%s", code, out)
	}
}

// A removal leaves no data directory and no marker; a running PostgreSQL refuses the move.
func TestDataAsideRemoved(t *testing.T) {
	b := newAsideBench(t)
	script := b.script(func(a *Activities) error {
		_, err := a.DataAside(context.Background(), DataAsideInput{MemberNodeInput: b.in, Why: AsideRemoved})
		return err
	})
	b.running = true
	out, code := b.run(script)
	if code != exitPermanent || !strings.Contains(out, "PostgreSQL still runs") || !b.exists(filepath.Join(b.data, "PG_VERSION")) {
		t.Fatalf("with PostgreSQL running, exit %d:\n%s", code, out)
	}
	b.running = false
	out, code = b.run(script)
	if code != 0 || !strings.Contains(out, "changed: moved") || b.exists(b.data) || b.exists(filepath.Join(b.dir, "state/pg-cluster")) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !b.exists(filepath.Join(b.data+".removed-20261130T174800Z", "PG_VERSION")) {
		t.Error("the data is not kept aside")
	}
}

// The purge deletes only the run's moved-aside directory, and is unchanged once it is gone.
func TestDataPurge(t *testing.T) {
	b := newAsideBench(t)
	aside := b.data + ".removed-20261130T174800Z"
	other := b.data + ".removed-20261101T000000Z"
	for _, d := range []string{aside, other} {
		if err := os.MkdirAll(filepath.Join(d, "base"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	script := b.script(func(a *Activities) error {
		_, err := a.DataPurge(context.Background(), b.in)
		return err
	})
	out, code := b.run(script)
	if code != 0 || !strings.Contains(out, "changed: deleted "+aside) || b.exists(aside) {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !b.exists(other) || !b.exists(filepath.Join(b.data, "PG_VERSION")) {
		t.Error("the purge deleted more than the run's own directory")
	}
	out, code = b.run(script)
	if code != 0 || strings.Contains(out, "changed:") {
		t.Errorf("second run, exit %d:\n%s", code, out)
	}
}

// The agent's steps get its paths and the disable flag as inputs.
func TestAgentStopStartInputs(t *testing.T) {
	b := newAsideBench(t)
	stop := b.script(func(a *Activities) error {
		_, err := a.AgentStop(context.Background(), AgentStopInput{MemberNodeInput: b.in, Disable: true})
		return err
	})
	for _, want := range []string{"conf=" + sshrun.ShellQuote(AgentConfigPath), "bin=" + sshrun.ShellQuote(AgentBinaryPath), "disable=1", "/etc/pigwf/disabled"} {
		if !strings.Contains(stop, want) {
			t.Errorf("the stop script lacks %q", want)
		}
	}
	start := b.script(func(a *Activities) error {
		_, err := a.AgentStart(context.Background(), b.in)
		return err
	})
	if !strings.Contains(start, "setsid $boot") || !strings.Contains(start, "systemctl start pg-ha-agent") {
		t.Error("the start script does not start the agent's service")
	}
}
