package pitr

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// LSN is a PostgreSQL write-ahead log position (pg_lsn), printed as two hex halves "X/X".
type LSN uint64

// ErrBadLSN: the text is not PostgreSQL's X/X hex form, or is 0/0 (InvalidXLogRecPtr).
var ErrBadLSN = errors.New("not a PostgreSQL LSN")

// lsnPattern is PostgreSQL's pg_lsn input: up to 8 hex digits, a slash, up to 8 hex digits.
var lsnPattern = regexp.MustCompile(`^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$`)

// ParseLSN reads "X/X" (for example 0/3000050). 0/0 is refused: PostgreSQL treats it as no
// position at all, so it can never be a recovery target or a backup's stop.
func ParseLSN(s string) (LSN, error) {
	m := lsnPattern.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q: %w (want two hex numbers of at most 8 digits, e.g. 0/3000050)", s, ErrBadLSN)
	}
	hi, _ := strconv.ParseUint(m[1], 16, 32)
	lo, _ := strconv.ParseUint(m[2], 16, 32)
	l := LSN(hi<<32 | lo)
	if l == 0 {
		return 0, fmt.Errorf("%q: %w (0/0 is the invalid position)", s, ErrBadLSN)
	}
	return l, nil
}

// String prints the form PostgreSQL prints (upper-case hex, no padding), e.g. 0/3000050.
func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint64(l)&0xFFFFFFFF) }

// DefaultSegmentSize is initdb's default WAL segment size. pgbackrest info does not report the
// segment size, so position arithmetic on segment names assumes it unless told otherwise.
const DefaultSegmentSize uint64 = 16 << 20

// Segment is a WAL segment file name decoded: 8 hex digits of timeline, then the segment number
// split into a "log" part (high 32 bits of the position) and a segment within that log.
type Segment struct {
	Timeline uint32
	Log      uint32
	Seg      uint32
}

// ErrBadSegment: the text is not a 24-hex-digit WAL segment file name.
var ErrBadSegment = errors.New("not a WAL segment name")

var segmentPattern = regexp.MustCompile(`^[0-9A-F]{24}$`)

// ParseSegment decodes a WAL segment file name such as 000000010000000000000003.
func ParseSegment(name string) (Segment, error) {
	if !segmentPattern.MatchString(name) {
		return Segment{}, fmt.Errorf("%q: %w (want 24 upper-case hex digits)", name, ErrBadSegment)
	}
	tl, _ := strconv.ParseUint(name[0:8], 16, 32)
	lg, _ := strconv.ParseUint(name[8:16], 16, 32)
	sg, _ := strconv.ParseUint(name[16:24], 16, 32)
	if tl == 0 {
		return Segment{}, fmt.Errorf("%q: %w (timeline 0 does not exist)", name, ErrBadSegment)
	}
	return Segment{Timeline: uint32(tl), Log: uint32(lg), Seg: uint32(sg)}, nil
}

// String prints the file name.
func (s Segment) String() string { return fmt.Sprintf("%08X%08X%08X", s.Timeline, s.Log, s.Seg) }

// Start is the first position inside the segment. As in PostgreSQL's XLogFromFileName the log
// part counts 4 GiB units and the seg part counts segments inside one of them.
func (s Segment) Start(segmentSize uint64) LSN {
	if segmentSize == 0 {
		segmentSize = DefaultSegmentSize
	}
	return LSN(uint64(s.Log)<<32 + uint64(s.Seg)*segmentSize)
}

// End is the first position after the segment: everything before it is in this or an earlier
// segment, so when the segment is archived, WAL up to (not including) End is archived.
func (s Segment) End(segmentSize uint64) LSN {
	if segmentSize == 0 {
		segmentSize = DefaultSegmentSize
	}
	return s.Start(segmentSize) + LSN(segmentSize)
}

// ArchivedPast says whether the archiver's last archived file shows walFile archived: walFile
// itself or a later segment on the same timeline (segments are archived in order). last may also
// be a .partial or .backup file named after a segment, which does not prove that segment
// archived, only the ones before it; or a .history file, which proves nothing here.
func ArchivedPast(last, walFile string) bool {
	if len(last) < 24 {
		return false
	}
	got, err := ParseSegment(last[:24])
	if err != nil {
		return false
	}
	want, err := ParseSegment(walFile)
	if err != nil || got.Timeline != want.Timeline {
		return false
	}
	if len(last) > 24 {
		return got.String() > want.String()
	}
	return got.String() >= want.String()
}
