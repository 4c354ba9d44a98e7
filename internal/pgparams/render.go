package pgparams

import (
	"fmt"
	"slices"
	"strings"
)

// DynamicFile is the file in the data directory the HA agent writes the cluster's dynamic
// parameters to (the DCS config's postgresql.parameters); postgresql.conf includes it last, so
// its values win over pigwf's defaults and the inventory's pg_parameters, and
// postgresql.auto.conf (the agent's own settings) still wins over it.
const DynamicFile = "pigwf.dynamic.conf"

// IncludeLine is what postgresql.conf ends with.
const IncludeLine = "include_if_exists = '" + DynamicFile + "'"

// Render is a configuration file setting params, sorted by name so that equal parameters give
// equal files; header lines are written as comments first. Values are single-quoted with quotes
// doubled; callers check them with Problem first (a control character or backslash would
// change the file's meaning).
func Render(header []string, params map[string]string) string {
	var b strings.Builder
	for _, h := range header {
		b.WriteString("# " + h + "\n")
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(params[k], "'", "''"))
	}
	return b.String()
}
