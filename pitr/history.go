package pitr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Switch is one line of a timeline history file (NNNNNNNN.history): timeline Parent ended at
// At, where its child branched off. The history file of timeline N lists every ancestor of N.
type Switch struct {
	Parent uint32
	At     LSN
	Reason string
}

// ErrBadHistory: the text is not a timeline history file.
var ErrBadHistory = errors.New("not a timeline history file")

// ParseHistory reads a timeline history file: lines "parentTLI<TAB>switchpoint<TAB>reason",
// comments starting with '#', blank lines ignored (the format PostgreSQL's readTimeLineHistory
// reads). Parents must increase, as PostgreSQL requires.
func ParseHistory(text string) ([]Switch, error) {
	var out []Switch
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("history line %d %q: %w (want timeline and switch point)", i+1, line, ErrBadHistory)
		}
		tl, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil || tl == 0 {
			return nil, fmt.Errorf("history line %d %q: %w (bad timeline)", i+1, line, ErrBadHistory)
		}
		at, err := ParseLSN(f[1])
		if err != nil {
			return nil, fmt.Errorf("history line %d: %w: %w", i+1, ErrBadHistory, err)
		}
		if n := len(out); n > 0 && uint32(tl) <= out[n-1].Parent {
			return nil, fmt.Errorf("history line %d %q: %w (timelines must increase)", i+1, line, ErrBadHistory)
		}
		out = append(out, Switch{Parent: uint32(tl), At: at, Reason: strings.Join(f[2:], " ")})
	}
	return out, nil
}

// branchPoint returns where timeline tl ends when following history toward its newest
// timeline: the switch point of tl if history lists it, else ok=false (tl is the newest or not
// an ancestor).
func branchPoint(history []Switch, tl uint32) (LSN, bool) {
	for _, s := range history {
		if s.Parent == tl {
			return s.At, true
		}
	}
	return 0, false
}

// isAncestor says whether tl is an ancestor of the timeline history describes.
func isAncestor(history []Switch, tl uint32) bool {
	_, ok := branchPoint(history, tl)
	return ok
}
