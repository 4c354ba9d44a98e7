package activities

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PostgreSQL's defaults for the verifiers it builds itself (scram_iterations, and
// SCRAM_DEFAULT_SALT_LEN in src/include/common/scram-common.h).
const (
	scramIterations = 4096
	scramSaltLen    = 16
)

// ErrPasswordNotASCII: a password pigwf cannot turn into the verifier PostgreSQL would build.
var ErrPasswordNotASCII = errors.New("holds non-ASCII characters, whose SASLprep normalisation pigwf does not reproduce")

// scramVerifier is the SCRAM-SHA-256 verifier PostgreSQL would store for password, with a fresh
// random salt: "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>" (RFC 5802, RFC 7677).
// Setting a role's password to it (ALTER ROLE ... PASSWORD '<verifier>', stored as is) keeps the
// password itself out of every statement the server might log or echo in an error.
//
// PostgreSQL hashes SASLprep(password) (RFC 4013; pg_saslprep takes an ASCII password as is),
// which may differ from the password when it holds other characters; rather than store a
// verifier clients could not log in with, such a password is refused (ErrPasswordNotASCII).
func scramVerifier(password string) (string, error) {
	for i := 0; i < len(password); i++ {
		if password[i] >= 0x80 {
			return "", ErrPasswordNotASCII
		}
	}
	salt := make([]byte, scramSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("while drawing a SCRAM salt: %w", err)
	}
	return scramVerifierWith(password, salt, scramIterations)
}

// scramVerifierWith builds the verifier for a given salt and iteration count.
func scramVerifierWith(password string, salt []byte, iter int) (string, error) {
	stored, server, err := scramKeys(password, salt, iter)
	if err != nil {
		return "", err
	}
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iter, b64(salt), b64(stored), b64(server)), nil
}

// scramKeys derives StoredKey and ServerKey from password (RFC 5802 section 3): the one
// derivation behind building a verifier and checking a password against one.
func scramKeys(password string, salt []byte, iter int) (stored, server []byte, err error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		return nil, nil, err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	storedKey := sha256.Sum256(mac(salted, "Client Key"))
	return storedKey[:], mac(salted, "Server Key"), nil
}

// scramMatches reports whether password matches a PostgreSQL SCRAM-SHA-256 verifier
// ("SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>"). It lets the roles step say
// "unchanged" honestly instead of resetting every password on every run.
func scramMatches(verifier, password string) bool {
	rest, ok := strings.CutPrefix(verifier, "SCRAM-SHA-256$")
	if !ok {
		return false
	}
	iterSalt, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return false
	}
	iterStr, saltB64, ok := strings.Cut(iterSalt, ":")
	storedB64, serverB64, ok2 := strings.Cut(keys, ":")
	if !ok || !ok2 {
		return false
	}
	iter, err := strconv.Atoi(iterStr)
	if err != nil || iter < 1 {
		return false
	}
	salt, err1 := base64.StdEncoding.DecodeString(saltB64)
	stored, err2 := base64.StdEncoding.DecodeString(storedB64)
	server, err3 := base64.StdEncoding.DecodeString(serverB64)
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	wantStored, wantServer, err := scramKeys(password, salt, iter)
	if err != nil {
		return false
	}
	return hmac.Equal(wantStored, stored) && hmac.Equal(wantServer, server)
}
