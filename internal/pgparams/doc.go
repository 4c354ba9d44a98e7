// Package pgparams is the one home of what pigwf knows about PostgreSQL parameters: which ones
// pigwf and the HA agent own (owned.go), what a parameter name and a value may look like before
// they reach a file (rules.go), whether a value is valid for a server, checked against that
// server's own pg_settings as PostgreSQL's GUC parser would (check.go), and the file the HA agent
// writes the cluster's dynamic parameters to (render.go).
//
// The inventory (pg_parameters), the HA agent (the DCS config's postgresql.parameters) and
// `pigwf config set|edit` all use it, so a value refused in one place is refused in every place.
package pgparams
