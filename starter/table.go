package starter

import (
	"fmt"
	"io"
	"strings"
)

// printBoxTable writes a table framed like patronictl's: the title in the top rule, the header,
// a rule, the rows and a closing rule. Columns in right are right-aligned (numbers).
func printBoxTable(w io.Writer, title string, header []string, rows [][]string, right map[int]bool) {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	sep := "+"
	for _, wd := range widths {
		sep += strings.Repeat("-", wd+2) + "+"
	}
	if len(title) < len(sep)-2 {
		fmt.Fprintln(w, "+"+title+sep[len(title)+1:])
	} else {
		fmt.Fprintln(w, "+"+title)
	}
	line := func(cells []string) {
		fmt.Fprint(w, "|")
		for i, c := range cells {
			if right[i] {
				fmt.Fprintf(w, " %*s |", widths[i], c)
			} else {
				fmt.Fprintf(w, " %-*s |", widths[i], c)
			}
		}
		fmt.Fprintln(w)
	}
	line(header)
	fmt.Fprintln(w, sep)
	for _, r := range rows {
		line(r)
	}
	fmt.Fprintln(w, sep)
}
