// Package libpq is how pigwf speaks to PostgreSQL's client library and server about connections:
// keyword/value connection strings (one quoting rule, one parser) and TLS on both ends from the
// deployment CA's files (pki.Files): what a client dialling another host verifies (VerifyFull)
// and what a server presents and trusts (ServerSettings).
package libpq

import "strings"

// Param is one keyword=value of a connection string.
type Param struct{ Key, Value string }

// P is a Param, for short lists.
func P(key, value string) Param { return Param{key, value} }

// Conninfo is params as a keyword/value connection string, each value quoted by Quote, in the
// order given (libpq takes the last of a repeated keyword).
func Conninfo(params ...Param) string {
	parts := make([]string, len(params))
	for i, p := range params {
		parts[i] = p.Key + "=" + Quote(p.Value)
	}
	return strings.Join(parts, " ")
}

// Quote quotes a connection-string value by libpq's rules: bare when it is not empty and has no
// space, quote or backslash; otherwise in single quotes, with ' and \ escaped by a backslash.
// (libpq ends a bare value at whitespace and reads \ as an escape in both forms.)
func Quote(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\f\v'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// Parse reads a keyword/value connection string as libpq does (quoted or bare values, \
// escapes); a later keyword replaces an earlier one. It stops at the first malformed pair.
func Parse(s string) map[string]string {
	out := map[string]string{}
	i := 0
	space := func() {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
	}
	for {
		space()
		start := i
		for i < len(s) && s[i] != '=' && !isSpace(s[i]) {
			i++
		}
		key := s[start:i]
		space()
		if key == "" || i >= len(s) || s[i] != '=' {
			return out
		}
		i++
		space()
		var val strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			for i < len(s) && s[i] != '\'' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
			i++ // the closing quote
		} else {
			for i < len(s) && !isSpace(s[i]) {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				val.WriteByte(s[i])
				i++
			}
		}
		out[key] = val.String()
	}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}
