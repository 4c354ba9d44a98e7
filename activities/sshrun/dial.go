package sshrun

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

func (r *Runner) dial(t Target) (*ssh.Client, error) {
	khFile := t.KnownHosts
	if khFile == "" {
		home, _ := os.UserHomeDir()
		khFile = filepath.Join(home, ".ssh", "known_hosts")
	}
	hostKeyCB, algos, err := hostKeyCheck(khFile, t)
	if err != nil {
		return nil, err
	}
	signers, err := signersFor(t)
	if err != nil {
		return nil, err
	}
	// offered records that the server verified by its host key asked for our keys: a handshake
	// that fails after that, other than by the connection breaking, is the server refusing them.
	offered := false
	cfg := &ssh.ClientConfig{
		User: t.User,
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			offered = true
			return signers, nil
		})},
		HostKeyCallback:   hostKeyCB,
		HostKeyAlgorithms: algos,
		Timeout:           r.opts.DialTimeout,
	}
	conn, err := net.DialTimeout("tcp", t.Addr(), r.opts.DialTimeout)
	if err != nil {
		return nil, fmt.Errorf("while connecting to %s: %w", t.Addr(), err)
	}
	// The handshake has its own deadline so a host that accepts TCP but never answers cannot hang us.
	_ = conn.SetDeadline(time.Now().Add(r.opts.DialTimeout))
	c, chans, reqs, err := ssh.NewClientConn(conn, t.Addr(), cfg)
	if err != nil {
		conn.Close()
		var hk *HostKeyError
		if errors.As(err, &hk) {
			return nil, hk
		}
		if offered && !brokenConnection(err) {
			return nil, &AuthError{Target: t.User + "@" + t.Addr(), Err: err}
		}
		return nil, fmt.Errorf("while opening SSH to %s: %w", t.Addr(), err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// probeKey is a fixed throw-away key used only to ask a known_hosts callback which keys it knows.
var probeKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

// hostKeyCheck builds a strict known_hosts callback and the key algorithms known for the host,
// so the server is asked for a key type we can actually verify.
func hostKeyCheck(file string, t Target) (ssh.HostKeyCallback, []string, error) {
	cb, err := knownhosts.New(file)
	if err != nil {
		return nil, nil, &ConfigError{Msg: fmt.Sprintf("cannot read known_hosts %s: %v; create it (ssh-keyscan the hosts after checking them) or set pigwf_known_hosts", file, err)}
	}
	// Asking the callback about a throw-away key lists the keys known for this host.
	probe, _ := ssh.NewSignerFromKey(probeKey)
	var algos []string
	addr := &net.TCPAddr{IP: net.ParseIP(t.Host), Port: t.port()}
	var kerr *knownhosts.KeyError
	if err := cb(knownhosts.Normalize(t.Addr()), addr, probe.PublicKey()); errors.As(err, &kerr) {
		seen := map[string]bool{}
		for _, k := range kerr.Want {
			for _, a := range algosFor(k.Key.Type()) {
				if !seen[a] {
					seen[a] = true
					algos = append(algos, a)
				}
			}
		}
	}
	strict := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(hostname, remote, key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			return &HostKeyError{Host: t.Host, File: file, Changed: len(ke.Want) > 0}
		}
		return err
	}
	return strict, algos, nil
}

func algosFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// brokenConnection: the handshake failed because the connection broke or timed out (worth a
// retry), as opposed to the server answering with a refusal.
func brokenConnection(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.As(err, &ne)
}

// signersFor are the keys offered to t: its key file, else ssh-agent's keys and the default files.
func signersFor(t Target) ([]ssh.Signer, error) {
	var signers []ssh.Signer
	keyFiles := []string{t.KeyFile}
	if t.KeyFile == "" {
		if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
			if c, err := net.Dial("unix", sock); err == nil {
				if s, err := agent.NewClient(c).Signers(); err == nil {
					signers = append(signers, s...)
				}
			}
		}
		home, _ := os.UserHomeDir()
		keyFiles = []string{filepath.Join(home, ".ssh", "id_ed25519"), filepath.Join(home, ".ssh", "id_rsa")}
	}
	for _, f := range keyFiles {
		pem, err := os.ReadFile(f)
		if err != nil {
			if t.KeyFile != "" {
				return nil, &ConfigError{Msg: fmt.Sprintf("cannot read SSH key %s: %v; fix ansible_ssh_private_key_file", f, err)}
			}
			continue
		}
		s, err := ssh.ParsePrivateKey(pem)
		if err != nil {
			var pp *ssh.PassphraseMissingError
			if errors.As(err, &pp) {
				return nil, &ConfigError{Msg: fmt.Sprintf("SSH key %s has a passphrase: load it into ssh-agent and leave ansible_ssh_private_key_file unset", f)}
			}
			return nil, &ConfigError{Msg: fmt.Sprintf("cannot parse SSH key %s: %v", f, err)}
		}
		signers = append(signers, s)
	}
	if len(signers) == 0 {
		return nil, &ConfigError{Msg: "no SSH credentials: set ansible_ssh_private_key_file or start ssh-agent"}
	}
	return signers, nil
}
