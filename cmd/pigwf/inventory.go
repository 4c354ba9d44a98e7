package main

import (
	"errors"
	"fmt"
	"os"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/inventory"
)

// inventoryPath: --inventory, else ./inventory.yml, else the default lab's inventory.
func inventoryPath(c *cli.Context) (string, error) {
	if p := c.String("inventory"); p != "" {
		return p, nil
	}
	if _, err := os.Stat("inventory.yml"); err == nil {
		return "inventory.yml", nil
	}
	if st, err := lab.Load(lab.Config{}.WithDefaults()); err == nil {
		return st.Inventory, nil
	}
	return "", errors.New("no inventory: pass --inventory FILE, put inventory.yml here, or run `pigwf lab up` for the local lab")
}

func loadInventoryCluster(c *cli.Context) (*inventory.Inventory, *inventory.Cluster, string, error) {
	path, err := inventoryPath(c)
	if err != nil {
		return nil, nil, "", err
	}
	inv, err := inventory.LoadInventory(path)
	if err != nil {
		return nil, nil, path, err
	}
	cl, err := inv.Cluster(c.String("cluster"))
	return inv, cl, path, err
}

// inventoryFlag is --inventory, shared by every command that reads the inventory.
var inventoryFlag = &cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, EnvVars: []string{"PIGWF_INVENTORY"}, Usage: "inventory file (Pigsty format)"}

func inventoryCmd() *cli.Command {
	return &cli.Command{
		Name:  "inventory",
		Usage: "check an inventory file",
		Subcommands: []*cli.Command{{
			Name:  "check",
			Usage: "validate the inventory and print each cluster's nodes",
			Flags: []cli.Flag{inventoryFlag},
			Action: func(c *cli.Context) error {
				path, err := inventoryPath(c)
				if err != nil {
					return err
				}
				inv, err := inventory.LoadInventory(path)
				if err != nil {
					return err
				}
				for _, name := range sortedClusterNames(inv) {
					cl := inv.Clusters[name]
					kind := "group"
					if cl.Name != "" {
						kind = "PostgreSQL cluster"
					}
					fmt.Printf("%s (%s, %d nodes)\n", name, kind, len(cl.Hosts))
					for _, h := range cl.Hosts {
						pg := ""
						if cl.Name != "" {
							pg = fmt.Sprintf(" seq=%d role=%s", h.Seq, h.Role)
						}
						fmt.Printf("  %-16s %-12s%s ssh=%s@%s:%d\n", h.Addr, h.Node.Nodename, pg, h.Node.SSHUser, h.Node.SSHHost, h.Node.SSHPort)
					}
				}
				return nil
			},
		}},
	}
}

func sortedClusterNames(inv *inventory.Inventory) []string {
	names := make([]string, 0, len(inv.Clusters))
	for n := range inv.Clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
