package starter

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pigwf/pigwf/ha-agent/dcs"
	"github.com/pigwf/pigwf/internal/etcdtest"
)

var switchedAt = time.Date(2026, 11, 30, 9, 15, 2, 500, time.UTC)

// snapshot is a DCS read of a cluster led by leader on timeline tl, bootstrapped by
// bootstrapper, whose history key holds entries (nil: no key).
func snapshot(leader string, tl uint32, bootstrapper string, entries []dcs.HistoryEntry) *dcs.Snapshot {
	s := &dcs.Snapshot{}
	if leader != "" {
		s.Leader = &dcs.Versioned[dcs.LeaderRecord]{Value: dcs.LeaderRecord{Holder: leader, Timeline: tl}}
	}
	if bootstrapper != "" {
		s.Initialize = &dcs.Versioned[dcs.InitializeRecord]{Value: dcs.InitializeRecord{ClaimedBy: bootstrapper}}
	}
	if entries != nil {
		s.History = &dcs.Versioned[[]dcs.HistoryEntry]{Value: entries}
	}
	return s
}

// who is one switch's timelines and leaders, the part of HASwitch the derivation decides.
type who struct {
	tl, next uint32
	old, new string
}

func whoOf(h HAHistory) []who {
	out := []who{}
	for _, s := range h.Switches {
		out = append(out, who{s.Timeline, s.Next, s.OldLeader, s.NewLeader})
	}
	return out
}

// Each switch names the member that led the timeline it ended and the one that led the
// timeline it started, from what the DCS holds: the key's writer (the agent names itself on
// the last switch only), the leader key, and the bootstrapper for timeline 1.
func TestHistoryLeadersOfEachSwitch(t *testing.T) {
	for _, c := range []struct {
		name  string
		snap  *dcs.Snapshot
		want  []who
		stale bool
	}{
		{"one failover, as the agent writes it",
			snapshot("n2", 2, "n1", []dcs.HistoryEntry{{Timeline: 1, LSN: 0x3000148, Leader: "n2"}}),
			[]who{{1, 2, "n1", "n2"}}, false},
		{"two switches, as the agent writes them: the first switch's new leader is lost with its key",
			snapshot("n3", 3, "n1", []dcs.HistoryEntry{{Timeline: 1, LSN: 0x3000148}, {Timeline: 2, LSN: 0x5000000, Leader: "n3"}}),
			[]who{{1, 2, "n1", ""}, {2, 3, "", "n3"}}, false},
		{"a merged key naming every new leader",
			snapshot("n1", 4, "n1", []dcs.HistoryEntry{{Timeline: 1, Leader: "n2"}, {Timeline: 2, Leader: "n3"}, {Timeline: 3, Leader: "n1"}}),
			[]who{{1, 2, "n1", "n2"}, {2, 3, "n2", "n3"}, {3, 4, "n3", "n1"}}, false},
		{"a restore branched timeline 4 from timeline 1",
			snapshot("n2", 4, "n1", []dcs.HistoryEntry{{Timeline: 1, LSN: 0x3000148, Leader: "n2"}}),
			[]who{{1, 4, "n1", "n2"}}, false},
		{"the key has no writer: the leader key's holder leads its next timeline",
			snapshot("n2", 2, "n1", []dcs.HistoryEntry{{Timeline: 1}}),
			[]who{{1, 2, "n1", "n2"}}, false},
		{"a stale key: written on timeline 2 by n2, n3 leads since",
			snapshot("n3", 3, "n1", []dcs.HistoryEntry{{Timeline: 1, Leader: "n2"}}),
			[]who{{1, 0, "n1", "n2"}}, true},
		{"no leader now: the writer still led its timeline",
			snapshot("", 0, "n1", []dcs.HistoryEntry{{Timeline: 1, Leader: "n2"}}),
			[]who{{1, 0, "n1", "n2"}}, false},
	} {
		h, err := historyOf("pg-test", c.snap)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := whoOf(h); !reflect.DeepEqual(got, c.want) || h.Stale != c.stale {
			t.Errorf("%s:\n  got  %+v stale %v\n  want %+v stale %v", c.name, got, h.Stale, c.want, c.stale)
		}
	}
}

