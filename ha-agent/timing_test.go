package haagent

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// simulateLeaseRun plays one run of the leadership protocol in real time
// (float64 ns): the holder renews every loop interval by its own clock
// until it is cut off at a random moment; etcd applies each request after
// a random delay; the observer sees each change through a watch after a
// random delay. Per doc.go, the observer's acquire can only succeed once
// it has observed the LAST applied renewal (its CAS carries that
// revision), and it waits StaleAfter on its own clock from that
// observation. The holder fences HolderDeadline after the SEND time of its
// last renewal whose response it received, and the fence takes up to
// MaxFence. It returns the real gap promote − fenceDone (must be > 0), and
// led=false when the holder never had a renewal confirmed.
func simulateLeaseRun(rng *rand.Rand, cfg Config, holderRate, observerRate float64) (gap float64, led bool) {
	loop := float64(cfg.LoopInterval())
	var (
		send          = 0.0
		lastApplied   = -1.0 // real time the last applied renewal was observed
		lastConfirmed = -1.0 // real SEND time of the last renewal whose response arrived
		observedPrev  = 0.0
	)
	cut := loop * (1 + rng.Float64()*20) // holder loses etcd at a random moment
	for send < cut {
		apply := send + rng.Float64()*float64(20*time.Millisecond)
		if apply < cut {
			// Watch events arrive in revision order.
			observed := max(observedPrev, apply+rng.Float64()*float64(200*time.Millisecond)*rng.Float64())
			observedPrev, lastApplied = observed, observed
			if rng.IntN(10) > 0 { // sometimes the response is lost although applied
				lastConfirmed = send
			}
		}
		// next renewal: one loop interval later on the holder's clock
		send += loop / holderRate
	}
	if lastConfirmed < 0 || lastApplied < 0 {
		return 0, false
	}
	fenceDone := lastConfirmed + float64(cfg.HolderDeadline(0))/holderRate + float64(cfg.MaxFenceMs)*float64(time.Millisecond)
	promote := lastApplied + float64(cfg.StaleAfter())/observerRate
	return promote - fenceDone, true
}

func TestLeaseTimingHoldsWithinDriftBound(t *testing.T) {
	cfg := DefaultConfig()
	eps := float64(cfg.ClockDriftPPM) / 1e6
	rng := rand.New(rand.NewPCG(1, 2))
	minGap := 1e18
	for i := range 200_000 {
		holderRate, observerRate := 1-eps+2*eps*rng.Float64(), 1-eps+2*eps*rng.Float64()
		if i%4 == 0 { // the worst corner: slow holder clock, fast observer clock
			holderRate, observerRate = 1-eps, 1+eps
		}
		gap, led := simulateLeaseRun(rng, cfg, holderRate, observerRate)
		if !led {
			continue
		}
		if gap <= 0 {
			t.Fatalf("run %d: a new primary could accept writes %.3f ms before the old one finished fencing (rates %.6f/%.6f)",
				i, -gap/1e6, holderRate, observerRate)
		}
		minGap = min(minGap, gap)
	}
	// The closed form of the worst case (doc.go):
	//   m_f/(1−ε) + m_p/(1+ε) + L·(ε-rounding) − F  ≈ 30 ms with the defaults.
	t.Logf("smallest gap between fence done and earliest promotion over 200000 runs: %.3f ms", minGap/1e6)
	if minGap > float64(40*time.Millisecond) {
		t.Errorf("smallest gap %.3f ms: the worst corner was not exercised", minGap/1e6)
	}
}

// The same simulation must catch a clock drifting beyond the configured
// bound: otherwise it proves nothing.
func TestLeaseTimingBreaksBeyondDriftBound(t *testing.T) {
	cfg := DefaultConfig()
	rng := rand.New(rand.NewPCG(3, 4))
	violations := 0
	for range 10_000 {
		if gap, led := simulateLeaseRun(rng, cfg, 0.95, 1.05); led && gap <= 0 { // 5% drift, configured 0.1%
			violations++
		}
	}
	if violations == 0 {
		t.Fatal("5% clock drift against a 0.1% bound went unnoticed")
	}
}

