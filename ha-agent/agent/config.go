package agent

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode"

	haagent "github.com/pigwf/pigwf/ha-agent"
	"github.com/pigwf/pigwf/pki"
	"gopkg.in/yaml.v3"
)

// DefaultConfigPath is where PgClusterCreate writes the local config.
const DefaultConfigPath = "/etc/pigwf/ha-agent.yml"

// LocalConfig is the node-local configuration file. The key names are a
// contract with the PgClusterCreate workflow, which writes this file.
// Cluster-wide timing lives in the DCS config key, not here.
type LocalConfig struct {
	Cluster  string         `yaml:"cluster"`
	Name     string         `yaml:"name"`
	Prefix   string         `yaml:"prefix"`
	Etcd     EtcdConfig     `yaml:"etcd"`
	API      APIConfig      `yaml:"api"`
	Postgres PostgresConfig `yaml:"postgres"`
	Tags     TagsConfig     `yaml:"tags"`
	LogFile  string         `yaml:"log_file"`
	// TLS are the node's files from the deployment CA (pki.NodeFiles): the agent's etcd client
	// and its calls to other members present the certificate, its API serves it.
	TLS pki.Files `yaml:"tls"`
	// InsecurePlaintext allows http:// etcd endpoints and API URLs with no TLS files: a lab
	// that says so (the inventory's pigwf_insecure_plaintext), never the default.
	InsecurePlaintext bool `yaml:"insecure_plaintext,omitempty"`
}

// EtcdConfig lists the etcd client endpoints.
type EtcdConfig struct {
	Endpoints []string `yaml:"endpoints"`
}

// APIConfig is the REST API's listen address and advertised URL, and who may call its mutating
// endpoints besides a client certificate of the deployment CA (see apiauth.go).
type APIConfig struct {
	Listen string `yaml:"listen"`
	// URL is where other members and pigwf reach the API; https:// (the API then serves TLS with
	// the node's certificate), or http:// in a plain-text lab.
	URL string `yaml:"url"`
	// Auth is a username and password for the mutating endpoints, as Patroni's
	// restapi.authentication; nil: client certificates only.
	Auth *APIAuth `yaml:"auth,omitempty"`
	// Allowlist limits the mutating endpoints to these IP addresses or CIDR blocks and the
	// cluster's members, as Patroni's restapi.allowlist; empty: any address.
	Allowlist []string `yaml:"allowlist,omitempty"`
}

// APIAuth names the API's username and the file holding its password: the password itself
// never goes in the config file.
type APIAuth struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// PostgresConfig is the local PostgreSQL.
type PostgresConfig struct {
	BinDir          string `yaml:"bin_dir"`
	DataDir         string `yaml:"data_dir"`
	Host            string `yaml:"host"`
	Port            int    `yaml:"port"`
	SocketDir       string `yaml:"socket_dir"`
	ReplicationUser string `yaml:"replication_user"`
	LogFile         string `yaml:"log_file"`
}

// TagsConfig are the member's tags, written as Patroni's tags section: the switches and, beside
// them, custom tags (dc: east) that health checks match with ?tag_<name>=<value>. The fields
// are haagent.ClusterTags', in its order (the one converts to the other). noloadbalance and
// custom tags are left out when unset, so the config files of clusters created before them do
// not change (a changed file restarts the agent).
type TagsConfig struct {
	NoFailover    bool              `yaml:"nofailover"`
	NoSync        bool              `yaml:"nosync"`
	NoLoadBalance bool              `yaml:"noloadbalance,omitempty"`
	Custom        map[string]string `yaml:",inline"`
}

var (
	unknownKey = regexp.MustCompile(`field (\S+) not found in type (?:agent|pki)\.(\w+)`)
	sections   = map[string]string{"LocalConfig": "", "EtcdConfig": " under etcd", "APIConfig": " under api",
		"APIAuth": " under api.auth", "PostgresConfig": " under postgres", "TagsConfig": " under tags", "Files": " under tls"}
)

// PostgresTLS are the files the agent's connections to other members' PostgreSQL verify and
// present (pgctl.Config.TLS); none in a plain-text lab, whose servers run without TLS.
func (c LocalConfig) PostgresTLS() pki.Files {
	if c.InsecurePlaintext {
		return pki.Files{}
	}
	return c.TLS
}

// LoadConfig reads and validates the local config file.
func LoadConfig(path string) (LocalConfig, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return LocalConfig{}, fmt.Errorf("read ha-agent config: %w", err)
	}
	return ParseConfig(path, b)
}

// ParseConfig decodes and validates the local config; errors name the
// file, the field and the fix.
func ParseConfig(path string, b []byte) (LocalConfig, error) {
	var c LocalConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		msg := unknownKey.ReplaceAllStringFunc(err.Error(), func(m string) string {
			sub := unknownKey.FindStringSubmatch(m)
			return fmt.Sprintf("unknown key %q%s (see the keys PgClusterCreate writes)", sub[1], sections[sub[2]])
		})
		switch {
		case strings.Contains(msg, "under api.auth"):
			msg += " (the API's password never goes in this file: name the file holding it, mode 0600, with password_file)"
		case strings.Contains(msg, "password"):
			msg += " (passwords never go in this file: put the replication user's password in ~postgres/.pgpass, mode 0600)"
		}
		return LocalConfig{}, fmt.Errorf("%s: %s", path, msg)
	}
	if c.Prefix == "" {
		c.Prefix = "/pigwf"
	}
	if err := c.Validate(); err != nil {
		return LocalConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Validate checks every field and names the fix.
func (c LocalConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	name := func(field, v string) {
		switch {
		case v == "":
			bad(field, "is required")
		case strings.ContainsAny(v, "/ \t\n\"'"):
			bad(field, "%q must not contain '/', quotes or whitespace", v)
		}
	}
	name("cluster", c.Cluster)
	name("name", c.Name)
	if !strings.HasPrefix(c.Prefix, "/") {
		bad("prefix", "%q must start with '/' (e.g. /pigwf)", c.Prefix)
	}
	if len(c.Etcd.Endpoints) == 0 {
		bad("etcd.endpoints", "is required: list the etcd client URLs, e.g. [https://10.213.0.11:2379]")
	}
	for i, ep := range c.Etcd.Endpoints {
		if u, err := url.Parse(ep); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(fmt.Sprintf("etcd.endpoints[%d]", i), "%q must be a URL like https://10.213.0.11:2379", ep)
		} else if u.Scheme == "http" && !c.InsecurePlaintext {
			bad(fmt.Sprintf("etcd.endpoints[%d]", i), "%q is plain text: use https:// (etcd with the deployment CA), or set insecure_plaintext: true in a lab", ep)
		}
	}
	// TLS files are needed unless this is a plain-text lab, and in one too for an https API.
	if !c.InsecurePlaintext || c.servesTLS() {
		if err := c.TLS.Validate(); err != nil {
			bad("tls", "%v: name the deployment CA and the node's certificate and key (tls: {ca: %s, cert: %s, key: %s})", err, pki.NodeCAPath, pki.NodeCertPath, pki.NodeKeyPath)
		} else if c.TLS.Cert == "" {
			bad("tls.cert", "is required: the node's certificate (%s) and key (%s)", pki.NodeCertPath, pki.NodeKeyPath)
		}
	}
	for field, path := range map[string]string{"tls.ca": c.TLS.CA, "tls.cert": c.TLS.Cert, "tls.key": c.TLS.Key} {
		if path != "" && !filepath.IsAbs(path) {
			bad(field, "%q must be an absolute path", path)
		}
	}
	if _, port, err := net.SplitHostPort(c.API.Listen); err != nil || port == "" {
		bad("api.listen", "%q must be host:port, e.g. 10.213.0.11:8008", c.API.Listen)
	}
	if u, err := url.Parse(c.API.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("api.url", "%q must be the URL other members reach this API at, e.g. https://10.213.0.11:8008", c.API.URL)
	} else if u.Scheme == "http" && !c.InsecurePlaintext {
		bad("api.url", "%q is plain text: the API serves TLS with the node's certificate (https://), unless insecure_plaintext: true in a lab", c.API.URL)
	}
	if au := c.API.Auth; au != nil {
		switch {
		case au.Username == "":
			bad("api.auth.username", "is required with api.auth (or remove api.auth: client certificates of the CA still authenticate)")
		case strings.Contains(au.Username, ":") || strings.ContainsFunc(au.Username, unicode.IsControl):
			bad("api.auth.username", "%q must not contain ':' or control characters (HTTP Basic authentication splits at ':')", au.Username)
		}
		if au.PasswordFile != "" && !filepath.IsAbs(au.PasswordFile) {
			bad("api.auth.password_file", "%q must be an absolute path", au.PasswordFile)
		} else if _, err := readAPIPassword(au.PasswordFile); err != nil {
			bad("api.auth.password_file", "%v", err)
		}
	}
	if _, err := parseAllowlist(c.API.Allowlist); err != nil {
		errs = append(errs, err)
	}
	abs := func(field, v string) {
		if v == "" {
			bad(field, "is required")
		} else if !filepath.IsAbs(v) {
			bad(field, "%q must be an absolute path", v)
		}
	}
	abs("postgres.bin_dir", c.Postgres.BinDir)
	if c.Postgres.BinDir != "" && filepath.IsAbs(c.Postgres.BinDir) {
		if _, err := os.Stat(filepath.Join(c.Postgres.BinDir, "postgres")); err != nil {
			bad("postgres.bin_dir", "%q has no postgres binary (install PostgreSQL 15 or fix the path, e.g. /usr/lib/postgresql/15/bin)", c.Postgres.BinDir)
		}
	}
	abs("postgres.data_dir", c.Postgres.DataDir)
	if c.Postgres.Host == "" {
		bad("postgres.host", "is required: the address other members connect to for replication")
	}
	if c.Postgres.Port < 1 || c.Postgres.Port > 65535 {
		bad("postgres.port", "%d must be between 1 and 65535", c.Postgres.Port)
	}
	abs("postgres.socket_dir", c.Postgres.SocketDir)
	if c.Postgres.ReplicationUser == "" {
		bad("postgres.replication_user", "is required (its password goes in ~postgres/.pgpass)")
	}
	if c.Postgres.LogFile != "" && !filepath.IsAbs(c.Postgres.LogFile) {
		bad("postgres.log_file", "%q must be an absolute path", c.Postgres.LogFile)
	}
	if c.LogFile != "" && !filepath.IsAbs(c.LogFile) {
		bad("log_file", "%q must be an absolute path (or empty for stderr)", c.LogFile)
	}
	for _, k := range slices.Sorted(maps.Keys(c.Tags.Custom)) {
		if problem, fix := haagent.CustomTagProblem(k, c.Tags.Custom[k]); problem != "" {
			bad("tags."+k, "%s: %s", problem, fix)
		}
	}
	return errors.Join(errs...)
}
