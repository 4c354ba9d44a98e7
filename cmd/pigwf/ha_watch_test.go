package main

import (
	"os"
	"path/filepath"
	"testing"
)

// A round clears the screen only on a terminal: a pipe, a file and /dev/null (a character
// device, which a mode check would take for a terminal) keep every round; a pseudo-terminal
// clears, unless TERM=dumb.
func TestClearableOnlyOnATerminal(t *testing.T) {
	t.Setenv("TERM", "xterm")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for name, f := range map[string]*os.File{"a pipe": w, "a file": file, os.DevNull: null} {
		if clearable(f) {
			t.Errorf("%s taken for a terminal", name)
		}
	}

	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal to test the terminal case with: %v", err)
	}
	defer pty.Close()
	if !clearable(pty) {
		t.Errorf("a pseudo-terminal not taken for a terminal")
	}
	t.Setenv("TERM", "dumb")
	if clearable(pty) {
		t.Errorf("TERM=dumb: cleared a terminal that does not understand ANSI escapes")
	}
}
