package sshrun

import (
	"errors"
	"fmt"
)

// ExitError is a command that ran and failed.
type ExitError struct {
	Status int
	Stderr string
}

func (e *ExitError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("exit status %d", e.Status)
	}
	return fmt.Sprintf("exit status %d: %s", e.Status, e.Stderr)
}

// HostKeyError means the host's key is unknown or differs from known_hosts. Retrying cannot help.
type HostKeyError struct {
	Host, File string
	Changed    bool
}

func (e *HostKeyError) Error() string {
	if e.Changed {
		return fmt.Sprintf("host key of %s does not match %s: the host was reinstalled or someone is intercepting; check it and update %s (ssh-keygen -R %s)",
			e.Host, e.File, e.File, e.Host)
	}
	return fmt.Sprintf("host key of %s is not in %s: add it after checking its fingerprint (ssh-keyscan %s >> %s)", e.Host, e.File, e.Host, e.File)
}

// AuthError means the host refused our credentials. Retrying cannot help.
type AuthError struct {
	Target string
	Err    error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("%s refused our SSH credentials: %v; check the user and key (ansible_user, ansible_ssh_private_key_file)", e.Target, e.Err)
}
func (e *AuthError) Unwrap() error { return e.Err }

// IsPermanent reports errors that a retry cannot fix.
func IsPermanent(err error) bool {
	var hk *HostKeyError
	var au *AuthError
	var cf *ConfigError
	return errors.As(err, &hk) || errors.As(err, &au) || errors.As(err, &cf)
}

// ConfigError is a local configuration problem (missing key file, unreadable known_hosts).
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
