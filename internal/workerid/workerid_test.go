package workerid

import "testing"

func TestRoundTrip(t *testing.T) {
	id := Format("vm-1", 4242, "sha256-003c89ae8bcd")
	host, pid, build, ok := Parse(id)
	if !ok || host != "vm-1" || pid != 4242 || build != "sha256-003c89ae8bcd" {
		t.Fatalf("Parse(%q) = %q %d %q %v", id, host, pid, build, ok)
	}
	for _, other := range []string{"4242@vm-1@", "pigwf-worker@vm/pid-x/build-a", "pigwf-worker@vm/build-a", ""} {
		if _, _, _, ok := Parse(other); ok {
			t.Errorf("Parse(%q) accepted", other)
		}
	}
}
