package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/pigwf/pigwf/starter"
	"github.com/pigwf/pigwf/workflows"
)

// The production-style server: PostgreSQL with its schema from the server's own tool, 4 history
// shards, pigwf's namespace and search attributes from `pigwf temporal setup`. A run started
// before a restart (SIGTERM, then a start on the same database) finishes after it, and its
// history is still there, through gRPC and through the Web UI's HTTP API. Setting up again
// changes nothing; a shard count that differs from the database's, or a second server on the
// same database, is refused.
func TestProdServerKeepsRunsAcrossRestarts(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "runs PostgreSQL as the postgres OS user; must start as root")
	}
	for _, v := range []string{EnvTemporalBin, EnvPigwfBin} {
		if os.Getenv(v) == "" {
			skipOrFail(t, "needs pigwf-temporal and pigwf: set "+v+" (make test does)")
		}
	}
	if _, err := os.Stat(DefaultPGBin + "/postgres"); err != nil && os.Getenv(EnvPGBin) == "" {
		skipOrFail(t, "no PostgreSQL 15 (make deps installs it)")
	}
	started := time.Now()
	env, err := StartProd(ProdOptions{Retention: "7d"})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	t.Logf("production-style Temporal up in %v:\n%s", time.Since(started).Round(time.Millisecond), env.SetupOutput)
	for _, want := range []string{"namespace default: created, retention 7d (changed)", "search attribute PgCluster: Keyword, added (changed)"} {
		if !strings.Contains(env.SetupOutput, want) {
			t.Errorf("pigwf temporal setup did not say %q", want)
		}
	}

	cl := env.Dial(t)
	info, err := cl.C.WorkflowService().GetClusterInfo(context.Background(), &workflowservice.GetClusterInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.GetHistoryShardCount() != int32(env.Shards) || info.GetPersistenceStore() != "postgres12" {
		t.Errorf("server: %d shards on %q, want %d on postgres12", info.GetHistoryShardCount(), info.GetPersistenceStore(), env.Shards)
	}

	// A run that waits for a signal, handled by a worker in this process.
	queue := "prodtemporal-" + fmt.Sprint(time.Now().UnixNano())
	w := worker.New(cl.C, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(waitForSignal, workflow.RegisterOptions{Name: "WaitForSignal"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run, err := cl.C.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "prod/restart", TaskQueue: queue,
		TypedSearchAttributes: temporalSearchAttributes("pg-prod")}, "WaitForSignal")
	if err != nil {
		t.Fatal(err)
	}

	restarted := time.Now()
	if err := env.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart (SIGTERM, start, ready) in %v", time.Since(restarted).Round(time.Millisecond))

	// The worker and this client reconnect by themselves.
	if err := signalUntilAccepted(ctx, cl, run); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil || got != "go on" {
		t.Fatalf("the run after the restart: %q, %v", got, err)
	}

	if err := env.Restart(); err != nil {
		t.Fatal(err)
	}
	hist, err := HistoryOf(cl, "prod/restart")
	if err != nil {
		t.Fatal(err)
	}
	last := hist.Events[len(hist.Events)-1]
	if last.GetEventType() != enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED {
		t.Errorf("after a second restart the history ends with %v, want completed", last.GetEventType())
	}
	events, err := env.UIHistory("prod/restart", run.GetRunID())
	if err != nil || len(events) != len(hist.Events) {
		t.Errorf("the Web UI's API gives %d events (%v), gRPC %d", len(events), err, len(hist.Events))
	}
	runs, err := cl.C.WorkflowService().CountWorkflowExecutions(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: "default", Query: "PgCluster = 'pg-prod'"})
	if err != nil || runs.GetCount() != 1 {
		t.Errorf("visibility by PgCluster after the restarts: %v, %v", runs.GetCount(), err)
	}

	// Idempotent set-up: the schema and the namespace are as they were.
	out, err := env.Schema("setup")
	if err != nil || strings.Count(out, "up to date") != 2 {
		t.Errorf("schema setup again: %v\n%s", err, out)
	}
	out, err = env.Schema("update")
	if err != nil || strings.Count(out, "up to date") != 2 {
		t.Errorf("schema update: %v\n%s", err, out)
	}
	// Databases that were never set up: update refuses them, and so does the server, each
	// naming the command that fixes it.
	other := []string{"--pg-database", "never_set_up", "--pg-visibility-database", "never_set_up_vis"}
	out, err = env.run(env.bin, append(append([]string{"schema", "update"}, env.dbArgs...), other...)...)
	if err == nil || !strings.Contains(out, "create it and its schema with `pigwf-temporal schema setup`") {
		t.Errorf("schema update of a missing database: %v\n%s", err, out)
	}
	out, err = runServerOnce(env, other...)
	if err == nil || !strings.Contains(out, "pigwf-temporal schema setup --db postgres") {
		t.Errorf("a server on a database without the schema: %v\n%s", err, out)
	}
	out, err = env.Pigwf(t, t.TempDir(), "temporal", "setup", "--retention", "7d")
	if err != nil || strings.Contains(out, "(changed)") || strings.Count(out, "(unchanged)") != 1+len(workflows.CustomSearchAttributes()) {
		t.Errorf("pigwf temporal setup again: %v\n%s", err, out)
	}
	out, err = env.Pigwf(t, t.TempDir(), "temporal", "setup", "--retention", "30d")
	if err != nil || !strings.Contains(out, "namespace default: retention 7d -> 30d (changed)") {
		t.Errorf("pigwf temporal setup with another retention: %v\n%s", err, out)
	}
	desc, err := cl.C.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	if err != nil || desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration() != 30*24*time.Hour {
		t.Errorf("retention after the change: %v, %v", desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(), err)
	}

	// A second server on the same database is refused while the first runs; with another shard
	// count it is refused too, once the first is stopped.
	out, err = runServerOnce(env, "--num-history-shards", fmt.Sprint(env.Shards))
	if err == nil || !strings.Contains(out, "another pigwf-temporal runs on this database") {
		t.Errorf("a second server on the same database: %v\n%s", err, out)
	}
	if err := env.StopServer(); err != nil {
		t.Fatal(err)
	}
	out, err = runServerOnce(env, "--num-history-shards", fmt.Sprint(env.Shards*2))
	if err == nil || !strings.Contains(out, fmt.Sprintf("this database was set up with %d history shards", env.Shards)) {
		t.Errorf("another shard count: %v\n%s", err, out)
	}
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if RequireIntegration() {
		t.Fatal(why)
	}
	t.Skip(why)
}

