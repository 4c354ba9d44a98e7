package haagent

import (
	"time"

	"github.com/pigwf/pigwf/internal/pgparams"
)

// The bodies of the agent's POST /restart and POST /reload and their answers: the agent renders
// them and pigwf's activities parse them, so these types are the one contract between them.

// RestartRequest asks a member's agent to restart its PostgreSQL (Patroni's POST /restart).
// A leader is never restarted in place: its agent answers 409 (switch over first).
type RestartRequest struct {
	// RestartPending (Patroni's restart_pending): restart only when a setting waits for a restart.
	RestartPending bool `json:"restart_pending,omitempty"`
	// StartedBefore: restart only a postmaster that started before this instant. A runbook
	// passes the time its step was first scheduled, so a retried step (a worker died after the
	// restart) does not restart the member twice.
	StartedBefore time.Time `json:"started_before,omitzero"`
}

// RestartResponse is POST /restart's answer (200): whether the agent restarted PostgreSQL, why
// (or why not), and when the postmaster now running started.
type RestartResponse struct {
	Restarted       bool      `json:"restarted"`
	Reason          string    `json:"reason"`
	PostmasterStart time.Time `json:"postmaster_start,omitzero"`
}

// ReloadResponse is POST /reload's answer (200): the agent rewrote its dynamic parameters from
// the DCS config (when they differed), reloaded PostgreSQL, and what now waits for a restart.
type ReloadResponse struct {
	Changed        bool                              `json:"changed"`
	ConfigRevision int64                             `json:"config_revision"`
	PendingRestart map[string]pgparams.PendingChange `json:"pending_restart,omitempty"`
}
