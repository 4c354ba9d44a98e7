package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/pigwf/pigwf/activities"
	"github.com/pigwf/pigwf/deploy/lab"
	"github.com/pigwf/pigwf/haproxy"
)

// ServicePort is the access layer's primary service (Pigsty's primary, 5433): the service
// writer connects there on every node's HAProxy.
const ServicePort = 5433

// pigstyHAProxy runs HAProxy on every node of the anchor's lab with Pigsty's default services
// and check settings (inter 3s fastinter 1s downinter 5s rise 3 fall 3 on-marked-down
// shutdown-sessions), checking Patroni's REST API: what a Pigsty cluster's clients go through.
// The file is rendered by the same code as pg-service's; only the timing and the API differ.
func pigstyHAProxy(ctx context.Context, st *lab.Status, member func(int) string, apiPort int) error {
	c := haproxy.Cluster{Name: "pg-test", Services: haproxy.PigstyServices(), Timing: haproxy.PigstyTiming()}
	for i, n := range st.Nodes {
		role := "replica"
		if i == 0 {
			role = "primary" // the inventory role: Pigsty's replica service falls back to it
		}
		c.Members = append(c.Members, haproxy.Member{Name: member(i + 1), Addr: n.Addr, Role: role, PGPort: 5432, APIPort: apiPort})
	}
	for i, n := range st.Nodes {
		node := i + 1
		text, _, err := activities.ServiceConfig(activities.ServiceInput{Node: activities.Node{Addr: n.Addr, Name: n.Name}, Cluster: c})
		if err != nil {
			return fmt.Errorf("the anchor's HAProxy configuration: %w", err)
		}
		if err := writeNodeFile(st, node, activities.ServiceConfigPath, text, 0o644, ""); err != nil {
			return err
		}
		if err := writeNodeFile(st, node, activities.ServiceBootPath, activities.ServiceBootScript(), 0o755, ""); err != nil {
			return err
		}
		if out, err := st.Exec(ctx, node, "sh", "-c", "setsid "+activities.ServiceBootPath+" </dev/null >/dev/null 2>&1 &"); err != nil {
			return fmt.Errorf("while starting HAProxy on node %d: %w: %s", node, err, out)
		}
	}
	for i := range st.Nodes {
		node := i + 1
		if err := waitFor(ctx, 20*time.Second, func() error {
			out, err := st.Exec(ctx, node, "sh", "-c", fmt.Sprintf("ss -Hltn 'sport = :%d' | grep -q .", ServicePort))
			if err != nil {
				return fmt.Errorf("HAProxy does not listen on node %d: %w: %s\n%s", node, err, out, TailFile(nodeFile(st, node, "/var/log/pigwf/haproxy.log"), 10))
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}