// Every configuration Validate accepts satisfies the safety inequality in
// its worst case; the ones it rejects name the field.
func TestValidateImpliesSafetyInequality(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	accepted := 0
	for range 100_000 {
		cfg := DefaultConfig()
		cfg.LoopIntervalMs = 5 + rng.IntN(400)
		cfg.LeaderTimeoutMs = 100 + rng.IntN(3000)
		cfg.ClockDriftPPM = rng.IntN(120_000)
		cfg.FenceMarginMs = rng.IntN(300)
		cfg.PromoteMarginMs = rng.IntN(300)
		cfg.MaxFenceMs = rng.IntN(300)
		cfg.MemberReportFreshMs = 2 * cfg.LoopIntervalMs
		if cfg.Validate() != nil {
			continue
		}
		accepted++
		eps := float64(cfg.ClockDriftPPM) / 1e6
		fenceDone := float64(cfg.HolderDeadline(0))/(1-eps) + float64(cfg.MaxFenceMs)*1e6
		promote := float64(cfg.StaleAfter()) / (1 + eps)
		if fenceDone >= promote {
			t.Fatalf("accepted %+v but fence done at %.3f ms >= promotion at %.3f ms", cfg, fenceDone/1e6, promote/1e6)
		}
	}
	if accepted < 100 {
		t.Fatalf("only %d random configurations accepted: the property was barely tested", accepted)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	cases := []struct {
		n      int
		mod    func(*Config)
		fields []string
	}{
		{1, func(c *Config) { c.LoopIntervalMs = 200 }, []string{"loop_interval_ms: 200 must be below leader_timeout_ms/3 (500/3)"}},
		{2, func(c *Config) { c.LeaderTimeoutMs = 100; c.LoopIntervalMs = 20 }, []string{"leader_timeout_ms: 100 is below the floor of 150 ms"}},
		{3, func(c *Config) { c.MaxFenceMs = 80 }, []string{"max_fence_ms: 80 must be below fence_margin_ms/(1−ε) + promote_margin_ms/(1+ε) = 70.03 ms"}},
		{4, func(c *Config) { c.FenceMarginMs = 300; c.MaxFenceMs = 10 }, []string{"fence_margin_ms: leader_timeout_ms×(1−ε) − fence_margin_ms = 199.5 ms leaves less than two loop intervals (200 ms) to renew"}},
		{5, func(c *Config) { c.ClockDriftPPM = 0 }, []string{"clock_drift_ppm: 0 must be between 1 and 100000"}},
		{6, func(c *Config) { c.SynchronousModeStrict = true }, []string{"synchronous_mode_strict: requires synchronous_mode"}},
		{7, func(c *Config) { c.MemberReportFreshMs = 150 }, []string{"member_report_fresh_ms: 150 must be at least two loop intervals (200 ms)"}},
		{8, func(c *Config) { c.MemberTTLSeconds = 0; c.CrashRestartBudgetMs = -1 }, []string{
			"crash_restart_budget_ms: -1 must not be negative", "member_ttl_seconds: 0 must be at least 1"}},
		{9, func(c *Config) { c.LoopIntervalMs = 5 }, []string{"loop_interval_ms: 5 is below the floor of 10 ms"}},
	}
	for _, tc := range cases {
		cfg := DefaultConfig()
		tc.mod(&cfg)
		err := cfg.Validate()
		if err == nil {
			t.Errorf("case %d: accepted %+v", tc.n, cfg)
			continue
		}
		for _, f := range tc.fields {
			if !strings.Contains(err.Error(), f) {
				t.Errorf("case %d: error %q does not contain %q", tc.n, err, f)
			}
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	if _, err := ParseConfig([]byte(`{"leader_timeout_ms": 1000, "loop_interval_ms": 200}`)); err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if _, err := ParseConfig([]byte(`{"loop_interval_ms": 400}`)); err == nil || !strings.Contains(err.Error(), "loop_interval_ms") {
		t.Fatalf("ParseConfig accepted loop_interval_ms 400 with leader_timeout_ms 500: %v", err)
	}
}

func TestLSN(t *testing.T) {
	for _, s := range []string{"0/0", "0/3000060", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		l, err := ParseLSN(s)
		if err != nil || l.String() != s {
			t.Errorf("ParseLSN(%q) = %v, %v; String() = %q", s, uint64(l), err, l.String())
		}
	}
	if _, err := ParseLSN("3000060"); err == nil {
		t.Error("ParseLSN accepted an LSN without '/'")
	}
}
