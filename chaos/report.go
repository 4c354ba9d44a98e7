package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary aggregates the trials of one fault on one system.
type Summary struct {
	System string
	Fault  FaultInfo
	Trials int // trials in which the fault was injected
	NotRun int // trials that could not inject (cluster not healthy before): they count as failed

	Acked                  int // trials in which a write was acknowledged after the fault
	RTOMin, RTOMed, RTOMax time.Duration
	// Client*: through the access layer (HAProxy's primary port), in the same trials.
	ClientAcked                     int
	ClientMin, ClientMed, ClientMax time.Duration

	LeaderChanged int
	MovedAgain    int // trials with a second, unplanned leader change
	Lost          int // acknowledged writes lost, over all trials
	SplitBrains   int // probe rounds with two or more writable primaries

	Back                      int // old primary back as a streaming replica (trials where the leader moved)
	BackMin, BackMed, BackMax time.Duration
	HealthyMed                time.Duration
	GapMed                    time.Duration // median write unavailability (see Trial.Gap)

	Failed int
}

// Summarize aggregates trials of one fault on one system.
func Summarize(system string, f FaultInfo, trials []*Trial) Summary {
	s := Summary{System: system, Fault: f}
	var rtos, backs, healthy, gaps, clients []time.Duration
	for _, t := range trials {
		if !t.Injected() {
			s.NotRun++
			if t.Failed() {
				s.Failed++
			}
			continue
		}
		s.Trials++
		if t.Acked {
			s.Acked++
			rtos = append(rtos, t.RTO)
			gaps = append(gaps, t.Gap)
		}
		if t.ClientAcked {
			s.ClientAcked++
			clients = append(clients, t.ClientRTO)
		}
		if t.LeaderChanged {
			s.LeaderChanged++
		}
		if t.MovedAgain {
			s.MovedAgain++
		}
		if t.Back {
			s.Back++
			backs = append(backs, t.BackIn)
		}
		if t.HealthyIn > 0 {
			healthy = append(healthy, t.HealthyIn)
		}
		s.Lost += len(t.Lost)
		s.SplitBrains += len(t.SplitBrains)
		if t.Failed() {
			s.Failed++
		}
	}
	s.RTOMin, s.RTOMed, s.RTOMax = minMedMax(rtos)
	s.ClientMin, s.ClientMed, s.ClientMax = minMedMax(clients)
	s.BackMin, s.BackMed, s.BackMax = minMedMax(backs)
	_, s.HealthyMed, _ = minMedMax(healthy)
	_, s.GapMed, _ = minMedMax(gaps)
	return s
}

// minMedMax returns the minimum, median (mean of the two middle values for an even count) and
// maximum; zeros for no values.
func minMedMax(ds []time.Duration) (lo, med, hi time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	n := len(s)
	if n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return s[0], med, s[n-1]
}

// secs formats a duration in seconds with millisecond precision.
func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteTable writes one row per summary.
func WriteTable(w io.Writer, sums []Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "system\tfault\ttrials\tRTO min/median/max (s)\tclient RTO via HAProxy min/median/max (s)\twrite gap median (s)\tleader moved\tmoved again\tlost acked\t2 writable\told primary back\tback in min/median/max (s)\thealthy in median (s)\tfailed trials")
	for _, s := range sums {
		rto := "-"
		if s.Acked > 0 {
			rto = fmt.Sprintf("%s / %s / %s", secs(s.RTOMin), secs(s.RTOMed), secs(s.RTOMax))
			if s.Acked < s.Trials {
				rto += fmt.Sprintf(" (%d of %d)", s.Acked, s.Trials)
			}
		}
		client := "-"
		if s.ClientAcked > 0 {
			client = fmt.Sprintf("%s / %s / %s", secs(s.ClientMin), secs(s.ClientMed), secs(s.ClientMax))
			if s.ClientAcked < s.Trials {
				client += fmt.Sprintf(" (%d of %d)", s.ClientAcked, s.Trials)
			}
		}
		back, backIn := "n/a", "-"
		if s.LeaderChanged > 0 {
			back = fmt.Sprintf("%d/%d", s.Back, s.LeaderChanged)
		}
		if s.Back > 0 {
			backIn = fmt.Sprintf("%s / %s / %s", secs(s.BackMin), secs(s.BackMed), secs(s.BackMax))
		}
		healthy := "-"
		if s.HealthyMed > 0 {
			healthy = secs(s.HealthyMed)
		}
		gap := "-"
		if s.Acked > 0 {
			gap = secs(s.GapMed)
		}
		trials := fmt.Sprint(s.Trials)
		if s.NotRun > 0 {
			trials += fmt.Sprintf(" (+%d not run)", s.NotRun)
		}
		fmt.Fprintf(tw, "%s\t(%d) %s\t%s\t%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\n",
			s.System, s.Fault.Number, s.Fault.Kind, trials, rto, client, gap, s.LeaderChanged, s.Trials, s.MovedAgain, s.Lost, s.SplitBrains, back, backIn, healthy, s.Failed)
	}
	tw.Flush()
}

