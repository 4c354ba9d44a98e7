package activities

import (
	"context"
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
// The attributes left nil are not managed: a new role gets PostgreSQL's default, an existing one
// keeps what it has.
type RoleSpec struct {
	Name        string   `json:"name"`
	Login       bool     `json:"login"`
	Replication bool     `json:"replication,omitempty"`
	Superuser   bool     `json:"superuser,omitempty"`
	InRoles     []string `json:"in_roles,omitempty"`
	Comment     string   `json:"comment,omitempty"`
	// Password names where the password comes from: "replication", "admin", "user" (pg_users),
	// or "" for none.
	Password   string `json:"password,omitempty"`
	CreateDB   *bool  `json:"createdb,omitempty"`
	CreateRole *bool  `json:"createrole,omitempty"`
	Inherit    *bool  `json:"inherit,omitempty"`
	BypassRLS  *bool  `json:"bypassrls,omitempty"`
	ConnLimit  *int   `json:"connlimit,omitempty"` // -1: no limit
	// Absent: the role must not exist (pg_users' state: absent); only pg-users drops.
	Absent bool `json:"absent,omitempty"`
}

// DatabaseSpec is a database pigwf ensures.
type DatabaseSpec struct {
	Name      string `json:"name"`
	Owner     string `json:"owner,omitempty"`
	Comment   string `json:"comment,omitempty"`
	ConnLimit *int   `json:"connlimit,omitempty"` // -1: no limit; nil: not managed
	// Absent: the database must not exist (pg_databases' state: absent); only pg-databases
	// drops, after an approval.
	Absent bool `json:"absent,omitempty"`
}

// SQLInput runs role/database steps on the primary.
type SQLInput struct {
	Primary   Node           `json:"primary"`
	Spec      PGSpec         `json:"spec"`
	Roles     []RoleSpec     `json:"roles"`
	Databases []DatabaseSpec `json:"databases,omitempty"`
	Step      string         `json:"step"`
}

func sqlLit(s string) string   { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
func sqlIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// PgRoles ensures roles (attributes, password, memberships, comment) and databases (owner,
// connection limit, comment) on the primary, as planned against its catalog (pgobjectplan.go):
// passwords compared by SCRAM verifier, only what differs changed, so a second run reports
// unchanged. It creates and alters; it never drops (pg-users and pg-databases do).
func (a *Activities) PgRoles(ctx context.Context, in SQLInput) (StepResult, error) {
	res := StepResult{Node: in.Primary.Addr, Step: in.Step}
	passwords, err := a.rolePasswords(in.Spec.InventoryFile, in.Spec.Cluster)
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError(err.Error(), ErrConfig, nil)
	}
	cat, err := a.primaryCatalog(ctx, in.Primary, in.Spec.Port, nil)
	if err != nil {
		return res, err
	}
	kind := KindUser
	if in.Step == StepRoles {
		kind = KindRole
	}
	known := map[string]bool{} // the roles created before, in the same transaction
	var stmts []string
	for _, want := range in.Roles {
		if want.Absent {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s %s has state: absent, and %s does not drop: pigwf start pg-users does", kind, want.Name, in.Step), ErrConfig, nil)
		}
		p, err := planRole(kind, want, cat, passwords.of(want), known)
		if err != nil {
			return res, err
		}
		known[want.Name] = true
		if p.change.Refused != "" {
			return res, temporal.NewNonRetryableApplicationError(p.change.String()+"; nothing was changed", ErrConflict, nil)
		}
		stmts = append(stmts, p.stmts...)
		if p.change.Changes() {
			res.Changes = append(res.Changes, p.change.Done())
		}
	}
	if err := a.execute(ctx, in.Primary, in.Spec.Port, KindRole, stmts); err != nil {
		return res, err
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

// primaryCatalog reads node's catalog (catalogQuery) and refuses a node that is in recovery:
// roles and databases are made on the primary only, and a replica answers with the primary's
// state of a moment ago.
func (a *Activities) primaryCatalog(ctx context.Context, node Node, port int, dependentsOf []string) (catalog, error) {
	cat, err := a.readCatalog(ctx, node, port, dependentsOf)
	if err == nil && cat.InRecovery {
		err = notPrimary(node)
	}
	return cat, err
}

// notPrimary is the refusal of a step bound to the primary on a node whose PostgreSQL is in
// recovery: the cluster failed over since the run read its leader. Not retryable: the run (a
// build that follows the new leader, or a rerun) plans again on the leader.
func notPrimary(node Node) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
		"%s is not the primary (PostgreSQL there is in recovery): was there a failover? nothing was changed; run again to plan on the leader", node), ErrConflict, nil)
}

// execute runs a plan's statements on node: a role's in one transaction (all or nothing); a
// database's each on its own, since CREATE and DROP DATABASE cannot run in a transaction block
// (a rerun plans again and does what is left).
func (a *Activities) execute(ctx context.Context, node Node, port int, kind string, stmts []string) error {
	if len(stmts) == 0 {
		return nil
	}
	if kind != KindDatabase {
		_, err := a.psql(ctx, node, port, "postgres", "BEGIN;\n"+strings.Join(stmts, "\n")+"\nCOMMIT;")
		return err
	}
	for _, s := range stmts {
		if _, err := a.psql(ctx, node, port, "postgres", s); err != nil {
			return err
		}
	}
	return nil
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

// ensureDatabases plans the databases against the catalog as it is once the roles were made
// (their owners among them), and makes them so.
func (a *Activities) ensureDatabases(ctx context.Context, in SQLInput, res *StepResult) error {
	if len(in.Databases) == 0 {
		return nil
	}
	cat, err := a.primaryCatalog(ctx, in.Primary, in.Spec.Port, nil)
	if err != nil {
		return err
	}
	for _, d := range in.Databases {
		if d.Absent {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("database %s has state: absent, and %s does not drop: pigwf start pg-databases does, after an approval", d.Name, in.Step), ErrConfig, nil)
		}
		p, err := planDatabase(d, cat)
		if err != nil {
			return err
		}
		if p.change.Refused != "" {
			return temporal.NewNonRetryableApplicationError(p.change.String()+"; it was not changed", ErrConflict, nil)
		}
		if err := a.execute(ctx, in.Primary, in.Spec.Port, KindDatabase, p.stmts); err != nil {
			return err
		}
		if p.change.Changes() {
			res.Changes = append(res.Changes, p.change.Done())
		}
	}
	return nil
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
		// Each row tagged: r| whether this node is in recovery, s| a standby's state (an
		// application_name is any client's to choose, so it never shares a tag with the flag).
		out, err := a.psql(ctx, in.Primary, in.Spec.Port, "postgres",
			"SELECT 'r|' || pg_is_in_recovery()::text UNION ALL SELECT 's|' || application_name || '=' || state || '/' || sync_state FROM pg_stat_replication;")
		if err == nil {
			states := map[string]string{}
			for _, line := range strings.Split(out, "\n") {
				if line == "r|true" {
					// demoted by a failover: no replica will stream from it
					return res, notPrimary(in.Primary)
				}
				if k, v, ok := strings.Cut(strings.TrimPrefix(line, "s|"), "="); ok && strings.HasPrefix(line, "s|") {
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
