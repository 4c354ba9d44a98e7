package activities

import "testing"

func TestIsPITRLeftover(t *testing.T) {
	for i, c := range []struct {
		path string
		want bool
	}{
		{"/pg/data.before-pitr-20261130T062332Z", true},            // 1: kept aside by a run
		{"/pg/data.pitr-failed-20261130T062332Z", true},            // 2: a rolled-back restore's copy
		{"/pg/data.pitr-partial-20261130T062332Z", true},           // 3: an interrupted restore
		{"/pg/data", false},                                        // 4: the live data directory
		{"/pg/data.before-pitr-20261130T062332Z/base", false},      // 5: inside one
		{"/pg/data.before-pitr-x", false},                          // 6: not a run key
		{"/pg/data.before-pitr-20261130T062332Z; rm -rf /", false}, // 7: anything after the key
		{"/pg/other.before-pitr-20261130T062332Z", false},          // 8: another directory's
		{"/pg/data.pigwf-partial-20261130T062332Z", false},         // 9: pg-clone's, not PITR's
		{"/pg/data.before-pitr-20261130T062332Z\n/pg/data", false}, // 10: two lines
	} {
		if got := IsPITRLeftover("/pg/data", c.path); got != c.want {
			t.Errorf("case %d: IsPITRLeftover(%q) = %v, want %v", i+1, c.path, got, c.want)
		}
	}
	if IsPITRLeftover("", ".before-pitr-20261130T062332Z") {
		t.Error("an empty data directory matched")
	}
}
