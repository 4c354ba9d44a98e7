package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/deploy/lab"
)

func labConfig(c *cli.Context) lab.Config {
	// The worker's CA by default: NodeInit then finds the CA etcd trusts.
	return lab.Config{Name: c.String("name"), Nodes: c.Int("nodes"), Subnet: c.String("subnet"), Clusters: splitList(c.StringSlice("clusters")),
		Bare: c.Int("bare"), CADir: caDir(c), Plaintext: c.Bool("insecure-plaintext")}.WithDefaults()
}

func labCmd() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "name", Value: "pigwf", Usage: "lab name (prefix of its namespaces and links)"},
		&cli.IntFlag{Name: "nodes", Value: 3, Usage: "number of nodes in all (node i at <subnet>.<10+i>; etcd on nodes 1..3)"},
		&cli.StringFlag{Name: "subnet", Value: "10.213.0", Usage: "first three octets of the lab network"},
		// one flag for one cluster or several: --cluster pg-test reads as it always did
		&cli.StringSliceFlag{Name: "clusters", Aliases: []string{"cluster"}, Usage: "PostgreSQL clusters written into the lab inventory, comma separated (default pg-test); the nodes not --bare split evenly over them in order, each one's first node its primary"},
		&cli.IntFlag{Name: "bare", Usage: "how many nodes, the last ones, are in no PostgreSQL cluster: the inventory group '" + lab.BareGroup + "', for 'pigwf start node-init --cluster " + lab.BareGroup + "'"},
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
	for _, g := range st.Groups {
		kind := "PostgreSQL cluster"
		if !g.PostgreSQL {
			kind = "bare nodes, in no PostgreSQL cluster"
		}
		fmt.Printf("  %-12s %s: nodes %s\n", g.Name, kind, nodeRanges(g.Nodes))
	}
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

// nodeRanges writes node numbers as runs: "n1-n3, n7".
func nodeRanges(nodes []int) string {
	var parts []string
	for i := 0; i < len(nodes); {
		j := i
		for j+1 < len(nodes) && nodes[j+1] == nodes[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, fmt.Sprintf("n%d", nodes[i]))
		} else {
			parts = append(parts, fmt.Sprintf("n%d-n%d", nodes[i], nodes[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