// Legend explains the table's columns.
var Legend = []string{
	"RTO: fault injection → first write acknowledged whose attempt started after it (on the faulted node, only on a connection opened after it: a killed postmaster's orphaned backends may finish a commit or two); for (4) and (5) the longest stretch without an acknowledged write in the 5 s after the fault (extended until writes flow again)",
	"client RTO: the same through the access layer, as an application sees it: a second writer connects to HAProxy's primary service port on every node (like a client given the HAProxy addresses) and the first write PostgreSQL acknowledges through it counts, measured before the fault is lifted; pigwf: pg-service's HAProxy (checks every 100 ms, rise 1, fall 2); Patroni: HAProxy with Pigsty's service defaults (inter 3s fastinter 1s downinter 5s rise 3 fall 3) on Patroni's REST API",
	"write gap: the last acknowledged write before that first write → that write (a switchover's old primary keeps writing for a while after the request)",
	"leader moved: trials whose first write after the fault came from another node; moved again: trials with a second, unplanned leader change before the cluster was healthy again",
	"lost acked: acknowledged ids missing on the primary after the trial (every id acknowledged so far is read back each time); 2 writable: probe rounds (every ~20 ms, a write on every node at once) in which two or more nodes acknowledged",
	"old primary back: trials where it streamed again from the current primary within 60 s of the fault being lifted, of those where the leader moved; back in: fault lifted → that moment; healthy in: fault lifted → 1 primary + 2 streaming, one of them sync, and the HA system agreeing",
	"failed trials: a lost write, two writable primaries, an old primary not back, no write within 90 s or a cluster that did not heal (not run: the cluster was broken before the fault)",
}

// WriteGoals says, for pigwf, whether the median RTO, direct and through HAProxy, met the
// sub-second goal per fault.
func WriteGoals(w io.Writer, sums []Summary) {
	for _, s := range sums {
		if !s.Fault.SubSecondGoal {
			continue
		}
		fmt.Fprintf(w, "  (%d) %-12s median RTO %s s < 1 s: %s\n", s.Fault.Number, s.Fault.Kind, secs(s.RTOMed), goalVerdict(s.Acked, s.RTOMed))
		fmt.Fprintf(w, "  (%d) %-12s median client RTO through HAProxy %s s < 1 s: %s\n", s.Fault.Number, s.Fault.Kind, secs(s.ClientMed), goalVerdict(s.ClientAcked, s.ClientMed))
	}
}

// goalVerdict: a median of acked trials against the sub-second goal.
func goalVerdict(acked int, med time.Duration) string {
	switch {
	case acked == 0:
		return "NOT MEASURED"
	case med < time.Second:
		return "met"
	}
	return "NOT MET"
}

// TLSVerdicts says, per fault measured both ways, whether the median RTO with TLS stays within
// budget (e.g. 1.2) times the plain-text one.
func TLSVerdicts(tls, plain []Summary, budget float64) []string {
	var out []string
	for _, p := range plain {
		for _, s := range tls {
			if s.Fault.Kind != p.Fault.Kind {
				continue
			}
			verdict := "NOT MEASURED"
			ratio := 0.0
			if s.Acked > 0 && p.Acked > 0 && p.RTOMed > 0 {
				ratio = s.RTOMed.Seconds() / p.RTOMed.Seconds()
				verdict = "within budget"
				if ratio > budget {
					verdict = "OVER BUDGET"
				}
			}
			out = append(out, fmt.Sprintf("(%d) %-11s TLS %s s, plain %s s: TLS/plain %.2f, %s", s.Fault.Number, s.Fault.Kind, secs(s.RTOMed), secs(p.RTOMed), ratio, verdict))
		}
	}
	return out
}

