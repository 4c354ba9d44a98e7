// Command pigwf-temporal runs a single-process Temporal server (frontend,
// history, matching and worker services) with the Temporal Web UI, for
// pigwf. By default it is a development server: state in a SQLite file
// (--db-filename) so a restart keeps workflow history, or in memory. With
// --db postgres it keeps its state in PostgreSQL (a database for execution
// state and one for visibility, set up by `pigwf-temporal schema setup`),
// with several history shards: a production-style single server. See
// README.md in this directory.
//
// It is built only from the public packages of go.temporal.io/server and
// github.com/temporalio/ui-server/v2.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// stopTimeout bounds a clean shutdown; past it the process exits anyway so
// that a wedged service never leaves a dev machine with a hung process.
const stopTimeout = 15 * time.Second

// readyTimeout bounds the time from start until the ready line.
const readyTimeout = 60 * time.Second

func main() {
	if len(os.Args) > 1 && os.Args[1] == "schema" {
		mainSchema()
		return
	}
	opts, err := parseFlags(os.Args[0], os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pigwf-temporal: %v\n", err)
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		fmt.Fprintf(os.Stderr, "pigwf-temporal: %v\n", err)
		os.Exit(1)
	}
}

// mainSchema is `pigwf-temporal schema setup|update`.
func mainSchema() {
	opts, err := parseSchemaFlags(os.Args[0], os.Args[2:])
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pigwf-temporal: %v\n", err)
		os.Exit(2)
	}
	if err := runSchema(opts, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "pigwf-temporal: schema %s: %v\n", opts.Action, err)
		os.Exit(1)
	}
}

func run(opts *options) error {
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()

	started := time.Now()
	srv, err := startDevServer(opts)
	if err != nil {
		return err
	}

	readyCtx, cancel := context.WithTimeout(ctx, readyTimeout)
	err = srv.bootstrap(readyCtx)
	cancel()
	if err != nil {
		srv.stop(stopTimeout)
		if ctx.Err() != nil {
			return nil // interrupted while starting up
		}
		return err
	}

	// This line is the readiness contract for scripts and tests: print it
	// only once clients can start workflows with pigwf's search attributes.
	fmt.Printf("pigwf-temporal ready grpc=%s ui=%s\n", srv.grpcAddr, srv.uiDisplay())
	srv.logger.Info(fmt.Sprintf("pigwf-temporal ready in %v", time.Since(started).Round(time.Millisecond)))

	select {
	case <-ctx.Done():
	case err := <-srv.uiErr:
		srv.stop(stopTimeout)
		return fmt.Errorf("web UI server stopped: %w", err)
	}
	// Restore default signal handling: a second Ctrl-C kills the process
	// immediately if the clean stop below hangs.
	stopSignals()
	if !srv.stop(stopTimeout) {
		return fmt.Errorf("server did not stop within %v", stopTimeout)
	}
	return nil
}
