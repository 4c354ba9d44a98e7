package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/pigwf/pigwf/chatops"
	"github.com/pigwf/pigwf/internal/devtls"
	"github.com/pigwf/pigwf/pki"
)

func chatopsCmd() *cli.Command {
	return &cli.Command{
		Name:  "chatops",
		Usage: "the ChatOps bridge for chat bots",
		Subcommands: []*cli.Command{{
			Name:  "serve",
			Usage: "serve /slack/command (Slack-signed) and /webhook (bearer token)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8088", Usage: "address to serve on; beyond loopback it serves TLS (--tls-cert, --tls-key) or sits behind a TLS proxy on loopback"},
				&cli.StringFlag{Name: "tls-cert", Usage: "serve HTTPS with this certificate (PEM; e.g. from the deployment CA or the one your chat platform trusts)"},
				&cli.StringFlag{Name: "tls-key", Usage: "the certificate's key (PEM, mode 0600)"},
				&cli.BoolFlag{Name: "insecure-plaintext", Usage: "lab-only: serve plain http on a non-loopback address (the webhook's bearer token would cross the network in clear)"},
				&cli.StringFlag{Name: "config", Required: true, Usage: "YAML: users (chat user -> approver), signer (the bridge's name in the workers' approvals files, default chatops) and key (its private key, default $PIGWF_HOME/keys/SIGNER); secrets come from PIGWF_SLACK_SIGNING_SECRET and PIGWF_CHATOPS_TOKEN"},
			},
			Action: func(c *cli.Context) error {
				tlsFiles, err := chatopsTLS(c.String("listen"), c.String("tls-cert"), c.String("tls-key"), c.Bool("insecure-plaintext"))
				if err != nil {
					return err
				}
				cfg, err := loadChatopsConfig(c.String("config"))
				if err != nil {
					return err
				}
				ctx, cancel := signalContext(c)
				defer cancel()
				cl, err := temporalClient(ctx, c, devtls.RoleChatops)
				if err != nil {
					return err
				}
				defer cl.Close()
				srv := chatops.New(cfg, cl, logger(c)).HTTPServer(c.String("listen"))
				go func() { <-ctx.Done(); srv.Close() }()
				logger(c).Info("chatops bridge listening", "addr", c.String("listen"), "tls", tlsFiles.Cert != "", "users", len(cfg.Users), "signer", cfg.Signer.Name)
				if tlsFiles.Cert != "" {
					err = srv.ListenAndServeTLS(tlsFiles.Cert, tlsFiles.Key)
				} else {
					err = srv.ListenAndServe()
				}
				if err != nil && !errors.Is(err, http.ErrServerClosed) {
					return err
				}
				return nil
			},
		}},
	}
}

// chatopsTLS decides how the bridge serves: HTTPS with the given pair, or plain http on loopback
// only (a TLS proxy in front), unless the lab says otherwise. The webhook's bearer token and the
// decisions must not cross a network in clear.
func chatopsTLS(listen, cert, key string, plaintext bool) (pki.Files, error) {
	if (cert == "") != (key == "") {
		return pki.Files{}, errors.New("chatops serve: --tls-cert and --tls-key go together")
	}
	if cert != "" {
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			return pki.Files{}, fmt.Errorf("chatops serve: --tls-cert/--tls-key: %w", err)
		}
		return pki.Files{Cert: cert, Key: key}, nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return pki.Files{}, fmt.Errorf("chatops serve: --listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" && !plaintext {
		return pki.Files{}, fmt.Errorf("chatops serve: --listen %s is beyond loopback without TLS: give --tls-cert and --tls-key, or listen on 127.0.0.1 behind a TLS proxy (--insecure-plaintext for a lab)", listen)
	}
	return pki.Files{}, nil
}

func loadChatopsConfig(path string) (chatops.Config, error) {
	var file struct {
		Users map[string]string `yaml:"users"`
		// The bridge signs each decision it carries as Signer, with the key at Key; the workers'
		// approvals files trust it under signers: for the people it may vouch for.
		Signer string `yaml:"signer"`
		Key    string `yaml:"key"`
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return chatops.Config{}, fmt.Errorf("while reading the chatops config: %w", err)
	}
	if err := yaml.Unmarshal(data, &file); err != nil {
		return chatops.Config{}, fmt.Errorf("%s: %w", path, err)
	}
	cfg := chatops.Config{Users: file.Users, SlackSigningSecret: os.Getenv("PIGWF_SLACK_SIGNING_SECRET"), WebhookToken: os.Getenv("PIGWF_CHATOPS_TOKEN")}
	if cfg.SlackSigningSecret == "" && cfg.WebhookToken == "" {
		return cfg, errors.New("set PIGWF_SLACK_SIGNING_SECRET (Slack) and/or PIGWF_CHATOPS_TOKEN (webhook) in the environment")
	}
	if len(cfg.Users) == 0 {
		return cfg, fmt.Errorf("%s maps no chat users to approvers (users: {U0123ABC: alice})", path)
	}
	if file.Signer == "" {
		file.Signer = "chatops"
	}
	key, err := signingKey(file.Signer, file.Key)
	if err != nil {
		return cfg, fmt.Errorf("%s: the bridge signs the decisions it carries: %w", path, err)
	}
	cfg.Signer = &key
	return cfg, nil
}
