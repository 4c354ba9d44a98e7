package starter

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/internal/pgparams"
	"github.com/pigwf/pigwf/internal/suggest"
)

// What a config change alters (diffConfig), whether it may be written (checkConfig) and how it
// is shown before it is (PrintConfigDiff).

// ConfigDiffEntry is one setting a change alters.
type ConfigDiffEntry struct {
	Setting   string `json:"setting"`   // the HA setting's name, or the parameter's
	Parameter bool   `json:"parameter"` // a PostgreSQL parameter (postgresql.parameters)
	Old       string `json:"old,omitempty"`
	New       string `json:"new,omitempty"`
	OldSet    bool   `json:"old_set"` // parameters: set before (an HA setting always is)
	NewSet    bool   `json:"new_set"`
	// Restart: the parameter takes effect only when PostgreSQL restarts (pg_settings.context
	// postmaster on the leader). RestartUnknown: the leader's settings could not be read (a
	// removal, which is written without them).
	Restart        bool `json:"restart,omitempty"`
	RestartUnknown bool `json:"restart_unknown,omitempty"`
}

// diffConfig lists what differs from old to next: the HA settings in struct order, then the
// parameters by name.
func diffConfig(old, next haagent.Config) []ConfigDiffEntry {
	var out []ConfigDiffEntry
	for _, s := range haSettings() {
		if o, n := haSettingText(old, s), haSettingText(next, s); o != n {
			out = append(out, ConfigDiffEntry{Setting: s.name, Old: o, New: n, OldSet: true, NewSet: true})
		}
	}
	names := slices.Sorted(maps.Keys(old.Postgresql.Parameters))
	for n := range next.Postgresql.Parameters {
		if _, ok := old.Postgresql.Parameters[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		o, oldSet := old.Postgresql.Parameters[n]
		v, newSet := next.Postgresql.Parameters[n]
		if oldSet != newSet || o != v {
			out = append(out, ConfigDiffEntry{Setting: n, Parameter: true, Old: o, New: v, OldSet: oldSet, NewSet: newSet})
		}
	}
	return out
}

// ConfigRefusedError is a change not written, with every reason at once.
type ConfigRefusedError struct {
	Cluster  string
	Problems []error
	// Unavailable: new parameters could not be checked against the leader (wraps
	// ErrSettingsUnavailable); nil when they were, or there were none.
	Unavailable error
}

func (e *ConfigRefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "nothing written to %s's config:", e.Cluster)
	for _, p := range e.Problems {
		b.WriteString("\n  - " + p.Error())
	}
	if e.Unavailable != nil {
		fmt.Fprintf(&b, "\n  - %v; new parameters are checked against the leader's PostgreSQL before anything is written: run again when `pigwf ha list --cluster %s` shows a running leader",
			e.Unavailable, e.Cluster)
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As see each reason: ErrConfigInvalid when a setting is wrong,
// ErrSettingsUnavailable when the leader did not answer, pgparams.ErrInvalid for a parameter
// its PostgreSQL refuses.
func (e *ConfigRefusedError) Unwrap() []error {
	out := slices.Clone(e.Problems)
	if len(e.Problems) > 0 {
		out = append(out, ErrConfigInvalid)
	}
	if e.Unavailable != nil {
		out = append(out, e.Unavailable)
	}
	return out
}

// checkConfig judges next before anything is written and returns every problem: haagent.Config's
// own Validate (HA timings that cannot hold, and each parameter's form, pigwf's own settings,
// values unsafe in a file), then each new or changed parameter that passes those against the
// leader's pg_settings as PostgreSQL's parser would (pgparams.Catalog.Check: unknown with
// did-you-mean, read-only, bool, enum, number, unit, range). It marks in diff the parameters that
// take effect only at a restart. unavailable is set when the leader's settings were needed (a
// new or changed parameter) and could not be read; a removal alone needs no check.
func (h *HAClient) checkConfig(ctx context.Context, read ConfigRead, next haagent.Config, diff []ConfigDiffEntry) (problems []error, unavailable error) {
	problems = joined(next.Validate())
	var check, removed []*ConfigDiffEntry
	for i := range diff {
		e := &diff[i]
		switch {
		case !e.Parameter:
		case !e.NewSet:
			removed = append(removed, e)
		case pgparams.Problem(e.Setting, e.New) == "": // else Validate reported it
			check = append(check, e)
		}
	}
	if len(check) == 0 && len(removed) == 0 {
		return problems, nil
	}
	catalog, err := h.leaderCatalog(ctx, read)
	if err != nil {
		for _, e := range removed {
			e.RestartUnknown = true
		}
		if len(check) > 0 {
			return problems, err
		}
		return problems, nil
	}
	for _, e := range check {
		if p := nearHASetting(catalog, e); p != nil {
			problems = append(problems, p)
			continue
		}
		s, err := catalog.Check(e.Setting, e.New)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		e.Restart = s.NeedsRestart()
	}
	for _, e := range removed {
		e.Restart = catalog[e.Setting].NeedsRestart()
	}
	return problems, nil
}

// nearHASetting refuses a name that is no setting of the server but close to an HA setting
// (leader_timeout=1000): set took it for a parameter, and the HA setting is what was meant. An
// extension's setting (with a dot) is left to Check.
func nearHASetting(catalog pgparams.Catalog, e *ConfigDiffEntry) error {
	if _, known := catalog[e.Setting]; known || strings.Contains(e.Setting, ".") {
		return nil
	}
	near := suggest.Within(e.Setting, haSettingNames(), 3)
	if near == "" {
		return nil
	}
	return &ConfigSettingError{Setting: e.Setting, Value: e.New, Problem: "is neither an HA setting nor a setting this PostgreSQL knows",
		Fix: "did you mean the HA setting " + near + "?"}
}

// PrintConfigDiff shows what a write will change, old → new per setting, and which parameters
// take effect only at a restart.
func PrintConfigDiff(w io.Writer, read ConfigRead, diff []ConfigDiffEntry) {
	fmt.Fprintf(w, "Changes to %s's config (read at etcd revision %d):\n", read.Cluster, read.Revision)
	width := 0
	for _, e := range diff {
		width = max(width, len(e.Setting))
	}
	var restart []string
	for _, e := range diff {
		shown := func(v string, set bool) string {
			switch {
			case !set:
				return "(not set)"
			case v == "":
				return "''"
			}
			return v
		}
		line := fmt.Sprintf("  %-*s  %s → %s", width, e.Setting, shown(e.Old, e.OldSet), shown(e.New, e.NewSet))
		switch {
		case e.Restart:
			line += "   (takes effect at a restart)"
			restart = append(restart, e.Setting)
		case e.RestartUnknown:
			line += "   (whether it needs a restart is unknown: the leader's settings could not be read)"
		}
		if e.Parameter && !e.NewSet {
			line += "   (postgresql.conf's value applies)"
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	if len(restart) > 0 {
		fmt.Fprintf(w, "Only a restart applies %s: after the write, `pigwf start pg-restart --cluster %s --pending` restarts the members that wait for it.\n",
			strings.Join(restart, ", "), read.Cluster)
	}
}
