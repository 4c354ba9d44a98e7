package activities

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/activities/sshrun"
)

func passwordIn() SetPasswordInput {
	return SetPasswordInput{Node: sqlNode, Port: 5432, Cluster: "pg-test", Role: "dbuser_dba", Secret: "admin", Step: "set-password (rotate-password.yml:12)"}
}

// The role's password becomes the secret as a verifier computed on the worker; the password is
// in no command, and a second run, finding the verifier matches, changes nothing.
func TestSetPassword(t *testing.T) {
	store := SecretStore{Dir: t.TempDir()}
	var stored string // the role's rolpassword on the fake server
	remote := &fakeRemote{reply: func(_ int, cmd sshrun.Command) sshrun.Result {
		sql := string(cmd.Stdin)
		if m := regexp.MustCompile(`ALTER ROLE "dbuser_dba" PASSWORD '([^']+)';`).FindStringSubmatch(sql); m != nil {
			stored = m[1]
			return sshrun.Result{}
		}
		if strings.Contains(sql, "FROM pg_authid WHERE rolname = 'dbuser_dba'") {
			return sshrun.Result{Stdout: "r:" + stored + "\n"}
		}
		return sshrun.Result{ExitStatus: psqlScriptError, Stderr: "ERROR:  unexpected statement"}
	}}
	a := &Activities{Remote: remote, Secrets: store}
	res, err := a.SetPassword(context.Background(), passwordIn())
	if err != nil || !res.Changed {
		t.Fatalf("first run: %+v, %v", res, err)
	}
	pw, err := store.Get("pg-test", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if !scramMatches(stored, pw) {
		t.Errorf("the stored verifier %q does not match the secret", stored)
	}
	res, err = a.SetPassword(context.Background(), passwordIn())
	if err != nil || res.Changed {
		t.Fatalf("second run: %+v, %v; want unchanged", res, err)
	}
	cmds := remote.commands()
	if len(cmds) != 3 {
		t.Errorf("%d psql calls, want 3 (read, set; read)", len(cmds))
	}
	for _, c := range cmds {
		if strings.Contains(c.Script+string(c.Stdin), pw) {
			t.Errorf("the password reached a command: %q", c.Script+string(c.Stdin))
		}
	}
}

// A role that does not exist is refused for good, naming what to do.
func TestSetPasswordMissingRole(t *testing.T) {
	remote := &fakeRemote{reply: func(int, sshrun.Command) sshrun.Result { return sshrun.Result{} }} // no row
	_, err := (&Activities{Remote: remote, Secrets: SecretStore{Dir: t.TempDir()}}).SetPassword(context.Background(), passwordIn())
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() || !strings.Contains(err.Error(), "role dbuser_dba does not exist") {
		t.Fatalf("%v; want a final error naming the role", err)
	}
	if len(remote.commands()) != 1 {
		t.Errorf("%d psql calls, want only the read", len(remote.commands()))
	}
}

// Names reach SQL and the store's files only by their rules.
func TestSetPasswordInputValidate(t *testing.T) {
	if err := passwordIn().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := passwordIn()
	bad.Role, bad.Secret = `x"; DROP ROLE y; --`, "../../etc/shadow"
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), "role") || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("%v; want the role and the secret refused", err)
	}
	if _, err := (SecretStore{Dir: t.TempDir()}).Get("pg-test", "../x"); err == nil {
		t.Error("the store took a secret name outside its directory")
	}
}
