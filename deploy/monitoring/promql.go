package monitoring

import (
	"slices"
	"strings"
)

// MetricNames are the metric names a PromQL expression reads, sorted and without repeats. It is a
// tokenizer, not a parser (Prometheus's parser would bring its whole module): an identifier is a
// metric name unless it calls a function (followed by "("), is a keyword or aggregation, or lies
// where only label names, label values or durations go (inside {...}, [...], a string, or the
// label list after by, without, on, ignoring, group_left or group_right). Grafana's variables
// ($cluster, ${cluster}, $__rate_interval) are skipped. Selecting by {__name__="..."} is not seen.
func MetricNames(expr string) []string {
	var names []string
	l := lexer{s: expr}
	for {
		tok, ok := l.next()
		if !ok {
			break
		}
		if tok.kind != tokIdent {
			continue
		}
		lower := strings.ToLower(tok.text)
		switch {
		case labelListKeywords[lower]:
			if l.peek() == '(' {
				l.skipGroup('(', ')')
			}
		case keywords[lower]:
		case l.peek() == '(':
			// a function or aggregation: its arguments are read as they come
		default:
			names = append(names, tok.text)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// labelListKeywords are followed by a list of label names in parentheses.
var labelListKeywords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// keywords are PromQL's other words that are not metric names, the aggregation operators among
// them (their "by (...)" may stand between the name and its parenthesis).
var keywords = map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true, "atan2": true, "inf": true, "nan": true,
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true, "count_values": true,
	"bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true}

type tokKind int

const (
	tokIdent tokKind = iota
	tokOther
)

type lexToken struct {
	kind tokKind
	text string
}

type lexer struct {
	s string
	i int
}

// next is the next identifier, or tokOther for anything skipped past (an operator, a number, a
// string, a selector's braces, a range's brackets, a variable).
func (l *lexer) next() (lexToken, bool) {
	l.skipSpace()
	if l.i >= len(l.s) {
		return lexToken{}, false
	}
	c := l.s[l.i]
	switch {
	case c == '#':
		for l.i < len(l.s) && l.s[l.i] != '\n' {
			l.i++
		}
	case c == '"' || c == '\'' || c == '`':
		l.skipString()
	case c == '{':
		l.skipGroup('{', '}')
	case c == '[':
		l.skipGroup('[', ']')
	case c == '$':
		l.i++
		if l.i < len(l.s) && l.s[l.i] == '{' {
			l.skipGroup('{', '}')
		} else {
			for l.i < len(l.s) && isIdentChar(l.s[l.i]) {
				l.i++
			}
		}
	case isDigit(c) || (c == '.' && l.i+1 < len(l.s) && isDigit(l.s[l.i+1])):
		// a number or a duration: 0.9, 1e3, 0x1f, 5m, 1h30m
		for l.i < len(l.s) && (isIdentChar(l.s[l.i]) || l.s[l.i] == '.') {
			l.i++
		}
	case isIdentStart(c):
		start := l.i
		for l.i < len(l.s) && isIdentChar(l.s[l.i]) {
			l.i++
		}
		return lexToken{tokIdent, l.s[start:l.i]}, true
	default:
		l.i++
	}
	return lexToken{kind: tokOther}, true
}

func (l *lexer) skipSpace() {
	for l.i < len(l.s) && strings.ContainsRune(" \t\r\n", rune(l.s[l.i])) {
		l.i++
	}
}

// peek is the next character after spaces, 0 at the end.
func (l *lexer) peek() byte {
	l.skipSpace()
	if l.i >= len(l.s) {
		return 0
	}
	return l.s[l.i]
}

// skipString skips a quoted string starting at l.i (backslash escapes in " and ' strings).
func (l *lexer) skipString() {
	q := l.s[l.i]
	l.i++
	for l.i < len(l.s) {
		c := l.s[l.i]
		l.i++
		if c == '\\' && q != '`' {
			l.i++
			continue
		}
		if c == q {
			return
		}
	}
}

// skipGroup skips from the open character at l.i past its matching close, over strings and
// nested groups.
func (l *lexer) skipGroup(open, close byte) {
	depth := 0
	for l.i < len(l.s) {
		c := l.s[l.i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			l.skipString()
			continue
		case c == open:
			depth++
		case c == close:
			depth--
			if depth == 0 {
				l.i++
				return
			}
		}
		l.i++
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}
func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }
