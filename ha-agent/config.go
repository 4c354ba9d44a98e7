package haagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/pigwf/pigwf/internal/pgparams"
)

// Config is the cluster-wide dynamic configuration kept in the DCS config
// key. Every member reads the same values, which matters for the timing:
// the holder's fence deadline and the others' staleness threshold are both
// derived from LeaderTimeoutMs, ClockDriftPPM and the two margins.
//
// The DCS holds it as JSON; `pigwf config show|edit` shows it as YAML under the same names
// (each yaml tag equals its json name), so one type is read both ways.
type Config struct {
	// LoopIntervalMs is the HA loop period and the leader renew period.
	LoopIntervalMs int `json:"loop_interval_ms" yaml:"loop_interval_ms"`
	// LeaderTimeoutMs is the leadership lease L: how long a renewal
	// keeps the holder the leader, measured on each host's own clock.
	LeaderTimeoutMs int `json:"leader_timeout_ms" yaml:"leader_timeout_ms"`
	// ClockDriftPPM is ε, the bound on how far any member's clock RATE
	// may differ from real time (parts per million). It must bound the
	// clock the agent actually times leadership with (see doc.go).
	ClockDriftPPM int `json:"clock_drift_ppm" yaml:"clock_drift_ppm"`
	// FenceMarginMs: the holder fences this much before L(1−ε).
	FenceMarginMs int `json:"fence_margin_ms" yaml:"fence_margin_ms"`
	// PromoteMarginMs: the others wait this much after L(1+ε).
	PromoteMarginMs int `json:"promote_margin_ms" yaml:"promote_margin_ms"`
	// MaxFenceMs is the assumed upper bound on the time from the fence
	// timer firing to PostgreSQL being unable to acknowledge a commit.
	MaxFenceMs int `json:"max_fence_ms" yaml:"max_fence_ms"`
	// MemberReportFreshMs: a member record not changed for longer than
	// this (on the observer's clock) is a stale report and is ignored
	// when comparing WAL positions (patroni#3703).
	MemberReportFreshMs int `json:"member_report_fresh_ms" yaml:"member_report_fresh_ms"`
	// MaximumLagOnFailover is the largest WAL distance in bytes behind
	// the last leader's recorded position that an asynchronous candidate
	// may have. Synchronous standbys are exempt (they hold every
	// acknowledged commit).
	MaximumLagOnFailover uint64 `json:"maximum_lag_on_failover" yaml:"maximum_lag_on_failover"`
	// SynchronousMode: only synchronous standbys (or the last leader)
	// may be promoted automatically.
	SynchronousMode bool `json:"synchronous_mode" yaml:"synchronous_mode"`
	// SynchronousModeStrict: commits wait rather than fall back to
	// asynchronous replication when no synchronous standby is available.
	SynchronousModeStrict bool `json:"synchronous_mode_strict" yaml:"synchronous_mode_strict"`
	// SynchronousNodeCount is how many synchronous standbys the leader
	// names (synchronous_standby_names = 'FIRST n (exactly n names)', so
	// every named standby holds every acknowledged commit).
	SynchronousNodeCount int `json:"synchronous_node_count" yaml:"synchronous_node_count"`
	// UsePgRewind: bring a diverged former primary back with pg_rewind
	// (re-clone when it fails); off means re-clone directly.
	UsePgRewind bool `json:"use_pg_rewind" yaml:"use_pg_rewind"`
	// CrashRestartBudgetMs: the leader restarts a crashed PostgreSQL in
	// place only when crash recovery is expected to finish within this
	// budget; otherwise it releases leadership at once.
	CrashRestartBudgetMs int `json:"crash_restart_budget_ms" yaml:"crash_restart_budget_ms"`
	// AgentRestartBudgetMs: when PostgreSQL went down with its agent (the
	// agent died, the supervisor restarted it, the agent took its lock
	// back), the in-place restart may take this long before a replica
	// takes over. An agent restart is not a PostgreSQL fault, so it gets
	// more room than crash_restart_budget_ms.
	AgentRestartBudgetMs int `json:"agent_restart_budget_ms" yaml:"agent_restart_budget_ms"`
	// FailsafeMode lets the leader keep taking writes while etcd is
	// unreachable as long as every member in the failsafe key confirmed
	// it as leader over the REST API (see doc.go).
	FailsafeMode bool `json:"failsafe_mode" yaml:"failsafe_mode"`
	// MemberTTLSeconds is the etcd lease TTL on member keys: cleanup of
	// vanished members only, never used for failover timing.
	MemberTTLSeconds int `json:"member_ttl_seconds" yaml:"member_ttl_seconds"`
	// Postgresql holds the cluster's PostgreSQL parameters, as Patroni's dynamic configuration
	// does: every agent writes them to pgparams.DynamicFile and reloads; a parameter that takes
	// effect only at a restart is then shown as pending restart.
	Postgresql PostgresqlConfig `json:"postgresql,omitzero" yaml:"postgresql"`
}

