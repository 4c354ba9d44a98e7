package starter

import (
	"strings"
	"testing"
	"time"
)

// pg-restart's input: --member by nodename or address, an unknown one refused naming the
// members; the switchover's part (DCS, pg_rpo, approval timeout) resolved as a switchover's.
func TestPgRestartInput(t *testing.T) {
	inv, cl := pitrCluster()
	cl.PG.RPO, cl.PG.Namespace = 1<<20, "/pigwf"
	in, err := PgRestartInput(inv, cl, PgRestartRequest{Member: "10.0.0.12", Pending: true, ApprovalTimeout: 20 * time.Minute, Reason: "shared_buffers"}, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if in.Member != "pg-test-2" || !in.Pending || in.MaxLagBytes != 1<<20 || in.Approval.Timeout != 20*time.Minute || in.RequestedBy != "carol" ||
		len(in.Members) != 2 || in.Members[0].APIURL != "https://10.0.0.11:8008" || in.DCS.Namespace != "/pigwf" || in.DCS.Cluster != "pg-test" || in.Reason != "shared_buffers" {
		t.Errorf("input %+v", in)
	}
	_, err = PgRestartInput(inv, cl, PgRestartRequest{Member: "pg-test-9"}, "carol")
	if err == nil || !strings.Contains(err.Error(), "--member pg-test-9 is not a member of pg-test: give one of pg-test-1, pg-test-2") {
		t.Errorf("unknown member: %v", err)
	}
	cl.Name = ""
	if _, err := PgRestartInput(inv, cl, PgRestartRequest{}, "carol"); err == nil || !strings.Contains(err.Error(), "has no pg_cluster") {
		t.Errorf("not a PostgreSQL cluster: %v", err)
	}
}

func TestParseAt(t *testing.T) {
	now := time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  string
	}{
		{"", time.Time{}, ""},
		{"+10m", now.Add(10 * time.Minute), ""},
		{"+1h30m", now.Add(90 * time.Minute), ""},
		{"2026-12-01T02:00:00Z", now.Add(time.Hour), ""},
		{"2026-12-01T03:00:00+01:00", now.Add(time.Hour), ""},
		{"+0s", time.Time{}, "a positive duration"},
		{"+soon", time.Time{}, "a positive duration"},
		{"2026-12-01 02:00", time.Time{}, "RFC 3339 time with its zone"},
		{"2026-12-01T00:59:00Z", time.Time{}, "is already past"},
	} {
		got, err := ParseAt(tc.in, now)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "--at") {
				t.Errorf("%q: %v, want an error naming --at and %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestPgRestartAndReloadMeta(t *testing.T) {
	inv, cl := pitrCluster()
	in, err := PgRestartInput(inv, cl, PgRestartRequest{Pending: true, At: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	m := PgRestartMeta(in, req)
	if want := "pg-restart pg-test: the members waiting for a restart, requested by alice"; m.Summary != want {
		t.Errorf("summary %q, want %q", m.Summary, want)
	}
	mustContain(t, "details", m.Details, "Not before:** 2026-12-01 02:00 UTC", "one at a time", "switchover/pg-test", "Writes stop only here",
		"old leader", "`pigwf approve switchover/pg-test --by NAME`")
	rin, err := PgReloadInput(inv, cl)
	if err != nil {
		t.Fatal(err)
	}
	rm := PgReloadMeta(rin, req)
	if want := "pg-reload pg-test: 2 members, requested by alice"; rm.Summary != want || len(rin.Members) != 2 {
		t.Errorf("summary %q, members %v", rm.Summary, rin.Members)
	}
	mustContain(t, "details", rm.Details, "reloads PostgreSQL", "`pigwf start pg-restart --cluster pg-test --pending`")
}
