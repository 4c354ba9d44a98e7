package pitr

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// timeText is the one shape of target time accepted: a date, 'T' or a space, a time with optional
// fraction, then a zone. It covers RFC 3339 (2026-11-30T10:00:00.25+08:00, ...Z) and the text
// PostgreSQL prints for timestamptz (2026-11-30 10:00:00.25+08, -05:30, -0530, " UTC").
//
// The zone is required: with none, pgBackRest reads the text in its host's local time (to pick the
// backup) while PostgreSQL reads it in its timezone setting (to stop replay), and the two can
// differ; a zone name (Asia/Shanghai, PST, CET) is refused because abbreviations are ambiguous and
// pgBackRest does not read names at all.
var timeText = regexp.MustCompile(`^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?` +
	`(?: ?(?:(Z|z|UTC)|([+-])(\d{2})(?::?(\d{2}))?|([A-Za-z][A-Za-z0-9_/+-]*)))?$`)

const timeExample = `e.g. 2026-11-30T10:00:00Z or "2026-11-30 10:00:00+08"`

// ParseTime reads a target time (see timeText) and returns it in UTC, keeping the fraction.
func ParseTime(s string) (time.Time, error) {
	bad := func(err error, fix string) (time.Time, error) {
		return time.Time{}, &FlagError{Flag: FlagTargetTime, Value: s, Err: err, Fix: fix}
	}
	m := timeText.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return bad(ErrBadTime, "give a date, a time and a zone, "+timeExample)
	}
	num := func(i int) int { v, _ := strconv.Atoi(m[i]); return v }
	year, month, day, hour, minute, sec := num(1), num(2), num(3), num(4), num(5), num(6)
	frac := m[7]
	utcWord, sign, offH, offM, zoneName := m[8], m[9], m[10], m[11], m[12]

	if zoneName != "" {
		return bad(ErrNamedTimeZone, "give the offset as a number instead of "+strconv.Quote(zoneName)+", "+timeExample)
	}
	if utcWord == "" && sign == "" {
		return bad(ErrNoTimeZone, "give one, "+timeExample)
	}
	// PostgreSQL keeps microseconds; a finer fraction would be rounded by the server and the
	// target would no longer be the instant the user wrote.
	if len(frac) > 6 {
		return bad(ErrTooPrecise, "give at most 6 digits after the decimal point (PostgreSQL keeps microseconds)")
	}
	nsec := 0
	if frac != "" {
		nsec, _ = strconv.Atoi(frac + strings.Repeat("0", 9-len(frac)))
	}
	offset := 0
	if sign != "" {
		h, mm := 0, 0
		h, _ = strconv.Atoi(offH)
		if offM != "" {
			mm, _ = strconv.Atoi(offM)
		}
		// PostgreSQL accepts offsets up to 15:59 (real zones stay within -12..+14).
		if h > 15 || mm > 59 {
			return bad(ErrBadTime, "the offset must be at most 15:59, "+timeExample)
		}
		offset = h*3600 + mm*60
		if sign == "-" {
			offset = -offset
		}
	}
	if year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return bad(ErrBadTime, "a field is out of range, "+timeExample)
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.FixedZone("", offset))
	// time.Date normalises 2026-02-30 into March; the text named a day that does not exist.
	if t.Day() != day || int(t.Month()) != month {
		return bad(ErrBadTime, fmt.Sprintf("%04d-%02d has no day %d, %s", year, month, day, timeExample))
	}
	return t.UTC(), nil
}

// FormatTime prints t the way the recovery settings and pgBackRest get it: UTC, microseconds
// when there are any, and an explicit "+00" so neither pgBackRest's host time zone nor
// PostgreSQL's timezone setting can change its meaning.
func FormatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05.999999") + "+00"
}
