// Command rendercheck prints the pgbackrest restore options pitr renders for a target, with the
// backup set SelectBackup chooses, one per line. verify-rendering.sh feeds them to a real
// pgbackrest restore. It lives under testdata so `go build ./...` leaves it out; run it with
// `go run ./pitr/testdata/rendercheck INFO.json KIND VALUE TIMELINE [BACKUP-SET]`, KIND one of
// time, time-exclusive, lsn, xid, name.
package main

import (
	"fmt"
	"os"

	"github.com/pigwf/pigwf/pitr"
)

func main() {
	if len(os.Args) < 5 {
		fail(fmt.Errorf("usage: rendercheck INFO.json KIND VALUE TIMELINE [BACKUP-SET]"))
	}
	doc, err := os.ReadFile(os.Args[1])
	fail(err)
	info, err := pitr.ParseInfo(doc)
	fail(err)
	if len(info) != 1 {
		fail(fmt.Errorf("want one stanza, got %d", len(info)))
	}
	windows, err := pitr.Windows(info[0], pitr.WindowOptions{})
	fail(err)
	f := pitr.Flags{Timeline: os.Args[4]}
	switch v := os.Args[3]; os.Args[2] {
	case "time":
		f.Time = v
	case "time-exclusive":
		f.Time, f.Exclusive = v, true
	case "lsn":
		f.LSN = v
	case "xid":
		f.XID = v
	case "name":
		f.Name = v
	default:
		fail(fmt.Errorf("unknown kind %q", os.Args[2]))
	}
	target, err := pitr.Parse(f)
	fail(err)
	set := ""
	if len(os.Args) > 5 {
		set = os.Args[5]
	}
	choice, err := pitr.SelectBackup(target, set, windows)
	fail(err)
	opts, err := target.PgBackRest()
	fail(err)
	for _, a := range append(opts.Args(), "--set="+choice.Backup.Label) {
		fmt.Println(a)
	}
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "rendercheck:", err)
		os.Exit(2)
	}
}
