# pigwf. Set-up on a fresh machine: `make demo` or `make test` (each installs what it needs).
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
export PIGWF_HOME ?= $(HOME)/.pigwf

# Sources of the Go binaries, with the files they embed (step scripts, runbook assets).
GO_SOURCES       := $(shell find . \( -name '*.go' -o -path './activities/scripts/*' \) -not -path './deploy/temporal/*' -not -path './.cache/*') go.mod go.sum
TEMPORAL_SOURCES := $(wildcard deploy/temporal/*.go) deploy/temporal/go.mod deploy/temporal/go.sum

.PHONY: all deps build test unit demo demo-down bench chaos prod-temporal-test replay-refresh lab-up lab-down clean

all: build

deps:
	@./deploy/deps.sh

build: $(BIN)/pigwf $(BIN)/pg-ha-agent $(BIN)/pigwf-temporal $(BIN)/temporal

$(BIN)/pigwf: $(GO_SOURCES)
	$(GO) build -o $@ ./cmd/pigwf

# The HA agent; PgClusterCreate installs it on the nodes from here.
$(BIN)/pg-ha-agent: $(GO_SOURCES)
	$(GO) build -o $@ ./ha-agent/cmd/pg-ha-agent

# The Temporal dev server is its own Go module (the server's dependency graph is large); the
# first build takes a few minutes.
$(BIN)/pigwf-temporal: $(TEMPORAL_SOURCES)
	cd deploy/temporal && $(GO) build -o $@ .

# The Temporal CLI (`temporal workflow show`, `operator ...`); v1.5.1 is the last release that
# installs from the module proxy. The tests use it against the mutual-TLS dev server. A few minutes
# the first time.
TEMPORAL_CLI_VERSION := v1.5.1
$(BIN)/temporal:
	GOBIN=$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

# Production-style Temporal (testenv.StartProd: pigwf-temporal on a private PostgreSQL 15 with
# its schema from `pigwf-temporal schema setup`, 4 history shards, mutual TLS, the Web UI and
# `pigwf temporal setup`): the harness's own test (runs across server restarts, idempotent set-up,
# refusals), then the must-show on a lab (two workers, a worker killed with SIGKILL mid-activity,
# the server restarted mid-run, the history read back through the Web UI).
prod-temporal-test: deps build
	PIGWF_REQUIRE_INTEGRATION=1 PIGWF_BIN=$(BIN)/pigwf PIGWF_TEMPORAL_BIN=$(BIN)/pigwf-temporal PIGWF_TEMPORAL_CLI=$(BIN)/temporal \
	  $(GO) test -p 1 -count=1 -timeout 30m -run 'TestProd' -v ./internal/testenv/ ./integration/

# Unit tests, the SSH runner against a real sshd, the lab, and the runbooks end to end on the lab
# through a real Temporal server. One package at a time (-p 1): the lab's HA agents fail over in
# well under a second by design, so a lab cluster sharing two cores with other packages' real
# PostgreSQL, etcd, Temporal and Chromium can lose its leader to CPU starvation mid-test.
test: deps build
	$(GO) vet ./...
	PIGWF_REQUIRE_INTEGRATION=1 PIGWF_BIN=$(BIN)/pigwf PIGWF_TEMPORAL_BIN=$(BIN)/pigwf-temporal PIGWF_TEMPORAL_CLI=$(BIN)/temporal \
	  $(GO) test -p 1 -count=1 -timeout 25m ./...
	cd deploy/temporal && $(GO) test -count=1 .

# Only the tests that need no root, lab or server.
unit:
	$(GO) test -count=1 ./inventory/... ./approval/... ./pki/... ./internal/suggest/... ./internal/libpq/... ./internal/httplimit/... ./workflows/... ./replaytests/... ./ha-agent/... ./metrics/... ./worker/... ./deploy/monitoring/... ./haproxy/... ./dsl/...

demo: deps build
	./deploy/demo.sh

demo-down:
	-@pkill -f '^$(BIN)/pigwf worker' ; rm -f $(PIGWF_HOME)/worker.pid
	-@pkill -INT -f '^$(BIN)/pigwf-temporal --ip 127.0.0.1 --port 7233' ; rm -f $(PIGWF_HOME)/temporal.pid
	$(BIN)/pigwf lab down

lab-up: deps build
	$(BIN)/pigwf lab up
lab-down: build
	$(BIN)/pigwf lab down

# Benchmarks: each compares pigwf with the anchor side by side in one run and prints ratios.
# The integration benches bring up a lab each, one after the other: more than go test's default
# 10 minutes in all. TestBenchNodeInitFleet (pigwf's node-init beside Ansible on 10 and 30 lab
# nodes, ~20 min of them Ansible's) takes its sizes from PIGWF_FLEET_SIZES (default 10,30);
# it installs Debian's ansible-core when it is missing.
bench: deps build
	set -o pipefail; PIGWF_BENCH=1 PIGWF_REQUIRE_INTEGRATION=1 PIGWF_BIN=$(BIN)/pigwf PIGWF_TEMPORAL_BIN=$(BIN)/pigwf-temporal PIGWF_TEMPORAL_CLI=$(BIN)/temporal \
	  $(GO) test -count=1 -timeout 80m -run 'Bench' -v ./activities/sshrun/ ./integration/ | tee $(CURDIR)/bench.txt | grep -E '^(BENCH|--- |ok|FAIL)'

# The HA chaos suite (chaos/): six faults, N times each (PIGWF_CHAOS_N, default 10), on a 3-node
# lab cluster in synchronous mode under a steady writer, with Patroni (Debian's package, installed
# by the test when missing) at its tightest settings side by side in the same run. Prints the table
# and keeps it in chaos-report.txt. Fails on a lost acknowledged write, two writable primaries or an
# old primary that does not come back; never on timing. About an hour at N=10 on 2 cores.
chaos: deps build
	set -o pipefail; PIGWF_REQUIRE_INTEGRATION=1 PIGWF_BIN=$(BIN)/pigwf PIGWF_TEMPORAL_BIN=$(BIN)/pigwf-temporal PIGWF_TEMPORAL_CLI=$(BIN)/temporal \
	  $(GO) test -tags chaos -count=1 -timeout 80m -run TestChaos -v ./chaos/ | tee $(CURDIR)/chaos-report.txt

# Record a new history of each runbook for the replay tests (after a deliberate workflow change;
# every integration test that runs a runbook saves its run):
# each is added as replaytests/testdata/<runbook>/<date>-<version markers>.json; none is replaced.
replay-refresh: deps build
	PIGWF_REFRESH_HISTORIES=1 PIGWF_REQUIRE_INTEGRATION=1 PIGWF_BIN=$(BIN)/pigwf PIGWF_TEMPORAL_BIN=$(BIN)/pigwf-temporal PIGWF_TEMPORAL_CLI=$(BIN)/temporal \
	  $(GO) test -p 1 -count=1 -timeout 40m ./integration/

clean:
	rm -rf $(BIN)
