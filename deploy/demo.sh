#!/usr/bin/env bash
# make demo: the Temporal dev server with its Web UI, the lab, a worker, then NodeInit and
# PgClusterCreate on pg-test: an HA PostgreSQL cluster managed by pigwf's agents.
# The server and the worker stay up afterwards so the run can be explored in the Web UI;
# `make demo-down` stops them and removes the lab.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/bin"
export PIGWF_HOME="${PIGWF_HOME:-$HOME/.pigwf}"
mkdir -p "$PIGWF_HOME"
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if port_open 7233; then
  echo "demo: Temporal already answers on 127.0.0.1:7233"
else
  echo "demo: starting Temporal (gRPC 127.0.0.1:7233 with mutual TLS from $PIGWF_HOME/ca, Web UI http://127.0.0.1:8233, state $PIGWF_HOME/temporal.db)"
  setsid "$BIN/pigwf" dev >"$PIGWF_HOME/temporal.log" 2>&1 < /dev/null &
  for _ in $(seq 1 300); do grep -q ready "$PIGWF_HOME/temporal.log" 2>/dev/null && break; sleep 0.1; done
  port_open 7233 || { echo "demo: Temporal did not start; see $PIGWF_HOME/temporal.log" >&2; exit 1; }
  # `pigwf dev` execs the server; setsid may have forked, so record the server's own PID.
  pgrep -f "^$BIN/pigwf-temporal --ip 127.0.0.1 --port 7233" > "$PIGWF_HOME/temporal.pid" || true
fi

"$BIN/pigwf" lab up

# Approvals: keys for alice and bob (kept once made) and the worker's approvals file trusting them
# for pg-test, four eyes, one approver. A file written here is rewritten from the keys each time;
# one without the marker line is someone's own and is kept.
marker="# written by deploy/demo.sh"
for who in alice bob; do "$BIN/pigwf" keys new "$who" >/dev/null; done
if [ -f "$PIGWF_HOME/approvals.yml" ] && [ "$(head -n1 "$PIGWF_HOME/approvals.yml")" != "$marker" ]; then
  echo "demo: keeping your $PIGWF_HOME/approvals.yml"
else
  cat > "$PIGWF_HOME/approvals.yml.tmp" <<YML
$marker
# Who may approve pigwf runs, as this worker checks it (README: "Switchover and approvals").
keys:
  alice: ["$(cat "$PIGWF_HOME/keys/alice.pub")"]
  bob: ["$(cat "$PIGWF_HOME/keys/bob.pub")"]
policies:
  - cluster: pg-test
    runbook: "*"
    approvers: [alice, bob]
    four_eyes: true
    quorum: 1
YML
  mv "$PIGWF_HOME/approvals.yml.tmp" "$PIGWF_HOME/approvals.yml"
fi
"$BIN/pigwf" approvals check --cluster pg-test

if alive "$PIGWF_HOME/worker.pid"; then
  echo "demo: worker already running (pid $(cat "$PIGWF_HOME/worker.pid"))"
else
  setsid "$BIN/pigwf" worker --make-current >"$PIGWF_HOME/worker.log" 2>&1 < /dev/null &
  sleep 0.3
  pgrep -f "^$BIN/pigwf worker" | head -n1 > "$PIGWF_HOME/worker.pid"
  echo "demo: worker started (pid $(cat "$PIGWF_HOME/worker.pid"), log $PIGWF_HOME/worker.log)"
fi

"$BIN/pigwf" start node-init --cluster pg-test --wait
"$BIN/pigwf" start pg-cluster-create --cluster pg-test --wait
"$BIN/pigwf" start pg-service --cluster pg-test --wait
"$BIN/pigwf" ha list --cluster pg-test
cat <<MSG

demo: done. Look at the runs in the Temporal Web UI:
  http://127.0.0.1:8233/namespaces/default/workflows?query=PgCluster%3D%27pg-test%27
  bin/pigwf status pg-cluster-create/pg-test               # the same from the terminal
  bin/pigwf start pg-cluster-create --cluster pg-test --wait  # again: every step unchanged
  PGPASSWORD=DBUser.Meta psql -h 10.213.0.11 -U dbuser_meta meta   # the inventory's user and database
  PGPASSWORD=DBUser.Meta psql -h 10.213.0.12 -p 5433 -U dbuser_meta meta   # through HAProxy: 5433 primary, 5434 replica (any member's address)
  curl -s http://10.213.0.12:9101/stats                    # HAProxy's stats page (and /metrics)
  bin/pigwf start switchover --cluster pg-test --as alice --wait &   # then: bin/pigwf pending; bin/pigwf approve switchover/pg-test --by bob
                                                           # (four eyes: alice asked, so alice's own approval is refused)
Temporal requires a client certificate; pigwf uses its own from $PIGWF_HOME, the temporal CLI needs them named:
  bin/temporal workflow list --address 127.0.0.1:7233 --tls-ca-path $PIGWF_HOME/ca/ca.crt \\
    --tls-cert-path $PIGWF_HOME/ca/clients/pigwf-cli.crt --tls-key-path $PIGWF_HOME/ca/clients/pigwf-cli.key
Stop everything with: make demo-down
MSG
