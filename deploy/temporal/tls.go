package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"flag"
	"fmt"
	"os"
	"strings"

	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	"go.temporal.io/server/common/config"
)

// tlsOptions serve the gRPC frontend with mutual TLS. All five files or none: a frontend that
// requires client certificates also refuses this process's own clients (the system workers, the
// readiness probe, the Web UI) unless they present one, so they get the internal pair. Only the
// frontend is TLS: history, matching and worker listen on loopback and only this process dials
// them.
type tlsOptions struct {
	CertFile, KeyFile                 string // the frontend's server certificate and key
	CAFile                            string // client certificates must chain to it; internal clients verify the frontend with it
	InternalCertFile, InternalKeyFile string // the client certificate of this process's own clients
}

func addTLSFlags(fs *flag.FlagSet, t *tlsOptions) {
	fs.StringVar(&t.CertFile, "tls-cert", "", "the gRPC frontend's server certificate `file` (PEM); with the other --tls-* flags, the frontend serves mutual TLS")
	fs.StringVar(&t.KeyFile, "tls-key", "", "the server certificate's private key `file` (PEM)")
	fs.StringVar(&t.CAFile, "tls-ca", "", "CA certificate `file` (PEM): clients must present a certificate it signed")
	fs.StringVar(&t.InternalCertFile, "tls-internal-cert", "", "client certificate `file` (PEM, signed by --tls-ca) that this process's system workers, readiness probe and Web UI present to the frontend")
	fs.StringVar(&t.InternalKeyFile, "tls-internal-key", "", "that client certificate's private key `file` (PEM)")
}

// enabled says whether the frontend serves TLS.
func (t tlsOptions) enabled() bool { return t.CertFile != "" }

// check expands ~ in every path, then refuses a partial set and any file that cannot be used,
// naming the flag.
func (t *tlsOptions) check() error {
	files := []struct {
		flag string
		path *string
	}{
		{"--tls-cert", &t.CertFile}, {"--tls-key", &t.KeyFile}, {"--tls-ca", &t.CAFile},
		{"--tls-internal-cert", &t.InternalCertFile}, {"--tls-internal-key", &t.InternalKeyFile},
	}
	var given, missing []string
	for _, f := range files {
		if *f.path == "" {
			missing = append(missing, f.flag)
			continue
		}
		p, err := expandHome(*f.path)
		if err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
		*f.path = p
		given = append(given, f.flag)
	}
	if len(given) == 0 {
		return nil
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s given without %s: mutual TLS needs all of --tls-cert, --tls-key, --tls-ca, --tls-internal-cert and --tls-internal-key",
			strings.Join(given, ", "), strings.Join(missing, ", "))
	}
	pool, err := t.caPool()
	if err != nil {
		return err
	}
	for _, p := range []struct{ certFlag, cert, keyFlag, key string }{
		{"--tls-cert", t.CertFile, "--tls-key", t.KeyFile},
		{"--tls-internal-cert", t.InternalCertFile, "--tls-internal-key", t.InternalKeyFile},
	} {
		pair, err := tls.LoadX509KeyPair(p.cert, p.key)
		if err != nil {
			return fmt.Errorf("%s %s with %s %s: %w", p.certFlag, p.cert, p.keyFlag, p.key, err)
		}
		// Checked here: a certificate from another CA would otherwise show only as the
		// readiness probe timing out after a minute.
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err == nil {
			_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		}
		if err != nil {
			return fmt.Errorf("%s %s is not signed by --tls-ca %s: %w", p.certFlag, p.cert, t.CAFile, err)
		}
	}
	return nil
}

func (t tlsOptions) caPool() (*x509.CertPool, error) {
	data, err := os.ReadFile(t.CAFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("--tls-ca %s holds no PEM certificate", t.CAFile)
	}
	return pool, nil
}

// serverConfig is the server's TLS section: the frontend requires client certificates from the
// CA, and the system workers present the internal certificate and verify the frontend's, by the
// name clients dial (serverName).
func (t tlsOptions) serverConfig(serverName string) config.RootTLS {
	if !t.enabled() {
		return config.RootTLS{}
	}
	client := config.ClientTLS{ServerName: serverName, RootCAFiles: []string{t.CAFile}}
	return config.RootTLS{
		Frontend: config.GroupTLS{
			Server: config.ServerTLS{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFiles: []string{t.CAFile}, RequireClientAuth: true},
			Client: client,
		},
		SystemWorker: config.WorkerTLS{CertFile: t.InternalCertFile, KeyFile: t.InternalKeyFile, Client: client},
	}
}

// uiConfig is the Web UI's connection to the frontend: the internal certificate, and the
// frontend's certificate verified against the CA and the name. The files are passed as data: the
// UI server's file loader logs a line on every handshake.
func (t tlsOptions) uiConfig(serverName string) (uiconfig.TLS, error) {
	if !t.enabled() {
		return uiconfig.TLS{}, nil
	}
	read := func(flag, path string) (string, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", flag, err)
		}
		return base64.StdEncoding.EncodeToString(data), nil
	}
	ca, err := read("--tls-ca", t.CAFile)
	if err != nil {
		return uiconfig.TLS{}, err
	}
	cert, err := read("--tls-internal-cert", t.InternalCertFile)
	if err != nil {
		return uiconfig.TLS{}, err
	}
	key, err := read("--tls-internal-key", t.InternalKeyFile)
	if err != nil {
		return uiconfig.TLS{}, err
	}
	return uiconfig.TLS{CaData: ca, CertData: cert, KeyData: key, ServerName: serverName, EnableHostVerification: true}, nil
}

// clientConfig is the readiness probe's TLS: the same identity and checks as the system workers.
func (t tlsOptions) clientConfig(serverName string) (*tls.Config, error) {
	pool, err := t.caPool()
	if err != nil {
		return nil, err
	}
	pair, err := tls.LoadX509KeyPair(t.InternalCertFile, t.InternalKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-internal-cert: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: serverName, Certificates: []tls.Certificate{pair}}, nil
}
