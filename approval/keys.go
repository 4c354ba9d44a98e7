package approval

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Key is a named private key: a person's (pigwf approve, pigwf start) or a trusted signer's (the
// ChatOps bridge). Name is the identity the worker's approvals file gives its public key.
type Key struct {
	Name   string
	Signer ssh.Signer
}

// namePattern is an identity: a person ("alice", "alice.smith@example.com") or a signer
// ("chatops"). It is also a file name under $PIGWF_HOME/keys, so it has no '/' and does not start
// with a dot.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ErrBadName is returned for a name that is not an identity.
var ErrBadName = errors.New("not an identity name")

// CheckName refuses a name that cannot be an identity.
func CheckName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%q: %w: use letters, digits, '.', '_', '@' or '-', starting with a letter or digit, at most 64", name, ErrBadName)
	}
	return nil
}

// KeyPath is where `pigwf keys new NAME` keeps NAME's private key: $PIGWF_HOME/keys/NAME (the
// public key is beside it, NAME.pub).
func KeyPath(home, name string) string { return filepath.Join(home, "keys", name) }

// LoadKey reads an OpenSSH ed25519 private key for name. A key others can read is refused (as
// ssh refuses it), and so is a key protected by a passphrase: pigwf runs unattended (the ChatOps
// bridge) or in scripts and has no way to ask for one.
func LoadKey(name, path string) (Key, error) {
	if err := CheckName(name); err != nil {
		return Key{}, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Key{}, fmt.Errorf("no private key for %s at %s: create one with `pigwf keys new %s` (and register its public key in the worker's approvals file), or give --key FILE or PIGWF_APPROVER_KEY: %w", name, path, name, err)
		}
		return Key{}, fmt.Errorf("while reading %s's key: %w", name, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return Key{}, fmt.Errorf("%s's private key %s is readable by others (mode %04o): `chmod 600 %s`", name, path, fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("while reading %s's key: %w", name, err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	var pp *ssh.PassphraseMissingError
	if errors.As(err, &pp) {
		return Key{}, fmt.Errorf("%s's private key %s is protected by a passphrase, which pigwf cannot ask for: use a key without one, kept mode 0600 (`pigwf keys new %s`)", name, path, name)
	}
	if err != nil {
		return Key{}, fmt.Errorf("%s is not an OpenSSH private key: %w", path, err)
	}
	if t := signer.PublicKey().Type(); t != ssh.KeyAlgoED25519 {
		return Key{}, fmt.Errorf("%s holds a %s key; approvals are signed with ed25519 keys only (`pigwf keys new %s`)", path, t, name)
	}
	return Key{Name: name, Signer: signer}, nil
}

// AuthorizedKey is pub as an authorized_keys line with name as its comment: what the approvals
// file lists under keys.
func AuthorizedKey(pub ssh.PublicKey, name string) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " " + name
}

// CreateKey makes name's ed25519 key pair in dir (the private key mode 0600, NAME.pub beside it)
// and returns the public key's authorized_keys line. A key already there is kept, never
// replaced: created says whether one was made now.
func CreateKey(dir, name string) (pubLine string, created bool, err error) {
	if err := CheckName(name); err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("while creating %s: %w", dir, err)
	}
	path := filepath.Join(dir, name)
	key, err := LoadKey(name, path)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		if key, err = writeNewKey(path, name); err != nil {
			return "", false, err
		}
		created = true
	default:
		return "", false, err
	}
	pubLine = AuthorizedKey(key.Signer.PublicKey(), name)
	if err := os.WriteFile(path+".pub", []byte(pubLine+"\n"), 0o644); err != nil {
		return "", created, fmt.Errorf("while writing %s.pub: %w", path, err)
	}
	return pubLine, created, nil
}

func writeNewKey(path, name string) (Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, err
	}
	block, err := ssh.MarshalPrivateKey(priv, name)
	if err != nil {
		return Key{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Key{}, fmt.Errorf("while creating %s: %w", path, err)
	}
	if err := pem.Encode(f, block); err != nil {
		f.Close()
		return Key{}, fmt.Errorf("while writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return Key{}, fmt.Errorf("while writing %s: %w", path, err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return Key{}, err
	}
	return Key{Name: name, Signer: signer}, nil
}

// ParsePublicKey reads one OpenSSH authorized_keys line ("ssh-ed25519 AAAA... comment") as an
// approvals file lists it: ed25519 only, no options.
func ParsePublicKey(line string) (ssh.PublicKey, error) {
	pub, _, options, rest, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("not an OpenSSH public key line (want \"ssh-ed25519 AAAA... comment\", as in NAME.pub): %w", err)
	}
	if len(options) > 0 {
		return nil, fmt.Errorf("authorized_keys options (%s) mean nothing here: give the bare key line", strings.Join(options, ","))
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, errors.New("one key per entry: this one holds more than one line")
	}
	if pub.Type() != ssh.KeyAlgoED25519 {
		return nil, fmt.Errorf("a %s key: approvals are signed with ed25519 keys only (`pigwf keys new NAME` makes one)", pub.Type())
	}
	return pub, nil
}
