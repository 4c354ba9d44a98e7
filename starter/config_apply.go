package starter

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/internal/pgparams"
)

// ApplyConfig is the one path of `pigwf config set` and `edit` once the new config is known.

// ConfigApplyWait is how long `config set|edit` waits by default for the members to apply a write.
const ConfigApplyWait = 10 * time.Second

// configRequestTimeout bounds each read or write of ApplyConfig (etcd, the leader's settings);
// the question to the user and the wait for the members have their own bounds.
const configRequestTimeout = 15 * time.Second

// ConfigApplyOptions say how ApplyConfig asks and waits.
type ConfigApplyOptions struct {
	Out io.Writer
	// Confirm asks whether to write the changes just printed; nil writes without asking (--yes).
	Confirm func() (bool, error)
	// Wait bounds the wait for every member to apply the write; 0 does not wait (--no-wait).
	Wait time.Duration
	Poll time.Duration // between reads while waiting; 0: 250 ms
}

// ConfigOutcome is what ApplyConfig did.
type ConfigOutcome struct {
	Changed  bool              `json:"changed"`
	Revision int64             `json:"revision"` // the config's revision now
	Diff     []ConfigDiffEntry `json:"diff,omitempty"`
	Members  []MemberApplied   `json:"members,omitempty"` // after the wait
}

// ErrNotConfirmed: the user did not say yes to the changes; nothing was written.
var ErrNotConfirmed = errors.New("not confirmed: nothing written")

// ConfigChangedError: someone wrote the config between the read and this write, which was
// therefore not made (a compare-and-swap on the revision read): their change is kept, not lost.
type ConfigChangedError struct {
	Cluster   string
	Read, Now int64 // Now 0: the key is gone, or could not be read again
}

func (e *ConfigChangedError) Error() string {
	now := fmt.Sprint(e.Now)
	if e.Now == 0 {
		now = "unknown"
	}
	return fmt.Sprintf("%s's config changed since it was read (revision %d → %s); nothing written; run again", e.Cluster, e.Read, now)
}

// Unwrap makes errors.Is(err, dcs.ErrChanged) hold.
func (e *ConfigChangedError) Unwrap() error { return dcs.ErrChanged }

// ApplyConfig writes next in place of the config read, the one path of `config set` and `edit`:
// nothing when nothing differs; otherwise every problem (inputProblems, from the arguments or
// the edited file, and checkConfig's) refuses the whole change at once; then the changes are
// shown, confirmed, and written by compare-and-swap on read.Revision, so a concurrent edit makes
// this one fail (ConfigChangedError) instead of being overwritten; then, with o.Wait, it waits
// until every member reports the new revision applied and shows their pending restarts.
func (h *HAClient) ApplyConfig(ctx context.Context, read ConfigRead, next haagent.Config, inputProblems []error, o ConfigApplyOptions) (ConfigOutcome, error) {
	out := ConfigOutcome{Revision: read.Revision, Diff: diffConfig(read.Config, next)}
	if len(inputProblems) == 0 && len(out.Diff) == 0 {
		fmt.Fprintf(o.Out, "Nothing changed: %s's config already holds these values (revision %d); nothing written.\n", read.Cluster, read.Revision)
		return out, nil
	}
	stepCtx, cancel := context.WithTimeout(ctx, configRequestTimeout)
	problems, unavailable := h.checkConfig(stepCtx, read, next, out.Diff)
	cancel()
	if len(read.Unknown) > 0 {
		problems = append(problems, fmt.Errorf("the stored config has settings this pigwf does not know (%s): a newer pigwf wrote them and this write would drop them; change the config with that pigwf",
			strings.Join(read.Unknown, ", ")))
	}
	if problems = append(slices.Clone(inputProblems), problems...); len(problems) > 0 || unavailable != nil {
		return out, &ConfigRefusedError{Cluster: read.Cluster, Problems: problems, Unavailable: unavailable}
	}
	PrintConfigDiff(o.Out, read, out.Diff)
	if o.Confirm != nil {
		ok, err := o.Confirm()
		if err != nil {
			return out, err
		}
		if !ok {
			return out, ErrNotConfirmed
		}
	}
	stepCtx, cancel = context.WithTimeout(ctx, configRequestTimeout)
	rev, err := h.writeConfig(stepCtx, read, next)
	cancel()
	if err != nil {
		return out, err
	}
	out.Changed, out.Revision = true, rev
	fmt.Fprintf(o.Out, "Written: %s's config is at revision %d.\n", read.Cluster, rev)
	if o.Wait <= 0 {
		fmt.Fprintf(o.Out, "Not waiting for the members: `pigwf ha list --cluster %s` shows pending restarts.\n", read.Cluster)
		return out, nil
	}
	out.Members, err = waitApplied(ctx, h.store.Load, rev, o.Wait, o.Poll)
	if err != nil {
		return out, fmt.Errorf("written at revision %d, but the members' records could not be read: %w", rev, err)
	}
	PrintConfigApplied(o.Out, read.Cluster, rev, o.Wait, out.Members)
	return out, nil
}

