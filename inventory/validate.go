package inventory

import (
	"fmt"
	"net"
	"regexp"
)

var sysctlKeyRE = regexp.MustCompile(`^[a-z0-9_.]+$`)

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_$]{0,62}$`)

func validateUsersAndDBs(file, where string, c *Cluster, verr *ValidationError) {
	users := map[string]bool{"postgres": true}
	for _, u := range c.Users {
		if !identRE.MatchString(u.Name) {
			verr.add(FieldError{File: file, Line: u.Line, Where: where, Field: "pg_users.name", Problem: fmt.Sprintf("%q is not a valid role name", u.Name), Fix: "use lower-case letters, digits and '_'"})
		}
		users[u.Name] = true
	}
	for _, d := range c.Databases {
		if !identRE.MatchString(d.Name) {
			verr.add(FieldError{File: file, Line: d.Line, Where: where, Field: "pg_databases.name", Problem: fmt.Sprintf("%q is not a valid database name", d.Name), Fix: "use lower-case letters, digits and '_'"})
		}
		if d.Owner != "" && !users[d.Owner] {
			verr.add(FieldError{File: file, Line: d.Line, Where: where, Field: "pg_databases.owner", Problem: fmt.Sprintf("owner %q of database %s is not in pg_users", d.Owner, d.Name), Fix: "add the user to pg_users or change the owner"})
		}
	}
	for _, r := range c.HBARules {
		if r.User == "" || r.DB == "" || r.Addr == "" || r.Auth == "" {
			verr.add(FieldError{File: file, Line: r.Line, Where: where, Field: "pg_hba_rules", Problem: "a rule needs user, db, addr and auth", Fix: "e.g. '{user: dbuser_meta, db: all, addr: intra, auth: pwd}'"})
		}
	}
}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

func validHost(s string) bool { return net.ParseIP(s) != nil || hostnameRE.MatchString(s) }
