package dsl

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var threeMembers = []Member{{"pg-test-1", "primary"}, {"pg-test-2", "replica"}, {"pg-test-3", "replica"}}

// The runbooks shipped in runbooks/ parse and validate against a three-member cluster.
func TestShippedRunbooks(t *testing.T) {
	files, err := filepath.Glob("../runbooks/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no runbooks/*.yml: %v", err)
	}
	for _, f := range files {
		rb, err := ParseFile(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if err := Validate(rb, threeMembers); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestParseRollingRestart(t *testing.T) {
	rb, err := ParseFile("../runbooks/rolling-restart.yml")
	if err != nil {
		t.Fatal(err)
	}
	if rb.Name != "rolling-restart" || len(rb.Steps) != 5 {
		t.Fatalf("runbook %q with %d steps", rb.Name, len(rb.Steps))
	}
	each := rb.Steps[1]
	if each.Kind != KindEach || each.Each.Of != TargetReplicas || each.Each.Parallel || len(each.Each.Steps) != 2 {
		t.Fatalf("step 2: %+v", each)
	}
	r := each.Each.Steps[0]
	if r.Kind != KindRestart || r.Restart.On != TargetMember || r.Timeout != 5*time.Minute || r.Line == 0 {
		t.Errorf("the loop's restart: %+v", r)
	}
	last := rb.Steps[4]
	if last.Wait.Until != UntilLag || last.Wait.Lag != 16<<20 || last.Wait.On != TargetReplicas {
		t.Errorf("the last wait: %+v", last.Wait)
	}
	if old := rb.Steps[3]; !old.Restart.Pending || old.Retry.Attempts != 2 || old.Retry.Wait != 10*time.Second {
		t.Errorf("old-primary: %+v %+v", old.Restart, old.Retry)
	}
}

// Bad runbook files: each refused with the problem at its line and a fix, all at once.
func TestBadRunbooks(t *testing.T) {
	const head = "runbook: test\nsteps:\n"
	for _, c := range []struct {
		n         int
		body      string
		line      int
		want, fix string
	}{
		{1, "  - name: a\n    reboot: {}\n", 4, "is not a field here", "fields:"},
		{2, "  - name: a\n    restrat: {on: replicas}\n", 4, "is not a field here", "did you mean restart?"},
		{3, "  - name: a\n", 3, "has no step type", "exactly one of"},
		{4, "  - name: a\n    sql: {statement: 'select 1'}\n    reload: {}\n", 3, "has 2 step types", "split it"},
		{5, "  - sql: {statement: 'select 1'}\n", 3, "name is missing", "name every step"},
		{6, "  - name: A B\n    reload: {}\n", 3, `"A B" is not a name`, "lower-case"},
		{7, "  - name: a\n    reload: {on: everyone}\n", 4, `"everyone" is not a target`, "leader, replicas or members"},
		{8, "  - name: a\n    reload: {on: member}\n", 4, `"member" means the loop's member`, "inside each"},
		{9, "  - name: a\n    each: {of: replicas, parallel: maybe, steps: [{name: b, reload: {}}]}\n", 4, `"maybe" is not true or false`, "true or false"},
		{10, "  - name: a\n    wait: {until: lag}\n", 4, "lag is missing", "16MB"},
		{11, "  - name: a\n    wait: {until: lag, lag: lots}\n", 4, `"lots" is not a size`, "16MB"},
		{12, "  - name: a\n    wait: {until: forever}\n", 4, "is not a condition", "streaming, lag"},
		{13, "  - name: a\n    wait: {until: streaming, statement: 'select 1'}\n", 4, "does not apply to until: streaming", "remove it"},
		{14, "  - name: a\n    sql: {on: leader}\n", 4, "statement is missing", "the SQL"},
		{15, "  - name: a\n    sql: {statement: 'select 1', database: 'meta; drop'}\n", 4, "is not a valid database name", "lower-case"},
		{16, "  - name: a\n    reload: {}\n    timeout: soon\n", 5, `"soon" is not a duration`, "30s"},
		{17, "  - name: a\n    reload: {}\n    retry: {attempts: 0}\n", 5, `"0" is not a number of attempts`, "1-100"},
		{18, "  - name: a\n    runbook: {name: drop-everything}\n", 4, "is not a built-in runbook", "pg-service"},
		{19, "  - name: a\n    each: {of: replicas, steps: [{name: b, each: {of: members, steps: [{name: c, reload: {}}]}}]}\n", 4, "is inside another each", "do not nest"},
		{20, "  - name: a\n    each: {of: leader, steps: [{name: b, reload: {}}]}\n", 4, "loops over one member", "replicas or members"},
		{21, "  - name: a\n    reload: {}\n    when: {step: b}\n", 5, "changed is missing", "changed: true"},
		{22, "  - name: a\n    name: b\n    reload: {}\n", 4, "is written twice", "keep one"},
		{23, "  - name: a\n    sql: {statement: \"select 1\\x07\"}\n", 4, "control character", "remove it"},
		{24, "  - name: a\n    switchover: {candidate: 'x;y'}\n", 4, "is not a member name", "leave candidate out"},
		{25, "  - name: a\n    runbook: {name: pitr-restore}\n", 4, "pitr-restore cannot run inside a runbook", "pigwf start pitr-restore"},
		{26, "  - name: a\n    password: {role: dbuser_meta}\n", 4, "secret is missing", "secret: dbuser_meta"},
		{27, "  - name: a\n    password: {role: 'x\"; drop role y; --', secret: s}\n", 4, "is not a valid role name", "lower-case"},
		{28, "  - name: a\n    password: {role: r, secret: ../../etc/shadow}\n", 4, "is not a secret name", "lower-case"},
		{29, "  - name: a\n    each: {of: replicas, steps: [{name: b, password: {role: r, secret: s}}]}\n", 4, "password is inside each", "outside the loop"},
		{30, "  - name: a\n    restart: {on: leader}\n", 4, "includes the leader", "switch over first"},
		{31, "  - name: a\n    restart: {on: members}\n", 4, "includes the leader", "switch over first"},
		{32, "  - name: a\n    approval: {}\n    retry: {attempts: 2}\n", 5, "retry does not apply to an approval step", "not retried"},
		{33, "  - name: a\n    switchover: {}\n    timeout: 5m\n", 5, "timeout does not apply to a switchover step", "pigwf_approval_timeout"},
		{34, "  - name: a\n    each: {of: replicas, steps: [{name: b, reload: {}}]}\n    retry: {attempts: 2}\n", 5, "retry does not apply to an each step", "loop's steps"},
		{35, "  - name: a\n    runbook: {}\n", 4, "name is missing", "node-init"},
	} {
		_, err := Parse("bad.yml", []byte(head+c.body))
		var ps Problems
		if !errors.As(err, &ps) {
			t.Errorf("case %d: %v; want Problems", c.n, err)
			continue
		}
		found := false
		for _, p := range ps {
			if p.File == "bad.yml" && p.Line == c.line && strings.Contains(p.String(), c.want) && strings.Contains(p.Fix, c.fix) {
				found = true
			}
		}
		if !found {
			t.Errorf("case %d: problems\n%v\nwant one at bad.yml:%d with %q and fix %q", c.n, err, c.line, c.want, c.fix)
		}
	}
}

func TestNotYAML(t *testing.T) {
	_, err := Parse("x.yml", []byte("runbook: a\nsteps: [\n"))
	var ps Problems
	if !errors.As(err, &ps) || ps[0].Line < 2 || !strings.Contains(ps[0].Problem, "is not YAML") {
		t.Fatalf("%v; want a YAML error with its line", err)
	}
}

// The rules across steps, against the cluster.
func TestValidate(t *testing.T) {
	for _, c := range []struct {
		n       int
		body    string
		members []Member
		line    int
		want    string // "" = valid
	}{
		{1, "  - name: r\n    restart: {}\n", threeMembers, 3, "is a restart without an approval before it"},
		{2, "  - name: s\n    switchover: {}\n", threeMembers, 3, "is a switchover without an approval before it"},
		{3, "  - name: p\n    runbook: {name: switchover}\n", threeMembers, 3, "child run of switchover without an approval"},
		{4, "  - name: ok\n    approval: {}\n    when: {step: x, changed: true}\n  - name: r\n    restart: {}\n", threeMembers, 6, "restart without an approval"},
		{5, "  - name: ok\n    approval: {}\n  - name: r\n    restart: {}\n", threeMembers, 0, ""},
		{6, "  - name: ok\n    approval: {}\n  - name: l\n    each: {of: replicas, steps: [{name: r, restart: {}}]}\n", threeMembers, 0, ""},
		{7, "  - name: l\n    each: {of: replicas, steps: [{name: ok, approval: {}}, {name: r, restart: {}}]}\n", threeMembers, 0, ""},
		{8, "  - name: l\n    each: {of: replicas, steps: [{name: ok, approval: {}}]}\n  - name: r\n    restart: {}\n", threeMembers, 5, "restart without an approval"},
		{9, "  - name: l\n    each: {of: replicas, steps: [{name: v, reload: {}}]}\n", []Member{{"pg-test-1", "primary"}}, 3, "selects no member"},
		{10, "  - name: a\n    reload: {}\n    when: {step: b, changed: true}\n  - name: b\n    reload: {}\n", threeMembers, 5, `"b" is not an earlier step`},
		{11, "  - name: a\n    reload: {}\n  - name: b\n    reload: {}\n    when: {step: a, changed: false}\n", threeMembers, 0, ""},
		{12, "  - name: a\n    reload: {}\n  - name: a\n    reload: {}\n", threeMembers, 5, "is also the name of the step at line 3"},
		{13, "  - name: ok\n    approval: {}\n  - name: s\n    switchover: {candidate: pg-test-9}\n", threeMembers, 5, `"pg-test-9" is not a member of the cluster`},
		{14, "  - name: l\n    each: {of: replicas, steps: [{name: v, reload: {}}]}\n  - name: w\n    reload: {}\n    when: {step: v, changed: true}\n", threeMembers, 7, "a loop's steps are not visible after it"},
		{15, "  - name: l\n    each: {of: replicas, steps: [{name: v, reload: {}}]}\n  - name: w\n    reload: {}\n    when: {step: l, changed: true}\n", threeMembers, 0, ""},
		{16, "  - name: p\n    password: {role: r, secret: s}\n", threeMembers, 3, "is a password change without an approval before it"},
		{17, "  - name: ok\n    approval: {}\n  - name: l\n    each: {of: members, steps: [{name: r, restart: {}}]}\n", threeMembers, 6, "restarts the leader too"},
		{18, "  - name: l\n    each: {of: replicas, parallel: true, steps: [{name: ok, approval: {}}, {name: v, reload: {}}]}\n", threeMembers, 4, "is an approval inside a parallel loop"},
		{19, "  - name: ok\n    approval: {}\n  - name: l\n    each: {of: replicas, parallel: true, steps: [{name: s, switchover: {}}]}\n", threeMembers, 6, "is a switchover inside a parallel loop"},
		{20, "  - name: ok\n    approval: {}\n  - name: l\n    each: {of: replicas, parallel: true, steps: [{name: r, restart: {}}, {name: w, wait: {until: streaming}}]}\n", threeMembers, 0, ""},
		{21, "  - name: ok\n    approval: {}\n  - name: l\n    each: {of: members, steps: [{name: r, restart: {on: replicas}}]}\n", threeMembers, 0, ""},
	} {
		rb, err := Parse("v.yml", []byte("runbook: test\nsteps:\n"+c.body))
		if err != nil {
			t.Errorf("case %d: parse: %v", c.n, err)
			continue
		}
		err = Validate(rb, c.members)
		if c.want == "" {
			if err != nil {
				t.Errorf("case %d: %v; want valid", c.n, err)
			}
			continue
		}
		var ps Problems
		if !errors.As(err, &ps) {
			t.Errorf("case %d: %v; want a problem at line %d with %q", c.n, err, c.line, c.want)
			continue
		}
		found := false
		for _, p := range ps {
			found = found || (p.Line == c.line && strings.Contains(p.String(), c.want))
		}
		if !found {
			t.Errorf("case %d: problems\n%v\nwant one at v.yml:%d with %q", c.n, err, c.line, c.want)
		}
	}
}

// A parsed runbook records the format version its meaning is read by.
func TestParseRecordsTheFormat(t *testing.T) {
	rb, err := ParseFile("../runbooks/vacuum-analyze.yml")
	if err != nil {
		t.Fatal(err)
	}
	if rb.Format != FormatVersion || FormatVersion < 1 {
		t.Errorf("format %d, want %d", rb.Format, FormatVersion)
	}
}

func TestParsePassword(t *testing.T) {
	rb, err := ParseFile("../runbooks/rotate-password.yml")
	if err != nil {
		t.Fatal(err)
	}
	var pw *Step
	for i := range rb.Steps {
		if rb.Steps[i].Kind == KindPassword {
			pw = &rb.Steps[i]
		}
	}
	if pw == nil || pw.Password.Role == "" || pw.Password.Secret == "" || !pw.risky() {
		t.Fatalf("rotate-password.yml has no password step with a role and a secret: %+v", rb.Steps)
	}
}

// The plan names every step with its file:line and what it does, a loop's steps under it, and
// the members a caller knows a step acts on.
func TestPlan(t *testing.T) {
	rb, err := ParseFile("../runbooks/rolling-restart.yml")
	if err != nil {
		t.Fatal(err)
	}
	lines := rb.Plan(func(s Step) string {
		if s.Name == "old-primary" {
			return "pg-test-1"
		}
		return ""
	})
	want := []string{
		"1. approve (rolling-restart.yml:7): wait for an approval: restart every member of the cluster, with one switchover",
		"2. replicas (rolling-restart.yml:9): for each of the replicas, one at a time",
		"   2.1. restart-replica (rolling-restart.yml:13): restart PostgreSQL on the loop's member, each streaming again before the next; within 5m",
		"   2.2. replica-streaming (rolling-restart.yml:16): wait until the loop's member streams from the leader; within 2m",
		"3. move-primary (rolling-restart.yml:19): switch the primary over to the best candidate: a child switchover run, which asks for its own approval",
		"4. old-primary (rolling-restart.yml:21): restart PostgreSQL on the replicas, each streaming again before the next (only where a setting waits for a restart); up to 2 attempts, 10s apart → pg-test-1",
		"5. all-streaming (rolling-restart.yml:24): wait until the replicas stream at most 16 MB behind the leader; within 5m",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// A Runbook not made by Parse (a crafted workflow input the worker checks again) is refused, not
// dereferenced: a step without its kind's arguments, or of no kind.
func TestValidateMalformed(t *testing.T) {
	rb := &Runbook{File: "crafted", Steps: []Step{{Name: "a", Kind: KindRestart, Line: 1}, {Name: "b", Kind: "shell", Line: 2},
		{Name: "c", Kind: KindEach, Line: 3, Each: &EachArgs{Of: TargetReplicas, Steps: []Step{{Name: "d", Kind: KindSQL, Line: 4}}}}}}
	err := Validate(rb, threeMembers)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 3 || !strings.Contains(ps[0].Problem, `no arguments for its kind "restart"`) || ps[2].Line != 4 {
		t.Fatalf("%v; want the three malformed steps refused", err)
	}
}
