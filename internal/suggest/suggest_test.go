package suggest

import (
	"strings"
	"testing"
	"time"
)

func TestDistance(t *testing.T) {
	cases := []struct {
		n    int
		a, b string
		want int
	}{
		{1, "", "", 0}, {2, "pg_paramters", "pg_parameters", 1}, {3, "kitten", "sitting", 3}, {4, "abc", "", 3}, {5, "nodname", "nodename", 1},
	}
	for _, tc := range cases {
		if got := Distance(tc.a, tc.b); got != tc.want || Distance(tc.b, tc.a) != tc.want {
			t.Errorf("case %d: Distance(%q, %q) = %d, want %d", tc.n, tc.a, tc.b, got, tc.want)
		}
	}
	// a hostile, huge word costs no more than 100 bytes' worth
	start := time.Now()
	Distance(strings.Repeat("x", 1<<20), strings.Repeat("y", 1<<20))
	if took := time.Since(start); took > time.Second {
		t.Errorf("a 1 MiB word took %s", took)
	}
}

func TestClosestAndWithin(t *testing.T) {
	known := []string{"approvers", "four_eyes", "quorum"}
	if got, d := Closest("qourum", known); got != "quorum" || d != 2 {
		t.Errorf("Closest = %q %d", got, d)
	}
	if got := Within("quorom", known, 2); got != "quorum" {
		t.Errorf("Within 2 = %q", got)
	}
	if got := Within("totally_else", known, 2); got != "" {
		t.Errorf("Within a far word = %q", got)
	}
	if got, _ := Closest("x", nil); got != "" {
		t.Errorf("no candidates: %q", got)
	}
}
