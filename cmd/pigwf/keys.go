package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/approval"
	"github.com/pigwf/pigwf/starter"
)

// Identities for approvals: the keys people sign decisions and requests with (`pigwf keys new`),
// the worker's approvals file that believes them (`pigwf approvals check`), and how a command
// finds the key of the person it acts for (signingKey).

// keyFlag is --key, the private key a command signs with; PIGWF_APPROVER_KEY names it too.
var keyFlag = &cli.StringFlag{Name: "key", EnvVars: []string{"PIGWF_APPROVER_KEY"}, Usage: "your ed25519 private key (OpenSSH, no passphrase; default $PIGWF_HOME/keys/NAME)"}

// signingKey loads name's key: the file given (--key or PIGWF_APPROVER_KEY), else
// $PIGWF_HOME/keys/NAME.
func signingKey(name, file string) (approval.Key, error) {
	if file == "" {
		file = approval.KeyPath(home(), name)
	}
	return approval.LoadKey(name, file)
}

// requester is who asks for a run: the request's name and, when their key is found, the key that
// signs the request once the run has started (starter.Client.SignRequest).
type requester struct {
	req  starter.Request
	key  *approval.Key
	note string // why the request goes unsigned
}

// requesterOf is the requester of a run started from inventory: --as NAME (default: the login,
// starter.Requester) with --key or $PIGWF_HOME/keys/NAME. A key asked for by --as or --key must
// load; with neither, a missing key leaves the request unsigned (said once the run starts).
func requesterOf(c *cli.Context, inventory string) (requester, error) {
	r := requester{req: starter.NewRequest(inventory)}
	name, asked := c.String("as"), c.String("as") != "" || c.String("key") != ""
	if name == "" {
		name = r.req.By
	}
	r.req.By = name
	key, err := signingKey(name, c.String("key"))
	switch {
	case err == nil:
		r.key = &key
	case !asked && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, approval.ErrBadName)):
		r.note = fmt.Sprintf("the request is not signed (no key for %s at %s): the worker cannot tell who asked, so under a four-eyes policy nobody can approve this run; start it with --as NAME (and NAME's key: `pigwf keys new NAME`)",
			name, approval.KeyPath(home(), name))
	default:
		return r, fmt.Errorf("the requester's key: %w", err)
	}
	return r, nil
}

func keysCmd() *cli.Command {
	return &cli.Command{
		Name:  "keys",
		Usage: "the ed25519 keys that sign approvals and requests",
		Subcommands: []*cli.Command{{
			Name:      "new",
			Usage:     "make NAME's key pair in $PIGWF_HOME/keys (kept if already there) and print the public key line for the worker's approvals file",
			ArgsUsage: "NAME",
			Flags:     []cli.Flag{&cli.StringFlag{Name: "dir", Usage: "where to keep it (default $PIGWF_HOME/keys)"}},
			Action: func(c *cli.Context) error {
				name := c.Args().First()
				if name == "" || c.Args().Len() > 1 {
					return errors.New("usage: pigwf keys new NAME [--dir DIR]")
				}
				dir := c.String("dir")
				if dir == "" {
					dir = filepath.Dir(approval.KeyPath(home(), name))
				}
				pub, created, err := approval.CreateKey(dir, name)
				if err != nil {
					return err
				}
				state := "unchanged: the key already there is kept"
				if created {
					state = "changed: a new key"
				}
				// The second line is what the approvals file lists (keys: or signers:).
				fmt.Printf("%s: %s; its public key:\n%s\n", filepath.Join(dir, name), state, pub)
				return nil
			},
		}},
	}
}

func approvalsCmd() *cli.Command {
	return &cli.Command{
		Name:  "approvals",
		Usage: "the worker's approvals file: who may approve, whose keys are believed",
		Subcommands: []*cli.Command{{
			Name:  "check",
			Usage: "validate an approvals file and show the policy a runbook on a cluster gets",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "approvals", EnvVars: []string{"PIGWF_APPROVALS"}, Usage: "the file (default $PIGWF_HOME/approvals.yml)"},
				&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}, Usage: "show the policy for this cluster"},
				&cli.StringFlag{Name: "runbook", Value: "switchover", Usage: "with --cluster: for this runbook"},
			},
			Action: func(c *cli.Context) error {
				file := c.String("approvals")
				if file == "" {
					file = filepath.Join(home(), "approvals.yml")
				}
				tr, err := approval.Load(file)
				if err != nil {
					return err
				}
				fmt.Printf("%s: ok (signature window %s)\n", file, tr.Window)
				if cl := c.String("cluster"); cl != "" {
					p := tr.Policy(c.String("runbook"), cl)
					fmt.Printf("%s on %s: %s\n", c.String("runbook"), cl, p.Describe())
					if len(p.Approvers) > 0 {
						fmt.Printf("  from %s\n", p.Source)
					}
				}
				return nil
			},
		}},
	}
}