// WriteComparison writes the ratio of median RTOs (anchor / pigwf) for the faults both ran.
func WriteComparison(w io.Writer, pigwf, anchor []Summary, anchorName string) {
	writeRatios(w, pigwf, anchor, anchorName, "median RTO", func(s Summary) (time.Duration, bool) { return s.RTOMed, s.Acked > 0 })
}

// WriteClientComparison writes the ratio of median client RTOs through HAProxy (anchor / pigwf).
func WriteClientComparison(w io.Writer, pigwf, anchor []Summary, anchorName string) {
	writeRatios(w, pigwf, anchor, anchorName, "median client RTO", func(s Summary) (time.Duration, bool) { return s.ClientMed, s.ClientAcked > 0 })
}

func writeRatios(w io.Writer, pigwf, anchor []Summary, anchorName, what string, pick func(Summary) (time.Duration, bool)) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "fault\tpigwf %s (s)\t%s %s (s)\t%s / pigwf\n", what, anchorName, what, anchorName)
	orDash := func(s Summary) string {
		if d, ok := pick(s); ok {
			return secs(d)
		}
		return "-"
	}
	for _, a := range anchor {
		for _, p := range pigwf {
			if p.Fault.Kind != a.Fault.Kind {
				continue
			}
			ratio := "-"
			pd, pok := pick(p)
			ad, aok := pick(a)
			if pok && aok && pd > 0 {
				ratio = fmt.Sprintf("%.1f×", ad.Seconds()/pd.Seconds())
			}
			fmt.Fprintf(tw, "(%d) %s\t%s\t%s\t%s\n", a.Fault.Number, a.Fault.Kind, orDash(p), orDash(a), ratio)
		}
	}
	tw.Flush()
}

// TrialLine is the one-line account of a trial printed as the suite runs.
func TrialLine(t *Trial) string {
	var b strings.Builder
	at := "--:--:--.---"
	if t.Injected() {
		at = t.T0.Format("15:04:05.000")
	}
	fmt.Fprintf(&b, "%-7s %-11s #%-2d at %s primary n%d", t.System, t.Fault, t.N, at, t.OldPrimary)
	if t.Acked {
		fmt.Fprintf(&b, " → n%d  RTO %s s (write gap %s s from t0%+.3fs)", t.NewPrimary, secs(t.RTO), secs(t.Gap), t.LastOld.Seconds())
	} else {
		b.WriteString(" → no write")
	}
	if t.ClientAcked {
		fmt.Fprintf(&b, "; client RTO via HAProxy %s s (n%d)", secs(t.ClientRTO), t.ClientNode)
	}
	if t.LeaderChanged {
		b.WriteString("  leader moved")
		if t.Back {
			fmt.Fprintf(&b, ", old primary streaming %s s after the fault was lifted", secs(t.BackIn))
		}
	} else {
		b.WriteString("  leader kept")
	}
	if t.HealthyIn > 0 {
		fmt.Fprintf(&b, "; healthy in %s s", secs(t.HealthyIn))
	}
	fmt.Fprintf(&b, "; lost %d; two writable %d", len(t.Lost), len(t.SplitBrains))
	if t.Detail != "" {
		fmt.Fprintf(&b, " [%s]", t.Detail)
	}
	for _, e := range t.Errs {
		fmt.Fprintf(&b, "\n    FAILED: %s", e)
	}
	for _, l := range t.LostDetail {
		fmt.Fprintf(&b, "\n    LOST: %s", l)
	}
	for i, sb := range t.SplitBrains {
		if i == 5 {
			fmt.Fprintf(&b, "\n    … %d more split-brain rounds", len(t.SplitBrains)-5)
			break
		}
		fmt.Fprintf(&b, "\n    TWO WRITABLE: probe round %d at t0%+.3fs: nodes %v acknowledged", sb.Round, sb.At.Sub(t.T0).Seconds(), sb.Nodes)
	}
	return b.String()
}
