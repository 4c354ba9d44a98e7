// Command pg-ha-agent is pigwf's HA agent for one PostgreSQL node; see
// package github.com/pigwf/pigwf/ha-agent/agent.
package main

import (
	"os"

	"github.com/pigwf/pigwf/ha-agent/agent"
)

func main() { os.Exit(agent.Main(os.Args[1:])) }
