package starter

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/pigwf/pigwf/pki"
	tlog "go.temporal.io/sdk/log"
)

// Setting is one setting of the connection to Temporal: its flag and the environment variables
// it is read from (the first one set wins). The names are the `temporal` CLI's (v1), so one
// environment serves pigwf and `temporal` alike; the SDKs' environment-configuration names are
// accepted after them. Every error about a setting names its flag and variables through this.
type Setting struct {
	Flag string
	Env  []string
}

func (s Setting) String() string { return "--" + s.Flag + " (" + strings.Join(s.Env, ", ") + ")" }

// The connection settings every pigwf process that talks to Temporal takes (the CLI's commands,
// the worker, the ChatOps bridge).
var (
	SettingAddress    = Setting{"address", []string{"TEMPORAL_ADDRESS"}}
	SettingNamespace  = Setting{"namespace", []string{"TEMPORAL_NAMESPACE"}}
	SettingTLS        = Setting{"tls", []string{"TEMPORAL_TLS"}}
	SettingTLSCert    = Setting{"tls-cert-path", []string{"TEMPORAL_TLS_CERT", "TEMPORAL_TLS_CLIENT_CERT_PATH"}}
	SettingTLSKey     = Setting{"tls-key-path", []string{"TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CLIENT_KEY_PATH"}}
	SettingTLSCA      = Setting{"tls-ca-path", []string{"TEMPORAL_TLS_CA", "TEMPORAL_TLS_SERVER_CA_CERT_PATH"}}
	SettingServerName = Setting{"tls-server-name", []string{"TEMPORAL_TLS_SERVER_NAME"}}
	SettingNoHostName = Setting{"tls-disable-host-verification", []string{"TEMPORAL_TLS_DISABLE_HOST_VERIFICATION"}}
	// The API key is read from the environment or a file: a value on the command line is seen
	// by every user of the machine (ps, /proc) and kept in shell histories.
	SettingAPIKey     = Setting{"api-key", []string{"TEMPORAL_API_KEY"}}
	SettingAPIKeyFile = Setting{"api-key-file", []string{"PIGWF_TEMPORAL_API_KEY_FILE"}}
)

// TLSMode is what --tls says: not given (TLS then follows from the other settings), on or off.
type TLSMode int

const (
	TLSAuto TLSMode = iota // on when any TLS setting or an API key is given
	TLSOn
	TLSOff // plaintext, even where pigwf's default client certificates exist
)

// Secret is a value that must never be printed: it formats as "[redacted]".
type Secret string

func (Secret) String() string                 { return "[redacted]" }
func (Secret) LogValue() slog.Value           { return slog.StringValue("[redacted]") }
func (s Secret) GoString() string             { return s.String() }
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// TLSSettings are a connection's TLS settings, as files (PEM).
type TLSSettings struct {
	Mode       TLSMode
	CertFile   string // client certificate: mTLS
	KeyFile    string // its private key
	CAFile     string // the CA that signed the server's certificate ("" = the system's roots)
	ServerName string // the name the server's certificate must hold ("" = the address's host)
	// DisableHostVerification accepts a server certificate that does not name the host, as long
	// as it chains to the CA: unlike the `temporal` CLI, the chain is still verified.
	DisableHostVerification bool
}

// given says whether any TLS setting other than Mode is set.
func (t TLSSettings) given() bool {
	return t.CertFile != "" || t.KeyFile != "" || t.CAFile != "" || t.ServerName != "" || t.DisableHostVerification
}

// Connection is how a pigwf process reaches Temporal: built once from flags and environment
// (cmd/pigwf) and used by every command, the worker and the ChatOps bridge.
type Connection struct {
	Address   string // host:port of the frontend
	Namespace string
	TLS       TLSSettings
	APIKey    Secret // sent as a bearer token; implies TLS
	// Defaults names where TLS settings that nobody gave came from (pigwf's own client files),
	// for logs and errors; "" when they came from flags or the environment.
	Defaults string
}

// SettingError is a connection setting that is missing, contradicts another or names a file
// that cannot be used; its message names the flag and the environment variables.
type SettingError struct {
	Setting Setting
	Err     error
}

func (e *SettingError) Error() string { return e.Setting.String() + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// Errors a SettingError wraps, for callers and tests that tell them apart.
var (
	ErrMissing       = errors.New("missing")
	ErrContradiction = errors.New("contradicts another setting")
	ErrUnusable      = errors.New("unusable")
)

func settingErr(s Setting, kind error, format string, args ...any) error {
	return &SettingError{Setting: s, Err: fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))}
}

// TLSEnabled says whether the connection uses TLS.
func (c Connection) TLSEnabled() bool {
	switch c.TLS.Mode {
	case TLSOn:
		return true
	case TLSOff:
		return false
	}
	return c.TLS.given() || c.APIKey != ""
}

// Check reports the first setting that is missing or contradicts another, without reading any
// file.
func (c Connection) Check() error {
	if c.Address == "" {
		return settingErr(SettingAddress, ErrMissing, "the Temporal frontend's host:port is empty")
	}
	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		return settingErr(SettingAddress, ErrUnusable, "%q is not host:port (%v)", c.Address, err)
	}
	if c.Namespace == "" {
		return settingErr(SettingNamespace, ErrMissing, "the namespace is empty")
	}
	t := c.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		return settingErr(SettingTLSKey, ErrMissing, "the client certificate %s needs its private key", t.CertFile)
	case t.KeyFile != "" && t.CertFile == "":
		return settingErr(SettingTLSCert, ErrMissing, "the private key %s needs its client certificate", t.KeyFile)
	case t.Mode == TLSOff && t.given():
		return settingErr(SettingTLS, ErrContradiction, "TLS is off but TLS settings are given (%s)", t.describe())
	case t.Mode == TLSOff && c.APIKey != "":
		return settingErr(SettingTLS, ErrContradiction, "TLS is off but an API key is given: an API key is never sent in plaintext")
	}
	return nil
}

