package dcs

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/pigwf/pigwf/pki"
)

// ClientOptions say how to reach etcd. The endpoints' scheme decides: https:// is TLS verified
// against TLS.CA, presenting TLS.Cert (etcd runs with client-certificate authentication);
// http:// is refused unless Plaintext says this is a lab. The one place etcd clients are
// configured: the agents, the worker's activities, the CLI and the test harnesses.
type ClientOptions struct {
	Endpoints   []string
	TLS         pki.Files
	Plaintext   bool // lab-only: accept http:// endpoints
	DialTimeout time.Duration
}

// ErrPlaintextEtcd is returned for an http:// endpoint without Plaintext.
var ErrPlaintextEtcd = errors.New("plain-text etcd endpoint refused")

// ClientConfig is the clientv3 configuration for o (Logger silenced: callers log what matters).
func ClientConfig(o ClientOptions) (clientv3.Config, error) {
	if len(o.Endpoints) == 0 {
		return clientv3.Config{}, errors.New("no etcd endpoints")
	}
	secure := 0
	for _, ep := range o.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" {
			return clientv3.Config{}, fmt.Errorf("etcd endpoint %q is not a URL like https://10.213.0.11:2379", ep)
		}
		switch u.Scheme {
		case "https":
			secure++
		case "http":
			if !o.Plaintext {
				return clientv3.Config{}, fmt.Errorf("%w: %s (use https:// with the deployment CA; plain text is for a lab that says so: pigwf_insecure_plaintext)", ErrPlaintextEtcd, ep)
			}
		default:
			return clientv3.Config{}, fmt.Errorf("etcd endpoint %q: scheme must be https (or http in a plain-text lab)", ep)
		}
	}
	if secure != 0 && secure != len(o.Endpoints) {
		return clientv3.Config{}, fmt.Errorf("etcd endpoints %v mix https and http: use one scheme", o.Endpoints)
	}
	dial := o.DialTimeout
	if dial == 0 {
		dial = 2 * time.Second
	}
	cfg := clientv3.Config{Endpoints: o.Endpoints, DialTimeout: dial, Logger: zap.NewNop()}
	if secure > 0 {
		tc, err := o.TLS.Client("")
		if err != nil {
			return clientv3.Config{}, fmt.Errorf("etcd TLS: %w", err)
		}
		cfg.TLS = tc
	}
	return cfg, nil
}

// Connect is ClientConfig then clientv3.New.
func Connect(o ClientOptions) (*clientv3.Client, error) {
	cfg, err := ClientConfig(o)
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd client for %v: %w", o.Endpoints, err)
	}
	return cli, nil
}
