package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/deploy/lab"
)

func labConfig(c *cli.Context) lab.Config {
	// The worker's CA by default: NodeInit then finds the CA etcd trusts.
	return lab.Config{Name: c.String("name"), Nodes: c.Int("nodes"), Subnet: c.String("subnet"), Cluster: c.String("cluster"),
		CADir: caDir(c), Plaintext: c.Bool("insecure-plaintext")}.WithDefaults()
}

func labCmd() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "name", Value: "pigwf", Usage: "lab name (prefix of its namespaces and links)"},
		&cli.IntFlag{Name: "nodes", Value: 3, Usage: "number of nodes"},
		&cli.StringFlag{Name: "subnet", Value: "10.213.0", Usage: "first three octets of the lab network"},
		&cli.StringFlag{Name: "cluster", Value: "pg-test", Usage: "cluster name written into the lab inventory"},
		&cli.StringFlag{Name: "ca-dir", Usage: "the deployment CA the lab's etcd certificates come from (default $PIGWF_HOME/ca, the worker's)"},
		&cli.BoolFlag{Name: "insecure-plaintext", Usage: "lab-only: etcd, the agents' API and replication without TLS (a benchmark's baseline)"},
	}
	return &cli.Command{
		Name:  "lab",
		Usage: "the local lab: nodes as network namespaces with their own sshd and filesystem view",
		Subcommands: []*cli.Command{
			{Name: "up", Usage: "create or repair the lab (idempotent)", Flags: flags, Action: func(c *cli.Context) error {
				st, err := lab.Up(c.Context, labConfig(c))
				if err != nil {
					return err
				}
				printLab(st)
				return nil
			}},
			{Name: "down", Usage: "remove the lab completely", Flags: flags, Action: func(c *cli.Context) error {
				if err := lab.Down(c.Context, labConfig(c)); err != nil {
					return err
				}
				fmt.Println("lab", labConfig(c).Name, "removed")
				return nil
			}},
			{Name: "status", Usage: "show the lab's nodes and files", Flags: append(flags, &cli.BoolFlag{Name: "json"}), Action: func(c *cli.Context) error {
				st, err := lab.Load(labConfig(c))
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(st)
				}
				printLab(st)
				return nil
			}},
		},
	}
}

func printLab(st *lab.Status) {
	fmt.Printf("lab %s (%s)\n", st.Name, st.Dir)
	for _, n := range st.Nodes {
		state := "running"
		if !n.Running {
			state = "DOWN"
		} else if !n.LinkUp {
			state = "running, link down"
		}
		fmt.Printf("  %-4s %-14s pid %-7d %s\n", n.Name, n.Addr, n.PID, state)
	}
	fmt.Printf("  inventory   %s\n  known_hosts %s\n  ssh key     %s\n", st.Inventory, st.KnownHosts, st.SSHKey)
	if st.InventoryNote != "" {
		fmt.Println("note: " + st.InventoryNote)
	}
}
