package activities

// The part of a server's catalog that roles and databases are planned against (pgobjectplan.go):
// read in one query, as postgres over the local socket (the one psql runner, psqlOn), so a plan
// sees one consistent moment. Role passwords are read as the verifiers PostgreSQL stores, only
// to compare them on the worker; they leave this process in no result, error or log.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// roleState is one role as the catalog has it.
type roleState struct {
	Name       string   `json:"rolname"`
	Password   string   `json:"pw"` // the stored verifier: compared, never returned
	Login      bool     `json:"login"`
	Repl       bool     `json:"repl"`
	Super      bool     `json:"super"`
	CreateDB   bool     `json:"createdb"`
	CreateRole bool     `json:"createrole"`
	Inherit    bool     `json:"inherit"`
	BypassRLS  bool     `json:"bypassrls"`
	ConnLimit  int      `json:"connlimit"`
	Comment    string   `json:"comment"`
	InRoles    []string `json:"in_roles"`
	Sessions   int      `json:"sessions"` // client sessions logged in as it now
}

// databaseState is one database as the catalog has it, with what would keep it from being
// dropped.
type databaseState struct {
	Name      string `json:"name"`
	Owner     string `json:"owner"`
	Comment   string `json:"comment"`
	ConnLimit int    `json:"connlimit"`
	Template  bool   `json:"template"`
	// Sessions are the client sessions connected to it now, SessionUsers who they are.
	Sessions      int      `json:"sessions"`
	SessionUsers  []string `json:"session_users"`
	Slots         int      `json:"slots"`         // replication slots of the database
	Subscriptions int      `json:"subscriptions"` // logical replication subscriptions in it
}

// roleDependent is what depends on a role in some database (pg_shdepend): what keeps DROP ROLE
// from succeeding.
type roleDependent struct {
	Role string `json:"role"`
	What string `json:"what"`
	N    int    `json:"n"`
}

// catalog is a server's roles and databases at one moment.
type catalog struct {
	InRecovery bool            `json:"in_recovery"`
	Roles      []roleState     `json:"roles"`
	Databases  []databaseState `json:"databases"`
	Dependents []roleDependent `json:"dependents"` // of the roles asked about only
}

func (c catalog) role(name string) (roleState, bool) {
	for _, r := range c.Roles {
		if r.Name == name {
			return r, true
		}
	}
	return roleState{}, false
}

func (c catalog) database(name string) (databaseState, bool) {
	for _, d := range c.Databases {
		if d.Name == name {
			return d, true
		}
	}
	return databaseState{}, false
}

// dependents are the descriptions of what depends on role ("owns database app", "owns objects in
// database app (3)").
func (c catalog) dependents(role string) []string {
	var out []string
	for _, d := range c.Dependents {
		if d.Role == role {
			what := d.What
			if d.N > 1 {
				what += fmt.Sprintf(" (%d)", d.N)
			}
			out = append(out, what)
		}
	}
	return out
}

// catalogQuery reads the catalog; dependentsOf are the roles whose dependents are wanted (the
// roles to drop), each a name the inventory's rule admitted, quoted as a literal all the same.
func catalogQuery(dependentsOf []string) string {
	names := make([]string, len(dependentsOf))
	for i, n := range dependentsOf {
		names[i] = sqlLit(n)
	}
	return `SELECT json_build_object(
  'in_recovery', pg_catalog.pg_is_in_recovery(),
  'roles', coalesce((SELECT json_agg(r) FROM (
    SELECT a.rolname, coalesce(a.rolpassword, '') AS pw, a.rolcanlogin AS login, a.rolreplication AS repl, a.rolsuper AS super,
           a.rolcreatedb AS createdb, a.rolcreaterole AS createrole, a.rolinherit AS inherit, a.rolbypassrls AS bypassrls,
           a.rolconnlimit AS connlimit, coalesce(pg_catalog.shobj_description(a.oid, 'pg_authid'), '') AS comment,
           coalesce((SELECT array_agg(g.rolname ORDER BY g.rolname) FROM pg_catalog.pg_auth_members m
                     JOIN pg_catalog.pg_roles g ON g.oid = m.roleid WHERE m.member = a.oid), '{}') AS in_roles,
           (SELECT count(*) FROM pg_catalog.pg_stat_activity s WHERE s.usesysid = a.oid AND s.backend_type = 'client backend') AS sessions
    FROM pg_catalog.pg_authid a) r), '[]'),
  'databases', coalesce((SELECT json_agg(d) FROM (
    SELECT d.datname AS name, pg_catalog.pg_get_userbyid(d.datdba) AS owner,
           coalesce(pg_catalog.shobj_description(d.oid, 'pg_database'), '') AS comment,
           d.datconnlimit AS connlimit, d.datistemplate AS template,
           (SELECT count(*) FROM pg_catalog.pg_stat_activity s WHERE s.datid = d.oid AND s.backend_type = 'client backend') AS sessions,
           coalesce((SELECT array_agg(DISTINCT coalesce(s.usename, '?')) FROM pg_catalog.pg_stat_activity s
                     WHERE s.datid = d.oid AND s.backend_type = 'client backend'), '{}') AS session_users,
           (SELECT count(*) FROM pg_catalog.pg_replication_slots s WHERE s.datoid = d.oid) AS slots,
           (SELECT count(*) FROM pg_catalog.pg_subscription s WHERE s.subdbid = d.oid) AS subscriptions
    FROM pg_catalog.pg_database d) d), '[]'),
  'dependents', coalesce((SELECT json_agg(x ORDER BY x.role, x.what) FROM (
    SELECT r.rolname AS role,
           CASE WHEN s.classid = 'pg_catalog.pg_database'::regclass AND s.deptype = 'o' THEN 'owns database ' || od.datname
                WHEN s.classid = 'pg_catalog.pg_database'::regclass THEN 'holds privileges on database ' || od.datname
                WHEN s.classid = 'pg_catalog.pg_tablespace'::regclass THEN 'owns or holds privileges on tablespace ' || ts.spcname
                WHEN s.deptype = 'o' THEN 'owns objects in database ' || coalesce(d.datname, '?')
                ELSE 'holds privileges or policies in database ' || coalesce(d.datname, '?') END AS what,
           count(*) AS n
    FROM pg_catalog.pg_shdepend s
    JOIN pg_catalog.pg_roles r ON s.refclassid = 'pg_catalog.pg_authid'::regclass AND s.refobjid = r.oid
    LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
    LEFT JOIN pg_catalog.pg_database od ON s.classid = 'pg_catalog.pg_database'::regclass AND od.oid = s.objid
    LEFT JOIN pg_catalog.pg_tablespace ts ON s.classid = 'pg_catalog.pg_tablespace'::regclass AND ts.oid = s.objid
    WHERE s.deptype <> 'p' AND r.rolname = ANY (ARRAY[` + strings.Join(names, ", ") + `]::text[])
    GROUP BY 1, 2) x), '[]'));`
}

// readCatalog reads node's catalog as postgres over its local socket.
func (a *Activities) readCatalog(ctx context.Context, node Node, port int, dependentsOf []string) (catalog, error) {
	var c catalog
	raw, err := a.psql(ctx, node, port, "postgres", catalogQuery(dependentsOf))
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		return c, fmt.Errorf("while reading the roles and databases on %s: %w (psql answered %s)", node, err, outputDigest(raw))
	}
	return c, nil
}