// writeConfig writes next by compare-and-swap on the revision read, and returns the new one.
func (h *HAClient) writeConfig(ctx context.Context, read ConfigRead, next haagent.Config) (int64, error) {
	raw, err := json.Marshal(next)
	if err != nil {
		return 0, fmt.Errorf("encode %s's config: %w", read.Cluster, err)
	}
	rev, err := h.store.PutConfig(ctx, raw, read.Revision)
	if errors.Is(err, dcs.ErrChanged) {
		conflict := &ConfigChangedError{Cluster: read.Cluster, Read: read.Revision}
		if snap, lerr := h.store.Load(ctx); lerr == nil && snap.Config != nil {
			conflict.Now = snap.Config.ModRevision
		}
		return 0, conflict
	}
	if err != nil {
		return 0, fmt.Errorf("while writing %s's config: %w", read.Cluster, err)
	}
	return rev, nil
}

// MemberApplied is a member's record after a config write.
type MemberApplied struct {
	Member   string `json:"member"`
	Applied  bool   `json:"applied"`  // its ConfigRevision reached the write's
	Revision int64  `json:"revision"` // the config revision its record reports applied
	// PendingRestart: settings whose new value waits for a restart of its PostgreSQL.
	PendingRestart map[string]pgparams.PendingChange `json:"pending_restart,omitempty"`
}

// waitApplied reads the member records until every member reports rev (or later) applied, or
// bound passes; it returns the members as last read, by name. An etcd read that fails is tried
// again until the bound; the error is returned only when no read succeeded.
func waitApplied(ctx context.Context, load func(context.Context) (*dcs.Snapshot, error), rev int64, bound, poll time.Duration) ([]MemberApplied, error) {
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var (
		members []MemberApplied
		lastErr error
		read    bool
	)
	for {
		if snap, err := load(ctx); err == nil {
			members, read = appliedBy(snap, rev), true
			if !slices.ContainsFunc(members, func(m MemberApplied) bool { return !m.Applied }) {
				return members, nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if !read {
				return nil, cmp.Or(lastErr, ctx.Err())
			}
			return members, nil
		case <-time.After(poll):
		}
	}
}

// appliedBy is each member record's view of revision rev.
func appliedBy(snap *dcs.Snapshot, rev int64) []MemberApplied {
	var out []MemberApplied
	for _, name := range slices.Sorted(maps.Keys(snap.Members)) {
		m := snap.Members[name].Value
		out = append(out, MemberApplied{Member: name, Applied: m.ConfigRevision >= rev, Revision: m.ConfigRevision, PendingRestart: m.PendingRestart})
	}
	return out
}

// PrintConfigApplied shows, per member, whether it applied the write and what waits for a restart.
func PrintConfigApplied(w io.Writer, cluster string, rev int64, bound time.Duration, members []MemberApplied) {
	if len(members) == 0 {
		fmt.Fprintf(w, "No member records in etcd: no agent runs to apply revision %d.\n", rev)
		return
	}
	width := 0
	for _, m := range members {
		width = max(width, len(m.Member))
	}
	pending := false
	for _, m := range members {
		line := fmt.Sprintf("  %-*s  ", width, m.Member)
		if m.Applied {
			line += "applied"
		} else {
			line += fmt.Sprintf("NOT applied within %s (its record reports revision %d)", bound, m.Revision)
		}
		if len(m.PendingRestart) > 0 {
			pending = true
			var names []string
			for _, n := range slices.Sorted(maps.Keys(m.PendingRestart)) {
				c := m.PendingRestart[n]
				names = append(names, fmt.Sprintf("%s %s → %s", n, c.OldValue, c.NewValue))
			}
			line += "; pending restart: " + strings.Join(names, ", ")
		}
		fmt.Fprintln(w, line)
	}
	if slices.ContainsFunc(members, func(m MemberApplied) bool { return !m.Applied }) {
		fmt.Fprintf(w, "A member's agent applies the config when it reads it (one that is down, once it is back): see `pigwf ha list --cluster %s`.\n", cluster)
	}
	if pending {
		fmt.Fprintf(w, "Settings pending restart take effect at a restart: `pigwf start pg-restart --cluster %s --pending` applies them.\n", cluster)
	}
}