func waitForSignal(ctx workflow.Context) (string, error) {
	var v string
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, &v)
	return v, nil
}

func temporalSearchAttributes(cluster string) temporal.SearchAttributes {
	// A summary as the starter writes one: its ':' and quote, cast as they are, fail PostgreSQL's
	// visibility row (the count by PgCluster below finds the run only when they are not).
	return temporal.NewSearchAttributes(workflows.SearchAttrCluster.ValueSet(cluster),
		workflows.SummaryAttr("node-init "+cluster+": 3 nodes, requested by o'brien (C:\\pigwf)"))
}

// signalUntilAccepted signals the run until the restarted server takes the signal.
func signalUntilAccepted(ctx context.Context, cl *starter.Client, run client.WorkflowRun) error {
	for {
		err := cl.C.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), "go", "go on")
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("signal after the restart: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runServerOnce starts another pigwf-temporal on the env's database with extra flags on free
// ports, expecting it to refuse; it returns its output, or kills it after 30 s.
func runServerOnce(env *ProdEnv, extra ...string) (string, error) {
	port, uiPort, err := serverPorts()
	if err != nil {
		return "", err
	}
	args := append([]string{"--port", fmt.Sprint(port), "--ui-port", fmt.Sprint(uiPort)}, env.dbArgs...)
	args = append(args, serverTLSArgs(env.TLS)...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, env.bin, append(args, extra...)...).CombinedOutput()
	return string(out), err
}
