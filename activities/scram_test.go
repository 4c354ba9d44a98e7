package activities

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// pgVerifier was produced by PostgreSQL 15 for the password "DBUser.Meta".
const pgVerifier = "SCRAM-SHA-256$4096:Em7nRJTOV+P/UVmPs8adCA==$JnSg3tzb75INp8fNV/Zc1IPy/WEdBF+hUeAyCovyRTE=:BLICkagSym1gyfpidfyAtA1qbftJn4n2OBW4dJG/yf0="

func TestScramMatchesPostgresVerifier(t *testing.T) {
	if !scramMatches(pgVerifier, "DBUser.Meta") {
		t.Error("the right password does not match")
	}
	for _, wrong := range []string{"DBUser.meta", "", "DBUser.Meta "} {
		if scramMatches(pgVerifier, wrong) {
			t.Errorf("%q matches", wrong)
		}
	}
	for _, bad := range []string{"", "md5abc", "SCRAM-SHA-256$x:y$z:w", "SCRAM-SHA-256$4096:!!$a:b"} {
		if scramMatches(bad, "DBUser.Meta") {
			t.Errorf("malformed verifier %q matches", bad)
		}
	}
}

// With PostgreSQL's salt and iteration count, the worker builds PostgreSQL's verifier byte for byte.
func TestScramVerifierIsPostgres(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("Em7nRJTOV+P/UVmPs8adCA==")
	got, err := scramVerifierWith("DBUser.Meta", salt, 4096)
	if err != nil || got != pgVerifier {
		t.Fatalf("got %q, %v\nwant %q", got, err, pgVerifier)
	}
}

// A fresh verifier: PostgreSQL's format and defaults, a new salt each time, and it matches its
// password only.
func TestScramVerifierFresh(t *testing.T) {
	const pw = `S3cr3t:with\back$lash 'quoted'`
	a, err := scramVerifier(pw)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := scramVerifier(pw)
	if a == b {
		t.Error("two verifiers of one password are equal: the salt is not random")
	}
	if !scramMatches(a, pw) || scramMatches(a, pw+"x") {
		t.Errorf("%s does not match its password only", a)
	}
	parts := strings.FieldsFunc(strings.TrimPrefix(a, "SCRAM-SHA-256$"), func(r rune) bool { return r == '$' || r == ':' })
	if !strings.HasPrefix(a, "SCRAM-SHA-256$4096:") || len(parts) != 4 {
		t.Fatalf("%s is not SCRAM-SHA-256$4096:<salt>$<stored>:<server>", a)
	}
	if salt, err := base64.StdEncoding.DecodeString(parts[1]); err != nil || len(salt) != 16 {
		t.Errorf("salt %q: %d bytes, %v; want 16", parts[1], len(salt), err)
	}
	if strings.Contains(a, "S3cr3t") {
		t.Error("the verifier holds the password")
	}
}

// A non-ASCII password is refused: PostgreSQL would hash its SASLprep form, which the worker
// does not reproduce, and a verifier of another string would lock the role out.
func TestScramVerifierRefusesNonASCII(t *testing.T) {
	for _, pw := range []string{"pässword", "ｆｕｌｌ", "a\u00a0b"} {
		if v, err := scramVerifier(pw); !errors.Is(err, ErrPasswordNotASCII) {
			t.Errorf("%q: got %q, %v; want ErrPasswordNotASCII", pw, v, err)
		}
	}
}