// The table has patronictl history's columns in its order plus the leader each switch ended,
// switches in the key's order, LSNs as PostgreSQL prints them, then the current timeline.
func TestPrintHAHistoryTable(t *testing.T) {
	h, err := historyOf("pg-test", snapshot("pg-test-3", 3, "pg-test-1", []dcs.HistoryEntry{
		{Timeline: 1, LSN: 0x3000148, Reason: "no recovery target specified", Leader: "pg-test-2", At: switchedAt.Add(-time.Hour)},
		{Timeline: 2, LSN: 0x16B374D848, Reason: "no recovery target specified", Leader: "pg-test-3", At: switchedAt},
	}))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	PrintHAHistory(&out, h)
	want := `+ Cluster: pg-test +------------------------------+-------------------------+------------+------------+
| TL |         LSN | Reason                       | Timestamp               | Old Leader | New Leader |
+----+-------------+------------------------------+-------------------------+------------+------------+
|  1 |   0/3000148 | no recovery target specified | 2026-11-30 08:15:02 UTC | pg-test-1  | pg-test-2  |
|  2 | 16/B374D848 | no recovery target specified | 2026-11-30 09:15:02 UTC | pg-test-2  | pg-test-3  |
+----+-------------+------------------------------+-------------------------+------------+------------+
 current: timeline 3, leader pg-test-3
`
	if out.String() != want {
		t.Errorf("pigwf ha history:\n%s\nwant:\n%s", out.String(), want)
	}

	// A switch the key keeps no time or leader for gets empty cells, not made-up ones; a stale
	// key says so under the table.
	h, _ = historyOf("pg-test", snapshot("n3", 3, "", []dcs.HistoryEntry{{Timeline: 1, LSN: 0x3000148, Leader: "n2"}}))
	out.Reset()
	PrintHAHistory(&out, h)
	for _, line := range []string{
		"|  1 | 0/3000148 |        |           |            | n2         |",
		" current: timeline 3, leader n3",
		" Note: n2 wrote this history, not the leader n3: the leader's agent rewrites it within seconds",
	} {
		if !strings.Contains(out.String(), line+"\n") {
			t.Errorf("lacks %q:\n%s", line, out.String())
		}
	}
}

// A cluster without switches gets one line that says why, never an empty table.
func TestPrintHAHistoryWithoutSwitches(t *testing.T) {
	for _, c := range []struct {
		snap *dcs.Snapshot
		want string
	}{
		{snapshot("n1", 1, "n1", []dcs.HistoryEntry{}), "Cluster pg-test: never failed over or switched over (current: timeline 1, leader n1)\n"},
		{snapshot("n1", 1, "n1", nil), "Cluster pg-test: never failed over or switched over (current: timeline 1, leader n1)\n"},
		{snapshot("n1", 0, "n1", nil), "Cluster pg-test: never failed over or switched over (current: leader n1, timeline not reported yet)\n"},
		{snapshot("n2", 3, "n1", []dcs.HistoryEntry{}), "Cluster pg-test: no timeline switch in the DCS yet, though its leader n2 is on timeline 3: its agent writes the history key from pg_wal/00000003.history (try again in a few seconds)\n"},
		{snapshot("", 0, "", nil), "Cluster pg-test: no timeline history and no leader in the DCS: the cluster was never led (`pigwf ha list` shows its members)\n"},
	} {
		h, err := historyOf("pg-test", c.snap)
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		PrintHAHistory(&out, h)
		if out.String() != c.want {
			t.Errorf("got  %q\nwant %q", out.String(), c.want)
		}
	}
}

// HAClient.History reads what the agent's PutHistory wrote, through dcs.Store.Load (the one
// decoder of the key); a history key that does not decode is an error naming the key, while
// another key's problem does not stop the history. --json prints the typed switches.
func TestHAClientHistoryFromEtcd(t *testing.T) {
	cli := etcdtest.Client(t, etcdtest.Start(t))
	st, err := dcs.New(cli, "/pigwf-test", "pg-test", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h := &HAClient{cluster: "pg-test", cli: cli, store: st}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if _, err := st.ClaimInitialize(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	g, err := st.AcquireLeader(ctx, dcs.LeaderRecord{Holder: "n2", Term: 2, Timeline: 2}, 0)
	if err != nil {
		t.Fatal(err)
	}
	written := []dcs.HistoryEntry{{Timeline: 1, LSN: 0x3000148, Reason: "no recovery target specified", Leader: "n2", At: switchedAt}}
	if _, err := st.PutHistory(ctx, g, written); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, st.Key(dcs.KeyMembers+"n3"), "{not json"); err != nil {
		t.Fatal(err)
	}
	got, err := h.History(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := HAHistory{Cluster: "pg-test", Timeline: 2, Leader: "n2", Recorded: true,
		Switches: []HASwitch{{HistoryEntry: written[0], Next: 2, OldLeader: "n1", NewLeader: "n2"}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("History:\n  got  %+v\n  want %+v", got, want)
	}
	js, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"cluster":"pg-test","timeline":2,"leader":"n2","recorded":true,"switches":[{"timeline":1,"lsn":50331976,"leader":"n2","reason":"no recovery target specified","at":"2026-11-30T09:15:02.0000005Z","next_timeline":2,"old_leader":"n1","new_leader":"n2"}]}`
	if string(js) != wantJSON {
		t.Errorf("--json:\n  got  %s\n  want %s", js, wantJSON)
	}

	if _, err := cli.Put(ctx, st.Key(dcs.KeyHistory), `{"timeline":1}`); err != nil {
		t.Fatal(err)
	}
	_, err = h.History(ctx)
	var ke *dcs.KeyError
	if !errors.As(err, &ke) || ke.Kind != dcs.KindHistory || !strings.Contains(err.Error(), "etcdctl get "+st.Key(dcs.KeyHistory)) {
		t.Errorf("a malformed history key: %v, want a *dcs.KeyError of it naming how to look", err)
	}
}
