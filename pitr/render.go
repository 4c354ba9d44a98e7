package pitr

import (
	"fmt"
	"strings"
)

// PgBackRestOptions are the target options of `pgbackrest restore`. The recovery action and the
// backup set are not part of the target: the caller adds --target-action and --set.
type PgBackRestOptions struct {
	Type      string // --type: time, lsn, xid, name, immediate or default (end of archive)
	Target    string // --target, empty for immediate and default
	Exclusive bool   // --target-exclusive
	Timeline  string // --target-timeline
}

// Args prints the options as separate arguments (no shell quoting needed: every value passed
// Parse's strict rules, and the time's space is inside one argument).
func (o PgBackRestOptions) Args() []string {
	args := []string{"--type=" + o.Type}
	if o.Target != "" {
		args = append(args, "--target="+o.Target)
	}
	if o.Exclusive {
		args = append(args, "--target-exclusive")
	}
	if o.Timeline != "" {
		args = append(args, "--target-timeline="+o.Timeline)
	}
	return args
}

// PgBackRest renders the target as pgBackRest restore options. The timeline must have been chosen
// (ErrTimelineNotSet otherwise): left out, pgBackRest would silently follow the newest timeline.
func (t Target) PgBackRest() (PgBackRestOptions, error) {
	if t.Timeline.Kind == TimelineDefault {
		return PgBackRestOptions{}, fmt.Errorf("render %s for pgBackRest: %w", t, ErrTimelineNotSet)
	}
	o := PgBackRestOptions{Exclusive: t.Exclusive, Timeline: t.Timeline.String()}
	switch t.Kind {
	case KindTime:
		o.Type, o.Target = "time", FormatTime(t.Time)
	case KindLSN:
		o.Type, o.Target = "lsn", t.LSN.String()
	case KindXID:
		o.Type, o.Target = "xid", fmt.Sprint(t.XID)
	case KindName:
		o.Type, o.Target = "name", t.Name
	case KindImmediate:
		o.Type = "immediate"
	case KindLatest:
		o.Type = "default"
	default:
		return PgBackRestOptions{}, fmt.Errorf("render %s for pgBackRest: %w", t, ErrNoTarget)
	}
	return o, nil
}

// Setting is one PostgreSQL recovery parameter.
type Setting struct {
	Name, Value string
}

// RecoverySettings renders the target as PostgreSQL recovery parameters (what pgBackRest writes
// to postgresql.auto.conf, minus restore_command and recovery_target_action, which are not part of
// the target). Latest sets no recovery_target_* at all: replay runs to the end of the archive.
func (t Target) RecoverySettings() ([]Setting, error) {
	if t.Timeline.Kind == TimelineDefault {
		return nil, fmt.Errorf("render %s as recovery settings: %w", t, ErrTimelineNotSet)
	}
	var s []Setting
	switch t.Kind {
	case KindTime:
		s = append(s, Setting{"recovery_target_time", FormatTime(t.Time)})
	case KindLSN:
		s = append(s, Setting{"recovery_target_lsn", t.LSN.String()})
	case KindXID:
		s = append(s, Setting{"recovery_target_xid", fmt.Sprint(t.XID)})
	case KindName:
		s = append(s, Setting{"recovery_target_name", t.Name})
	case KindImmediate:
		s = append(s, Setting{"recovery_target", "immediate"})
	case KindLatest:
	default:
		return nil, fmt.Errorf("render %s as recovery settings: %w", t, ErrNoTarget)
	}
	if t.Exclusive {
		s = append(s, Setting{"recovery_target_inclusive", "false"})
	}
	return append(s, Setting{"recovery_target_timeline", t.Timeline.String()}), nil
}

// RecoveryConf prints settings as postgresql.conf lines, values single-quoted with quotes doubled
// (none of the values Parse accepts contains one, but the quoting rule lives here regardless).
func RecoveryConf(settings []Setting) string {
	var b strings.Builder
	for _, s := range settings {
		fmt.Fprintf(&b, "%s = '%s'\n", s.Name, strings.ReplaceAll(s.Value, "'", "''"))
	}
	return b.String()
}
