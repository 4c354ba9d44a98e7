package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/internal/devtls"
	"github.com/pigwf/pigwf/starter"
)

// connectionFlags are the global flags of the connection to Temporal (starter.Setting names them
// and their environment variables, as the `temporal` CLI does).
func connectionFlags() []cli.Flag {
	str := func(s starter.Setting, value, usage string) cli.Flag {
		return &cli.StringFlag{Name: s.Flag, Value: value, EnvVars: s.Env, Usage: usage, Category: "Temporal connection"}
	}
	boolean := func(s starter.Setting, usage string) cli.Flag {
		return &cli.BoolFlag{Name: s.Flag, EnvVars: s.Env, Usage: usage, Category: "Temporal connection"}
	}
	return []cli.Flag{
		str(starter.SettingAddress, "127.0.0.1:7233", "Temporal frontend host:port"),
		str(starter.SettingNamespace, "default", "Temporal namespace"),
		boolean(starter.SettingTLS, "TLS on (true) or off (false); default: on when a certificate, CA, server name or API key is given, or when `pigwf dev` set up mutual TLS in $PIGWF_HOME (its client certificates are then used); false forces plain text"),
		str(starter.SettingTLSCert, "", "client certificate (PEM) for mTLS; implies TLS"),
		str(starter.SettingTLSKey, "", "the client certificate's private key (PEM)"),
		str(starter.SettingTLSCA, "", "CA certificate (PEM) the server's certificate must chain to (default: the system's roots)"),
		str(starter.SettingServerName, "", "the name the server's certificate must hold (default: the host of --address)"),
		boolean(starter.SettingNoHostName, "accept a server certificate that does not name the host (its chain to the CA is still verified)"),
		// No EnvVars: TEMPORAL_API_KEY is read in connection(), so that only a key typed on the
		// command line draws the warning.
		&cli.StringFlag{Name: starter.SettingAPIKey.Flag, Usage: "API key: do not use, the command line is visible to every user (ps); set TEMPORAL_API_KEY or use --api-key-file", Category: "Temporal connection"},
		str(starter.SettingAPIKeyFile, "", "file holding the API key (sent as a bearer token; implies TLS); TEMPORAL_API_KEY also works"),
	}
}

// connection is the one way a command, the worker and the ChatOps bridge learn how to reach
// Temporal. Precedence, per setting: a flag, then its environment variable. When no TLS setting
// and no API key is given at all (and --tls is not false), and `pigwf dev` set up mutual TLS in
// $PIGWF_HOME (devtls.Layout.Defaults: its frontend certificate exists), the role's client
// certificate from the deployment CA is used, with that CA.
func connection(c *cli.Context, role devtls.Role) (starter.Connection, error) {
	conn := starter.Connection{
		Address:   c.String(starter.SettingAddress.Flag),
		Namespace: c.String(starter.SettingNamespace.Flag),
		TLS: starter.TLSSettings{
			CertFile:                c.String(starter.SettingTLSCert.Flag),
			KeyFile:                 c.String(starter.SettingTLSKey.Flag),
			CAFile:                  c.String(starter.SettingTLSCA.Flag),
			ServerName:              c.String(starter.SettingServerName.Flag),
			DisableHostVerification: c.Bool(starter.SettingNoHostName.Flag),
		},
	}
	if c.IsSet(starter.SettingTLS.Flag) {
		conn.TLS.Mode = starter.TLSOff
		if c.Bool(starter.SettingTLS.Flag) {
			conn.TLS.Mode = starter.TLSOn
		}
	}
	switch {
	case c.String(starter.SettingAPIKey.Flag) != "":
		fmt.Fprintf(os.Stderr, "pigwf: warning: an API key on the command line is visible to every user of this machine; set %s or use --%s\n",
			starter.SettingAPIKey.Env[0], starter.SettingAPIKeyFile.Flag)
		conn.APIKey = starter.Secret(c.String(starter.SettingAPIKey.Flag))
	case c.String(starter.SettingAPIKeyFile.Flag) != "":
		key, err := starter.ReadAPIKeyFile(c.String(starter.SettingAPIKeyFile.Flag))
		if err != nil {
			return conn, err
		}
		conn.APIKey = key
	default:
		conn.APIKey = starter.Secret(os.Getenv(starter.SettingAPIKey.Env[0]))
	}
	if conn.TLS.Mode == starter.TLSAuto && !conn.TLSEnabled() {
		layout := devtls.Layout{Home: home()}
		f, ok, err := layout.Defaults(role)
		if err != nil {
			return conn, fmt.Errorf("%w; or give --%s=false for plain text", err, starter.SettingTLS.Flag)
		}
		if ok {
			conn.TLS.CertFile, conn.TLS.KeyFile, conn.TLS.CAFile = f.Cert, f.Key, f.CA
			conn.Defaults = layout.Dir()
		}
	}
	return conn, conn.Check()
}
