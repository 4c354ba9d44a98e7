package starter

import (
	"fmt"
	"os"
	"os/user"
	"testing"
)

func TestRequesterOrder(t *testing.T) {
	t.Setenv("SUDO_USER", "alice")
	t.Setenv("USER", "root")
	t.Setenv("LOGNAME", "root")
	if got := Requester(); got != "alice" {
		t.Errorf("behind sudo: %q, want the person who ran sudo", got)
	}
	t.Setenv("SUDO_USER", "")
	t.Setenv("USER", "bob")
	if got := Requester(); got != "bob" {
		t.Errorf("USER: %q", got)
	}
	t.Setenv("USER", "")
	t.Setenv("LOGNAME", "carol")
	if got := Requester(); got != "carol" {
		t.Errorf("LOGNAME: %q", got)
	}
	t.Setenv("LOGNAME", "")
	want := fmt.Sprintf("uid %d", os.Getuid())
	if u, err := user.Current(); err == nil && u.Username != "" {
		want = u.Username
	}
	if got := Requester(); got != want {
		t.Errorf("no environment: %q, want %q", got, want)
	}
}