// PostgresqlConfig is the PostgreSQL part of the dynamic configuration.
type PostgresqlConfig struct {
	// Parameters are setting = value, as postgresql.conf takes them ("256MB", "on"). The YAML
	// keeps an empty map (parameters: {}), so `pigwf config edit` shows where they go.
	Parameters map[string]string `json:"parameters,omitempty" yaml:"parameters"`
}

// DefaultConfig returns the defaults: failover detection in
// L(1+ε)+m_p ≈ 521 ms after the last renewal, fence at L(1−ε)−m_f ≈ 449.5 ms
// after the holder's last successful renew was sent.
func DefaultConfig() Config {
	return Config{
		LoopIntervalMs:       100,
		LeaderTimeoutMs:      500,
		ClockDriftPPM:        1000,
		FenceMarginMs:        50,
		PromoteMarginMs:      20,
		MaxFenceMs:           40,
		MemberReportFreshMs:  500,
		MaximumLagOnFailover: 1 << 20,
		SynchronousNodeCount: 1,
		UsePgRewind:          true,
		CrashRestartBudgetMs: 300,
		AgentRestartBudgetMs: 10_000,
		MemberTTLSeconds:     10,
	}
}

// WithLeaderTimeout is c with the leadership lease l and the timings that follow from it: the
// loop (and renew) period l/5, never below the floor, so several renewals fit in one lease; and a
// member report is stale after l. The fence and promote margins are how fast a fence completes,
// not a share of the lease, so they stay. At the default lease this is DefaultConfig. A cluster's
// pg_rto seeds its config through it; Validate says whether the result is usable.
func (c Config) WithLeaderTimeout(l time.Duration) Config {
	c.LeaderTimeoutMs = int(l.Milliseconds())
	c.LoopIntervalMs = max(int(minLoopInterval.Milliseconds()), c.LeaderTimeoutMs/5)
	c.MemberReportFreshMs = c.LeaderTimeoutMs
	return c
}

// ParseConfig decodes the DCS config key over the defaults and validates it.
func ParseConfig(raw []byte) (Config, error) {
	cfg, err := DecodeConfig(raw)
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// DecodeConfig decodes the DCS config key over the defaults without validating it: `pigwf
// config` shows and edits a stored config even when it does not validate, so that it can be
// fixed; whatever it writes passes Validate first.
func DecodeConfig(raw []byte) (Config, error) {
	cfg := DefaultConfig()
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return Config{}, fmt.Errorf("decode ha config: %w", err)
		}
	}
	return cfg, nil
}

