// Package suggest finds the known word a mistyped one most likely meant ("did you mean
// pg_parameters?"): the inventory's variables and fields, the approvals file's fields.
package suggest

// Closest returns the candidate with the smallest edit distance to s (the first on a tie) and
// that distance; "" and a huge distance when there are no candidates.
func Closest(s string, candidates []string) (string, int) {
	best, dist := "", 1<<30
	for _, c := range candidates {
		if d := Distance(s, c); d < dist {
			best, dist = c, d
		}
	}
	return best, dist
}

// Within is the closest candidate at most maxEdits edits from s, or "".
func Within(s string, candidates []string, maxEdits int) string {
	if best, d := Closest(s, candidates); d <= maxEdits {
		return best
	}
	return ""
}

// Distance is the Levenshtein distance (insertions, deletions, substitutions) between a and b.
// Words longer than 100 bytes are compared by their first 100: no key is that long, and a
// hostile one must not cost quadratic time.
func Distance(a, b string) int {
	a, b = a[:min(len(a), 100)], b[:min(len(b), 100)]
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
