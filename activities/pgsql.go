package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/activities/sshrun"
	"github.com/pigwf/pigwf/internal/libpq"
)

// psql runs SQL on a member over its unix socket as postgres (peer auth). The SQL travels on
// stdin, so passwords in it never appear on a command line; log_statement is switched off for
// the session so they do not reach the server log either.
func (a *Activities) psql(ctx context.Context, node Node, port int, db, sql string) (string, error) {
	out, err := psqlOn(ctx, a.Remote, node, port, db, sql)
	var run *runError
	if errors.As(err, &run) {
		return "", a.classify(node, "psql", run.err)
	}
	return out, err
}

// runError is a failure to run psql at all (SSH), as opposed to psql failing.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// psqlOn runs SQL as postgres over the local socket of node, through r; log_statement is off for
// the session. The one psql runner of activities and of the CLI's own SQL (WaitArchived).
func psqlOn(ctx context.Context, r Remote, node Node, port int, db, sql string) (string, error) {
	script := fmt.Sprintf("exec psql -X -q -A -t -v ON_ERROR_STOP=1 -h /var/run/postgresql -p %d -d %s -f -", port, sshrun.ShellQuote(db))
	out, err := r.Run(ctx, node.Target(), sshrun.Command{Script: script, AsUser: "postgres", Stdin: []byte("SET log_statement = 'none';\n" + sql)})
	if err != nil {
		return "", &runError{fmt.Errorf("%s: while running psql over SSH: %w", node, err)}
	}
	if out.ExitStatus != 0 {
		// psql's stderr echoes the failing statement (LINE ...): only its digest goes on.
		return out.Stdout, fmt.Errorf("psql on %s: %w", node, &sshrun.ExitError{Status: out.ExitStatus, Stderr: outputDigest(out.Stderr)})
	}
	return strings.TrimSpace(out.Stdout), nil
}

// leaderReadyWait bounds how long a precheck waits for a PostgreSQL that is starting.
const leaderReadyWait = 20 * time.Second