// UnknownKeys names the settings of a stored config this Config has no field for (a newer pigwf
// wrote them), sorted; "postgresql.x" for one under postgresql. A writer that decodes and
// re-encodes the config would drop them, so it must refuse instead.
func UnknownKeys(raw []byte) []string {
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		return nil
	}
	known := DefaultConfig()
	known.Postgresql.Parameters = map[string]string{"x": "x"}
	b, _ := json.Marshal(known)
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(b, &fields)
	var out []string
	for k, v := range top {
		if _, ok := fields[k]; !ok {
			out = append(out, k)
			continue
		}
		if k == "postgresql" {
			var pg map[string]json.RawMessage
			if json.Unmarshal(v, &pg) == nil {
				for pk := range pg {
					if pk != "parameters" {
						out = append(out, "postgresql."+pk)
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// Timing floors. Below them the numbers stop meaning anything: etcd write
// latency (~1–10 ms with fsync) and Go timer jitter eat the budget.
const (
	minLoopInterval  = 10 * time.Millisecond
	minLeaderTimeout = 150 * time.Millisecond
	maxLeaderTimeout = 60 * time.Second
	maxClockDriftPPM = 100_000
)

// Validate refuses timing that cannot hold, naming the offending field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("ha config %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.LoopInterval() < minLoopInterval {
		bad("loop_interval_ms", "%d is below the floor of %d ms", c.LoopIntervalMs, minLoopInterval.Milliseconds())
	}
	if c.LeaderTimeout() < minLeaderTimeout {
		bad("leader_timeout_ms", "%d is below the floor of %d ms", c.LeaderTimeoutMs, minLeaderTimeout.Milliseconds())
	}
	if c.LeaderTimeout() > maxLeaderTimeout {
		bad("leader_timeout_ms", "%d is above the ceiling of %d ms", c.LeaderTimeoutMs, maxLeaderTimeout.Milliseconds())
	}
	// Several renew attempts must fit in one lease, or a single slow
	// etcd round trip fences a healthy primary.
	if c.LoopIntervalMs*3 >= c.LeaderTimeoutMs {
		bad("loop_interval_ms", "%d must be below leader_timeout_ms/3 (%d/3)", c.LoopIntervalMs, c.LeaderTimeoutMs)
	}
	if c.ClockDriftPPM < 1 || c.ClockDriftPPM > maxClockDriftPPM {
		bad("clock_drift_ppm", "%d must be between 1 and %d", c.ClockDriftPPM, maxClockDriftPPM)
	}
	if c.FenceMarginMs < 0 {
		bad("fence_margin_ms", "%d must not be negative", c.FenceMarginMs)
	}
	if c.PromoteMarginMs < 0 {
		bad("promote_margin_ms", "%d must not be negative", c.PromoteMarginMs)
	}
	if c.MaxFenceMs < 1 {
		bad("max_fence_ms", "%d must be at least 1", c.MaxFenceMs)
	}
	if len(errs) == 0 {
		// The safety inequality (doc.go): the fence must complete inside
		// the gap between the holder's deadline and the others' earliest
		// promotion: F < m_f/(1−ε) + m_p/(1+ε).
		eps := c.drift()
		gap := float64(c.FenceMarginMs)/(1-eps) + float64(c.PromoteMarginMs)/(1+eps)
		if float64(c.MaxFenceMs) >= gap {
			bad("max_fence_ms", "%d must be below fence_margin_ms/(1−ε) + promote_margin_ms/(1+ε) = %.2f ms", c.MaxFenceMs, gap)
		}
		// Two renew attempts must fit before the holder fences itself.
		if window := c.holderWindow(); window < 2*c.LoopInterval() {
			bad("fence_margin_ms", "leader_timeout_ms×(1−ε) − fence_margin_ms = %s leaves less than two loop intervals (%s) to renew", ms(window), ms(2*c.LoopInterval()))
		}
	}
	if c.MemberReportFreshMs < 2*c.LoopIntervalMs {
		bad("member_report_fresh_ms", "%d must be at least two loop intervals (%d ms)", c.MemberReportFreshMs, 2*c.LoopIntervalMs)
	}
	if c.SynchronousModeStrict && !c.SynchronousMode {
		bad("synchronous_mode_strict", "requires synchronous_mode")
	}
	if c.SynchronousMode && c.SynchronousNodeCount < 1 {
		bad("synchronous_node_count", "%d must be at least 1 in synchronous mode", c.SynchronousNodeCount)
	}
	if c.CrashRestartBudgetMs < 0 {
		bad("crash_restart_budget_ms", "%d must not be negative", c.CrashRestartBudgetMs)
	}
	if c.AgentRestartBudgetMs < 0 {
		bad("agent_restart_budget_ms", "%d must not be negative", c.AgentRestartBudgetMs)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Postgresql.Parameters)) {
		if p := pgparams.Problem(name, c.Postgresql.Parameters[name]); p != "" {
			bad("postgresql.parameters."+name, "%s", p)
		}
	}
	if c.MemberTTLSeconds < 1 {
		bad("member_ttl_seconds", "%d must be at least 1 (etcd leases are whole seconds)", c.MemberTTLSeconds)
	}
	return errors.Join(errs...)
}

func (c Config) drift() float64 { return float64(c.ClockDriftPPM) / 1e6 }

// LoopInterval is the HA loop and renew period.
func (c Config) LoopInterval() time.Duration {
	return time.Duration(c.LoopIntervalMs) * time.Millisecond
}

// LeaderTimeout is the lease length L.
func (c Config) LeaderTimeout() time.Duration {
	return time.Duration(c.LeaderTimeoutMs) * time.Millisecond
}

// MemberReportFresh is how long a member report stays usable.
func (c Config) MemberReportFresh() time.Duration {
	return time.Duration(c.MemberReportFreshMs) * time.Millisecond
}

// CrashRestartBudget is the in-place crash restart budget.
func (c Config) CrashRestartBudget() time.Duration {
	return time.Duration(c.CrashRestartBudgetMs) * time.Millisecond
}

// AgentRestartBudget is the in-place restart budget after an agent restart.
func (c Config) AgentRestartBudget() time.Duration {
	return time.Duration(c.AgentRestartBudgetMs) * time.Millisecond
}

// holderWindow is L(1−ε) − m_f, rounded down to the nanosecond (shorter
// is safer). Integer arithmetic: L ≤ 60 s keeps it far from overflow.
func (c Config) holderWindow() time.Duration {
	l := int64(c.LeaderTimeout())
	shrunk := l * (1_000_000 - int64(c.ClockDriftPPM)) / 1_000_000
	return time.Duration(shrunk) - time.Duration(c.FenceMarginMs)*time.Millisecond
}

// HolderDeadline is when the holder must have fenced its writes, on its
// own monotonic clock, given the SEND time of its last successful
// acquire/renew request: sent + L(1−ε) − m_f.
func (c Config) HolderDeadline(sent time.Duration) time.Duration {
	return sent + c.holderWindow()
}

// StaleAfter is how long after observing the last change of the leader
// record another member must wait, on its own clock, before it may take
// the lock: L(1+ε) + m_p, rounded up (longer is safer).
func (c Config) StaleAfter() time.Duration {
	l := int64(c.LeaderTimeout())
	stretched := (l*(1_000_000+int64(c.ClockDriftPPM)) + 999_999) / 1_000_000
	return time.Duration(stretched) + time.Duration(c.PromoteMarginMs)*time.Millisecond
}

// ms formats a duration in milliseconds for reason sentences: "520.5 ms".
func ms(d time.Duration) string {
	return fmt.Sprintf("%s ms", trimFloat(float64(d)/float64(time.Millisecond)))
}

func trimFloat(f float64) string {
	s := fmt.Sprintf("%.1f", f)
	if len(s) > 2 && s[len(s)-2:] == ".0" {
		s = s[:len(s)-2]
	}
	return s
}
