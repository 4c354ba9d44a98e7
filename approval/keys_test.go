package approval

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// keys new is idempotent: a second call keeps the key and prints the same public key line.
func TestCreateKeyKeepsAnExistingKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	pub1, created, err := CreateKey(dir, "alice")
	if err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	pub2, created, err := CreateKey(dir, "alice")
	if err != nil || created || pub2 != pub1 {
		t.Fatalf("second: %v %v %q vs %q", created, err, pub2, pub1)
	}
	if !strings.HasPrefix(pub1, "ssh-ed25519 AAAA") || !strings.HasSuffix(pub1, " alice") {
		t.Errorf("public key line %q", pub1)
	}
	for p, mode := range map[string]os.FileMode{filepath.Join(dir, "alice"): 0o600, filepath.Join(dir, "alice.pub"): 0o644, dir: 0o700} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v %v, want %04o", p, fi.Mode(), err, mode)
		}
	}
	if pub, err := os.ReadFile(filepath.Join(dir, "alice.pub")); err != nil || strings.TrimSpace(string(pub)) != pub1 {
		t.Errorf("alice.pub = %q", pub)
	}
	if _, err := ParsePublicKey(pub1); err != nil {
		t.Errorf("the printed line does not parse: %v", err)
	}
	if _, _, err := CreateKey(dir, "../x"); !errors.Is(err, ErrBadName) {
		t.Errorf("a path as a name: %v", err)
	}
}

func TestLoadKeyRefusals(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, block *pem.Block, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(block), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	plain, _ := ssh.MarshalPrivateKey(priv, "x")
	locked, _ := ssh.MarshalPrivateKeyWithPassphrase(priv, "x", []byte("secret"))
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaBlock, _ := ssh.MarshalPrivateKey(rk, "x")
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nobody"), "no private key for alice"},
		{"readable by others", write("open", plain, 0o644), "is readable by others (mode 0644): `chmod 600"},
		{"passphrase", write("locked", locked, 0o600), "protected by a passphrase"},
		{"rsa", write("rsa", rsaBlock, 0o600), "holds a ssh-rsa key; approvals are signed with ed25519 keys only"},
		{"not a key", write("junk", &pem.Block{Type: "JUNK", Bytes: []byte("x")}, 0o600), "is not an OpenSSH private key"},
	} {
		_, err := LoadKey("alice", tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := LoadKey("alice", filepath.Join(dir, "nobody")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing key is not ErrNotExist: %v", err)
	}
	if k, err := LoadKey("alice", write("good", plain, 0o600)); err != nil || k.Name != "alice" {
		t.Errorf("a good key: %v", err)
	}
}