// describe lists the TLS settings that are set, for messages.
func (t TLSSettings) describe() string {
	var parts []string
	add := func(s Setting, v string) {
		if v != "" {
			parts = append(parts, "--"+s.Flag+" "+v)
		}
	}
	add(SettingTLSCert, t.CertFile)
	add(SettingTLSKey, t.KeyFile)
	add(SettingTLSCA, t.CAFile)
	add(SettingServerName, t.ServerName)
	if t.DisableHostVerification {
		parts = append(parts, "--"+SettingNoHostName.Flag)
	}
	return strings.Join(parts, " ")
}

// ClientTLS builds the tls.Config the connection dials with; nil when TLS is off. It reads the
// certificate, key and CA files first, so that an error names the setting whose file failed.
// With a CA, the configuration is pki's (Files.Client: the one way pigwf's clients trust its
// deployment CA, and a renewed client certificate is picked up without a restart); without one,
// the system's roots verify the server (Temporal Cloud, a cluster with a public certificate).
func (c Connection) ClientTLS() (*tls.Config, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	if !c.TLSEnabled() {
		return nil, nil
	}
	t := c.TLS
	serverName := t.ServerName
	if serverName == "" {
		serverName, _, _ = net.SplitHostPort(c.Address)
	}
	if t.CAFile != "" {
		data, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, settingErr(SettingTLSCA, ErrUnusable, "cannot read the CA certificate: %v", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(data) {
			return nil, settingErr(SettingTLSCA, ErrUnusable, "%s holds no PEM certificate", t.CAFile)
		}
	}
	var pair tls.Certificate
	if t.CertFile != "" {
		if _, err := os.Stat(t.CertFile); err != nil {
			return nil, settingErr(SettingTLSCert, ErrUnusable, "cannot read the client certificate: %v", err)
		}
		if _, err := os.Stat(t.KeyFile); err != nil {
			return nil, settingErr(SettingTLSKey, ErrUnusable, "cannot read the private key: %v", err)
		}
		var err error
		if pair, err = tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			return nil, settingErr(SettingTLSCert, ErrUnusable, "%s with the key %s: %v", t.CertFile, t.KeyFile, err)
		}
	}
	var cfg *tls.Config
	if t.CAFile != "" {
		var err error
		if cfg, err = (pki.Files{CA: t.CAFile, Cert: t.CertFile, Key: t.KeyFile}).Client(serverName); err != nil {
			return nil, settingErr(SettingTLSCA, ErrUnusable, "%v", err)
		}
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
		if t.CertFile != "" {
			cfg.Certificates = []tls.Certificate{pair}
		}
	}
	if t.DisableHostVerification {
		// The standard check would refuse the name; verify the chain ourselves instead, so a
		// certificate from any other CA is still refused.
		roots := cfg.RootCAs
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return cfg, nil
}

// ClientOptions are the SDK's options for this connection; log receives the SDK's own logging.
func (c Connection) ClientOptions(log *slog.Logger) (client.Options, error) {
	cfg, err := c.ClientTLS()
	if err != nil {
		return client.Options{}, err
	}
	opts := client.Options{HostPort: c.Address, Namespace: c.Namespace}
	if log != nil {
		opts.Logger = newSDKLogger(log)
	}
	opts.ConnectionOptions.TLS = cfg
	opts.ConnectionOptions.TLSDisabled = cfg == nil
	if c.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(string(c.APIKey))
	}
	return opts, nil
}

// LogValue is the connection for logs: never the API key, and the files rather than their content.
func (c Connection) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("address", c.Address), slog.String("namespace", c.Namespace), slog.Bool("tls", c.TLSEnabled())}
	if c.TLS.CertFile != "" {
		attrs = append(attrs, slog.String("tls_cert", c.TLS.CertFile))
	}
	if c.TLS.CAFile != "" {
		attrs = append(attrs, slog.String("tls_ca", c.TLS.CAFile))
	}
	if c.APIKey != "" {
		attrs = append(attrs, slog.Bool("api_key", true))
	}
	if c.Defaults != "" {
		attrs = append(attrs, slog.String("tls_defaults", c.Defaults))
	}
	return slog.GroupValue(attrs...)
}

// ReadAPIKeyFile reads an API key from a file (the whole file, surrounding white space
// trimmed); an error names --api-key-file.
func ReadAPIKeyFile(path string) (Secret, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", settingErr(SettingAPIKeyFile, ErrUnusable, "cannot read the API key: %v", err)
	}
	key := strings.TrimSpace(string(data))
	if key == "" {
		return "", settingErr(SettingAPIKeyFile, ErrUnusable, "%s is empty", path)
	}
	if strings.ContainsAny(key, "\r\n") {
		return "", settingErr(SettingAPIKeyFile, ErrUnusable, "%s holds more than one line; want the API key alone", path)
	}
	return Secret(key), nil
}

func newSDKLogger(log *slog.Logger) tlog.Logger { return tlog.NewStructuredLogger(log) }

// describe is the connection's security for an error message: which TLS files, or plaintext.
func (c Connection) describe() string {
	if !c.TLSEnabled() {
		return "plaintext"
	}
	s := "TLS"
	if d := c.TLS.describe(); d != "" {
		s += " " + d
	}
	if c.APIKey != "" {
		s += " with an API key"
	}
	if c.Defaults != "" {
		s += " (pigwf's client files in " + c.Defaults + ")"
	}
	return s
}
