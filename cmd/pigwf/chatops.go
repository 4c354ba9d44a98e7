package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/pigwf/pigwf/chatops"
	"github.com/pigwf/pigwf/internal/devtls"
)

func chatopsCmd() *cli.Command {
	return &cli.Command{
		Name:  "chatops",
		Usage: "the ChatOps bridge for chat bots",
		Subcommands: []*cli.Command{{
			Name:  "serve",
			Usage: "serve /slack/command (Slack-signed) and /webhook (bearer token)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8088"},
				&cli.StringFlag{Name: "config", Required: true, Usage: "YAML: users (chat user -> approver), signer (the bridge's name in the workers' approvals files, default chatops) and key (its private key, default $PIGWF_HOME/keys/SIGNER); secrets come from PIGWF_SLACK_SIGNING_SECRET and PIGWF_CHATOPS_TOKEN"},
			},
			Action: func(c *cli.Context) error {
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
				logger(c).Info("chatops bridge listening", "addr", c.String("listen"), "users", len(cfg.Users), "signer", cfg.Signer.Name)
				if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
					return err
				}
				return nil
			},
		}},
	}
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
