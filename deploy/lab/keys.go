package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/ssh"
)

// ensureKey returns the public half of the ed25519 key at path (OpenSSH
// format, 0600), generating it and path.pub on first use.
func ensureKey(path, comment string) (ssh.PublicKey, error) {
	if data, err := os.ReadFile(path); err == nil {
		signer, err := ssh.ParsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("while parsing key %s: %w", path, err)
		}
		return signer.PublicKey(), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("while reading key %s: %w", path, err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("while generating key %s: %w", path, err)
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("while encoding key %s: %w", path, err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("while encoding public key of %s: %w", path, err)
	}
	if err := writeFileAtomic(path+".pub", []byte(authorizedKeyLine(sshPub, comment)), 0o644); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	return sshPub, nil
}

// authorizedKeyLine is "ssh-ed25519 AAAA... comment\n".
func authorizedKeyLine(key ssh.PublicKey, comment string) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + " " + comment + "\n"
}

// knownHostsLine is "<addr> ssh-ed25519 AAAA...\n": plain (not hashed) so
// people can read it; port 22 needs no [addr]:port form.
func knownHostsLine(addr string, key ssh.PublicKey) string {
	return addr + " " + string(ssh.MarshalAuthorizedKey(key))
}
