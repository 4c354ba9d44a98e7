package agent

import (
	"fmt"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// reloadConfig parses the config key; an invalid one is refused (the last
// valid one stays in force) and said so.
func (a *Agent) reloadConfig() {
	cfg := haagent.DefaultConfig()
	if a.cache.hasConfig {
		var err error
		cfg, err = haagent.ParseConfig(a.cache.configRaw)
		if err != nil {
			msg := fmt.Sprintf("refusing the DCS config key (the last valid one stays in force): %v", err)
			if msg != a.configErr {
				a.log.Error(msg)
				a.configErr = msg
			}
			return
		}
	}
	if a.configErr != "" {
		a.log.Info("the DCS config key is valid again")
	}
	if a.configValid && timingDiffers(a.hacfg, cfg) {
		a.prevCfg, a.cfgChangedAt = a.hacfg, a.clock.Now()
		a.log.Warn("leadership timing changed; using the more conservative of the old and new timing for two lease lengths",
			"leader_timeout_ms", cfg.LeaderTimeoutMs, "was", a.prevCfg.LeaderTimeoutMs)
	}
	a.hacfg, a.configErr, a.configValid = cfg, "", true
	if a.params != nil && (a.cache.configRev != a.offeredRev || a.offeredRev == 0) {
		a.offeredRev = a.cache.configRev
		a.params.offer(a.cache.configRev, cfg.Postgresql.Parameters)
	}
}

func timingDiffers(x, y haagent.Config) bool {
	return x.LeaderTimeoutMs != y.LeaderTimeoutMs || x.ClockDriftPPM != y.ClockDriftPPM ||
		x.FenceMarginMs != y.FenceMarginMs || x.PromoteMarginMs != y.PromoteMarginMs
}

// timing is the config Decide and the fence timer use. Members see a
// change of the timing at slightly different moments; for two (longer)
// lease lengths after a change this agent therefore uses, as the holder,
// the timing with the EARLIER fence deadline and, as an observer, the
// one with the LATER staleness, so that old and new members stay safe
// against each other.
func (a *Agent) timing() haagent.Config {
	cfg := a.hacfg
	if a.cfgChangedAt == 0 {
		return cfg
	}
	window := 2 * max(a.prevCfg.StaleAfter(), cfg.StaleAfter())
	if a.clock.Now()-a.cfgChangedAt > window {
		a.cfgChangedAt = 0
		return cfg
	}
	pick := a.prevCfg
	if a.lease != nil {
		if cfg.HolderDeadline(0) <= pick.HolderDeadline(0) {
			return cfg
		}
	} else if cfg.StaleAfter() >= pick.StaleAfter() {
		return cfg
	}
	cfg.LeaderTimeoutMs, cfg.ClockDriftPPM = pick.LeaderTimeoutMs, pick.ClockDriftPPM
	cfg.FenceMarginMs, cfg.PromoteMarginMs = pick.FenceMarginMs, pick.PromoteMarginMs
	return cfg
}
