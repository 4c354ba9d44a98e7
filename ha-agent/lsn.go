package haagent

import (
	"fmt"
	"strconv"
	"strings"
)

// LSN is a PostgreSQL WAL location (pg_lsn) as a byte position.
type LSN uint64

// String formats the LSN the way PostgreSQL prints it: "16/B374D848".
func (l LSN) String() string {
	return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l))
}

// ParseLSN parses PostgreSQL's "hi/lo" hexadecimal notation.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("parse LSN %q: missing '/'", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse LSN %q: high part: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parse LSN %q: low part: %w", s, err)
	}
	return LSN(h<<32 | l), nil
}

// LagBytes is the WAL distance in bytes from behind up to ahead (0 when
// behind is not behind).
func LagBytes(ahead, behind LSN) uint64 {
	if behind >= ahead {
		return 0
	}
	return uint64(ahead - behind)
}
