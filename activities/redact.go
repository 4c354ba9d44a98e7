package activities

import (
	"fmt"
	"regexp"
	"strings"
)

// Output digests: what of a command's or a query's output may go into an error or a log.
// Raw output never does: a query's rows may hold password verifiers (pg_authid), psql echoes
// the statement that failed (its LINE context, with any literal in it), and errors travel into
// workflow history, the worker's log and chat notifications.

var (
	// diagRE: the lines PostgreSQL and psql write to say what went wrong, with psql's
	// "psql:<stdin>:3: " prefix when there is one; LINE, DETAIL, CONTEXT and QUERY lines, which
	// quote statements and row values, are not among them.
	diagRE = regexp.MustCompile(`^(?:psql:(?:[^ ]*:)? )?(?:ERROR|FATAL|PANIC|HINT|error):\s`)
	// literalRE: a single-quoted SQL literal (doubled quotes inside), or one cut off at the end.
	literalRE = regexp.MustCompile(`'(?:[^']|'')*(?:'|$)`)
	// secretRE: a password verifier or hash, wherever it appears.
	secretRE = regexp.MustCompile(`SCRAM-SHA-256\$\S*|md5[0-9a-f]{32}`)
)

// maxDigest bounds a digest's length: enough for PostgreSQL's message and hint.
const maxDigest = 300

// outputDigest is the one form in which output may enter an error message or a log: the
// diagnostic lines of PostgreSQL and psql (ERROR, FATAL, HINT, psql's own errors) with every
// quoted literal and anything like a password verifier masked, cut to maxDigest characters; for
// output with no such line (rows, JSON), only its size.
func outputDigest(out string) string {
	var kept []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if diagRE.MatchString(line) {
			kept = append(kept, literalRE.ReplaceAllString(maskSecrets(line), "'…'"))
		}
	}
	if len(kept) == 0 {
		out = strings.TrimSpace(out)
		if out == "" {
			return "no output"
		}
		return fmt.Sprintf("%d bytes in %d lines, withheld", len(out), strings.Count(out, "\n")+1)
	}
	d := strings.Join(kept, " / ")
	if len(d) > maxDigest {
		d = strings.ToValidUTF8(d[:maxDigest], "") + "…"
	}
	return d
}

// maskSecrets hides anything like a password verifier or hash in s.
func maskSecrets(s string) string { return secretRE.ReplaceAllString(s, "[secret]") }