// waitAcceptingConnections waits (heartbeating) until PostgreSQL on node accepts connections on
// its socket, by pg_isready's exit status (0 accepting, 1 rejecting: starting up or shutting
// down, 2 no answer), for at most max. The error says the last status; callers then run their
// query and report what it says.
func waitAcceptingConnections(ctx context.Context, r Remote, node Node, port int, max time.Duration) error {
	deadline := time.Now().Add(max)
	for {
		out, err := r.Run(ctx, node.Target(), sshrun.Command{AsUser: "postgres", Timeout: 10 * time.Second,
			Script: fmt.Sprintf("exec pg_isready -q -h /var/run/postgresql -p %d -t 2", port)})
		if err != nil {
			return fmt.Errorf("%s: pg_isready over SSH: %w", node, err)
		}
		if out.ExitStatus == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: pg_isready exit status %d after %s", node, out.ExitStatus, max)
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, "waiting for PostgreSQL on "+node.String()+" to accept connections")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// RoleSpec is a role pigwf ensures. Passwords are looked up on the worker, never carried here.
type RoleSpec struct {
	Name        string   `json:"name"`
	Login       bool     `json:"login"`
	Replication bool     `json:"replication,omitempty"`
	Superuser   bool     `json:"superuser,omitempty"`
	InRoles     []string `json:"in_roles,omitempty"`
	Comment     string   `json:"comment,omitempty"`
	// Password names where the password comes from: "replication", "admin", "user" (pg_users),
	// or "" for none.
	Password string `json:"password,omitempty"`
}

// DatabaseSpec is a database pigwf ensures.
type DatabaseSpec struct {
	Name    string `json:"name"`
	Owner   string `json:"owner,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// SQLInput runs role/database steps on the primary.
type SQLInput struct {
	Primary   Node           `json:"primary"`
	Spec      PGSpec         `json:"spec"`
	Roles     []RoleSpec     `json:"roles"`
	Databases []DatabaseSpec `json:"databases,omitempty"`
	Step      string         `json:"step"`
}

type roleState struct {
	Name     string   `json:"rolname"`
	Password string   `json:"pw"`
	Login    bool     `json:"login"`
	Repl     bool     `json:"repl"`
	Super    bool     `json:"super"`
	Comment  string   `json:"comment"`
	InRoles  []string `json:"in_roles"`
}

func sqlLit(s string) string   { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func sqlIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// PgRoles ensures roles (attributes, password, memberships, comment) and databases (owner,
// comment) on the primary. It compares first — passwords by SCRAM verifier — and changes only
// what differs, so a second run reports unchanged.
func (a *Activities) PgRoles(ctx context.Context, in SQLInput) (StepResult, error) {
	res := StepResult{Node: in.Primary.Addr, Step: in.Step}
	repl, admin, users, err := a.clusterSecrets(in.Spec.InventoryFile, in.Spec.Cluster)
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError(err.Error(), ErrConfig, nil)
	}
	raw, err := a.psql(ctx, in.Primary, in.Spec.Port, "postgres", `SELECT coalesce(json_agg(r), '[]') FROM (
  SELECT a.rolname, coalesce(a.rolpassword, '') AS pw, a.rolcanlogin AS login, a.rolreplication AS repl, a.rolsuper AS super,
         coalesce(shobj_description(a.oid, 'pg_authid'), '') AS comment,
         coalesce((SELECT array_agg(g.rolname ORDER BY g.rolname) FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid WHERE m.member = a.oid), '{}') AS in_roles
  FROM pg_authid a) r;`)
	if err != nil {
		return res, err
	}
	var have []roleState
	if err := json.Unmarshal([]byte(raw), &have); err != nil {
		return res, fmt.Errorf("while reading roles on %s: %w (psql answered %s)", in.Primary, err, outputDigest(raw))
	}
	byName := map[string]roleState{}
	for _, r := range have {
		byName[r.Name] = r
	}
	var stmts []string
	note := func(s string) { res.Changes = append(res.Changes, s) }
	for _, want := range in.Roles {
		cur, exists := byName[want.Name]
		attrs := fmt.Sprintf("%s %s %s", map[bool]string{true: "LOGIN", false: "NOLOGIN"}[want.Login],
			map[bool]string{true: "REPLICATION", false: "NOREPLICATION"}[want.Replication], map[bool]string{true: "SUPERUSER", false: "NOSUPERUSER"}[want.Superuser])
		if !exists {
			stmts = append(stmts, fmt.Sprintf("CREATE ROLE %s %s;", sqlIdent(want.Name), attrs))
			note("created role " + want.Name)
		} else if cur.Login != want.Login || cur.Repl != want.Replication || cur.Super != want.Superuser {
			stmts = append(stmts, fmt.Sprintf("ALTER ROLE %s %s;", sqlIdent(want.Name), attrs))
			note("set " + strings.ToLower(attrs) + " on " + want.Name)
		}
		pw := map[string]string{"replication": repl, "admin": admin, "user": users[want.Name]}[want.Password]
		if pw != "" && !scramMatches(cur.Password, pw) {
			// The verifier, computed here, is what the statement carries: never the password.
			verifier, err := scramVerifier(pw)
			if errors.Is(err, ErrPasswordNotASCII) {
				return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("the password of role %s %v; use an ASCII password in the inventory", want.Name, err), ErrConfig, nil)
			} else if err != nil {
				return res, fmt.Errorf("while computing the password verifier of %s: %w", want.Name, err)
			}
			stmts = append(stmts, fmt.Sprintf("ALTER ROLE %s PASSWORD %s;", sqlIdent(want.Name), sqlLit(verifier)))
			note("set the password of " + want.Name)
		}
		for _, g := range want.InRoles {
			if !contains(cur.InRoles, g) {
				stmts = append(stmts, fmt.Sprintf("GRANT %s TO %s;", sqlIdent(g), sqlIdent(want.Name)))
				note(fmt.Sprintf("granted %s to %s", g, want.Name))
			}
		}
		if want.Comment != "" && cur.Comment != want.Comment {
			stmts = append(stmts, fmt.Sprintf("COMMENT ON ROLE %s IS %s;", sqlIdent(want.Name), sqlLit(want.Comment)))
			note("commented role " + want.Name)
		}
	}
	if len(stmts) > 0 {
		if _, err := a.psql(ctx, in.Primary, in.Spec.Port, "postgres", "BEGIN;\n"+strings.Join(stmts, "\n")+"\nCOMMIT;"); err != nil {
			return res, err
		}
	}
	if in.Step == StepRoles {
		if err := a.rewindGrants(ctx, in, &res); err != nil {
			return res, err
		}
	}
	if err := a.ensureDatabases(ctx, in, &res); err != nil {
		return res, err
	}
	res.Changed = len(res.Changes) > 0
	if !res.Changed {
		res.Notes = append(res.Notes, fmt.Sprintf("%d roles and %d databases as specified", len(in.Roles), len(in.Databases)))
	}
	return res, nil
}

// rewindGrants lets the replication user run pg_rewind as a non-superuser (PostgreSQL docs).
func (a *Activities) rewindGrants(ctx context.Context, in SQLInput, res *StepResult) error {
	funcs := []string{"pg_catalog.pg_ls_dir(text, boolean, boolean)", "pg_catalog.pg_stat_file(text, boolean)",
		"pg_catalog.pg_read_binary_file(text)", "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)"}
	var checks []string
	for _, f := range funcs {
		checks = append(checks, fmt.Sprintf("has_function_privilege(%s, %s, 'execute')", sqlLit(in.Spec.ReplicationUser), sqlLit(f)))
	}
	out, err := a.psql(ctx, in.Primary, in.Spec.Port, "postgres", "SELECT "+strings.Join(checks, " AND ")+";")
	if err != nil {
		return err
	}
	if out == "t" {
		return nil
	}
	var grants []string
	for _, f := range funcs {
		grants = append(grants, fmt.Sprintf("GRANT EXECUTE ON FUNCTION %s TO %s;", f, sqlIdent(in.Spec.ReplicationUser)))
	}
	if _, err := a.psql(ctx, in.Primary, in.Spec.Port, "postgres", strings.Join(grants, "\n")); err != nil {
		return err
	}
	res.Changes = append(res.Changes, "granted pg_rewind's functions to "+in.Spec.ReplicationUser)
	return nil
}

func (a *Activities) ensureDatabases(ctx context.Context, in SQLInput, res *StepResult) error {
	if len(in.Databases) == 0 {
		return nil
	}
	raw, err := a.psql(ctx, in.Primary, in.Spec.Port, "postgres", `SELECT coalesce(json_object_agg(datname, json_build_object('owner', pg_get_userbyid(datdba), 'comment', coalesce(shobj_description(oid, 'pg_database'), ''))), '{}') FROM pg_database;`)
	if err != nil {
		return err
	}
	have := map[string]struct{ Owner, Comment string }{}
	if err := json.Unmarshal([]byte(raw), &have); err != nil {
		return fmt.Errorf("while reading databases on %s: %w (psql answered %s)", in.Primary, err, outputDigest(raw))
	}
	for _, d := range in.Databases {
		owner := d.Owner
		if owner == "" {
			owner = "postgres"
		}
		cur, exists := have[d.Name]
		var stmts []string
		if !exists {
			// CREATE DATABASE cannot run inside a transaction: one statement per call.
			stmts = append(stmts, fmt.Sprintf("CREATE DATABASE %s OWNER %s;", sqlIdent(d.Name), sqlIdent(owner)))
			res.Changes = append(res.Changes, fmt.Sprintf("created database %s (owner %s)", d.Name, owner))
		} else if cur.Owner != owner {
			stmts = append(stmts, fmt.Sprintf("ALTER DATABASE %s OWNER TO %s;", sqlIdent(d.Name), sqlIdent(owner)))
			res.Changes = append(res.Changes, fmt.Sprintf("owner of database %s set to %s", d.Name, owner))
		}
		if d.Comment != "" && cur.Comment != d.Comment {
			stmts = append(stmts, fmt.Sprintf("COMMENT ON DATABASE %s IS %s;", sqlIdent(d.Name), sqlLit(d.Comment)))
			res.Changes = append(res.Changes, "commented database "+d.Name)
		}
		for _, s := range stmts {
			if _, err := a.psql(ctx, in.Primary, in.Spec.Port, "postgres", s); err != nil {
				return err
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// PgClone makes a replica's data directory a copy of the primary with pg_basebackup. A flock
// serialises attempts: a retry after a worker crash waits for a clone still running on the node
// instead of racing it. A completed clone is recorded outside the data directory; a directory
// that holds only part of a clone is moved aside, never deleted.
func (a *Activities) PgClone(ctx context.Context, in PgNodeInput) (StepResult, error) {
	if err := a.checkPlaintext(in.Spec.Plaintext); err != nil {
		return StepResult{}, err
	}
	script := in.pgEnv() + sysidScript + withInputs(pgCloneScript,
		shellVar{"want", in.ClusterSysid},
		shellVar{"primary", in.Primary.SSHHost},
		shellVar{"conninfo", cloneConninfo(in)})
	return a.runStep(ctx, in.Node, StepClone, script, nil)
}

// cloneConninfo is pg_basebackup's connection to the primary: as the replication user (its
// password in ~postgres/.pgpass), verifying the primary's certificate unless the lab is plain
// text, as the agents' own connections to other members do.
func cloneConninfo(in PgNodeInput) string {
	ps := []libpq.Param{
		libpq.P("host", in.Primary.SSHHost), libpq.P("port", fmt.Sprint(in.Spec.Port)),
		libpq.P("user", in.Spec.ReplicationUser), libpq.P("application_name", in.Node.Name+"-clone"),
	}
	return libpq.Conninfo(append(ps, libpq.VerifyFull(nodeTLS(in.Spec.Plaintext))...)...)
}

// PgWaitStreaming waits until every named member streams from the primary, as the primary's
// pg_stat_replication reports it (never the DCS's belief). It changes nothing.
func (a *Activities) PgWaitStreaming(ctx context.Context, in PgNodeInput) (StepResult, error) {
	res := StepResult{Node: in.Primary.Addr, Step: StepStreaming, Facts: map[string]string{}}
	last := ""
	for {
		out, err := a.psql(ctx, in.Primary, in.Spec.Port, "postgres", "SELECT application_name || '=' || state || '/' || sync_state FROM pg_stat_replication ORDER BY 1;")
		if err == nil {
			states := map[string]string{}
			for _, line := range strings.Split(out, "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					states[k] = v
				}
			}
			missing := []string{}
			for _, m := range in.Members {
				if !strings.HasPrefix(states[m], "streaming/") {
					missing = append(missing, m)
				}
			}
			if len(missing) == 0 {
				names := make([]string, 0, len(in.Members))
				for _, m := range in.Members {
					names = append(names, m+" "+states[m])
					res.Facts[m] = states[m]
				}
				sort.Strings(names)
				res.Notes = append(res.Notes, "streaming: "+strings.Join(names, ", "))
				return res, nil
			}
			// Only the members' own states are shown: any client may set an application_name.
			for i, m := range missing {
				missing[i] = m + " (" + orDash(states[m]) + ")"
			}
			last = "not streaming yet: " + strings.Join(missing, ", ")
		} else {
			last = err.Error()
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, last)
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("while waiting for replicas to stream from %s: %w (%s)", in.Primary, ctx.Err(), last)
		case <-time.After(300 * time.Millisecond):
		}
	}
}
