package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"go.temporal.io/api/operatorservice/v1"

	"github.com/pigwf/pigwf/internal/devtls"
	"github.com/pigwf/pigwf/workflows"
)

// The private server has pigwf's search attributes and a Web UI, and every pigwf command the
// harness runs is pointed at both.
func TestStartRegistersSearchAttributesAndServesTheWebUI(t *testing.T) {
	env := Server(t)

	resp, err := http.Get(env.UIURL + "/namespaces/default/workflows")
	if err != nil {
		t.Fatalf("Web UI at %q: %v", env.UIURL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("Web UI at %q: %s", env.UIURL, resp.Status)
	}

	c := env.Dial(t)
	got, err := c.C.OperatorService().ListSearchAttributes(context.Background(), &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	for _, sa := range workflows.CustomSearchAttributes() {
		typ, ok := got.GetCustomAttributes()[sa.Name]
		if !ok || typ != sa.Type {
			t.Errorf("search attribute %s: registered %v, want %s", sa.Name, typ, sa.Type)
		}
	}

	args := strings.Join(env.GlobalArgs(), " ")
	cli := env.TLS.Client(devtls.RoleCLI)
	if want := "--address " + env.TemporalAddr + " --ui " + env.UIURL + " --tls-cert-path " + cli.Cert + " --tls-key-path " + cli.Key + " --tls-ca-path " + cli.CA; args != want {
		t.Errorf("GlobalArgs = %q, want %q", args, want)
	}
}

// RanAs knows a worker by both identity forms Temporal may record, and only by its own PID.
func TestWorkerRanAs(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	w := &Worker{cmd: cmd}
	pid := fmt.Sprint(w.PID())
	for id, want := range map[string]bool{
		pid + "@host@": true,
		"pigwf-worker@host/pid-" + pid + "/build-x":  true,
		"1" + pid + "@host@":                         false,
		"pigwf-worker@host/pid-" + pid + "1/build-x": false,
		"": false,
	} {
		if got := w.RanAs(id); got != want {
			t.Errorf("RanAs(%q) = %v, want %v", id, got, want)
		}
	}
}
