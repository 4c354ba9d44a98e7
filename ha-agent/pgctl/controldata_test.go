package pgctl

import "testing"

// What each pg_controldata cluster state means to the agent.
func TestControlDataStates(t *testing.T) {
	cases := []struct {
		state                                string
		clean, wasPrimary, shutDownAsPrimary bool
	}{
		{"shut down", true, true, true},
		{"shut down in recovery", true, false, false},
		{"shutting down", false, true, false},
		{"in production", false, true, false},
		{"in crash recovery", false, false, false},
		{"in archive recovery", false, false, false},
	}
	for _, tc := range cases {
		cd, err := parseControlData("Database system identifier:           7300000000000000001\nDatabase cluster state:               " + tc.state + "\nLatest checkpoint's TimeLineID:       3\n")
		if err != nil {
			t.Fatalf("%s: %v", tc.state, err)
		}
		if cd.State != tc.state || cd.Timeline != 3 {
			t.Errorf("%s: parsed state %q timeline %d", tc.state, cd.State, cd.Timeline)
		}
		if got := cd.CleanShutdown(); got != tc.clean {
			t.Errorf("%s: CleanShutdown = %v, want %v", tc.state, got, tc.clean)
		}
		if got := cd.WasPrimary(); got != tc.wasPrimary {
			t.Errorf("%s: WasPrimary = %v, want %v", tc.state, got, tc.wasPrimary)
		}
		if got := cd.ShutDownAsPrimary(); got != tc.shutDownAsPrimary {
			t.Errorf("%s: ShutDownAsPrimary = %v, want %v", tc.state, got, tc.shutDownAsPrimary)
		}
	}
}
