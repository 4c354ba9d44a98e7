package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/pigwf/pigwf/internal/devtls"
)

// ProdOptions tune StartProd.
type ProdOptions struct {
	Shards    int    // history shards; 0 means DefaultProdShards
	Retention string // `pigwf temporal setup --retention`; "" keeps that command's default
}

// DefaultProdShards is pigwf-temporal's own default with PostgreSQL.
const DefaultProdShards = 4

// ProdEnv is Temporal set up the way production runs it, on this machine: a private PostgreSQL
// (TLS, scram-sha-256, a generated password in a 0600 file) holding the execution and
// visibility databases, its schema set up by `pigwf-temporal schema setup`, pigwf-temporal on
// it with several history shards, mutual TLS on the frontend from a CA of its own and the Web
// UI, and the namespace and search attributes made by `pigwf temporal setup`. The server can be
// stopped and started again on the same database mid-test (StopServer, StartServer, Restart);
// its address and ports stay the same. Env's helpers (StartWorker, Pigwf, Dial...) work on it.
type ProdEnv struct {
	*Env
	PG     *Postgres
	Shards int
	// SetupOutput is what `pigwf temporal setup` printed at the start.
	SetupOutput string

	dir    string
	bin    string   // pigwf-temporal
	dbArgs []string // its --db and --pg-* flags
	args   []string // its whole command line, the same at every start
	srv    *serverProcess
}

// StartProd stands a ProdEnv up (about 10 s: initdb, the schema, the server). Stop (or Env.Stop)
// ends the server and PostgreSQL and removes everything.
func StartProd(o ProdOptions) (p *ProdEnv, err error) {
	bin, pigwf := os.Getenv(EnvTemporalBin), os.Getenv(EnvPigwfBin)
	if bin == "" || pigwf == "" {
		return nil, fmt.Errorf("%s and %s must name pigwf-temporal and pigwf (make build makes them)", EnvTemporalBin, EnvPigwfBin)
	}
	if o.Shards == 0 {
		o.Shards = DefaultProdShards
	}
	dir, err := os.MkdirTemp("", "pigwf-prodtemporal-")
	if err != nil {
		return nil, err
	}
	p = &ProdEnv{Shards: o.Shards, dir: dir, bin: bin}
	defer func() {
		if err != nil {
			p.stopAll()
		}
	}()
	// PostgreSQL (the postgres OS user) must reach its directory inside; nothing else here is
	// readable to it.
	if err := os.Chmod(dir, 0o711); err != nil {
		return p, err
	}
	layout := devtls.Layout{Home: filepath.Join(dir, "home")}
	if _, err := devtls.Ensure(layout, "127.0.0.1", time.Now()); err != nil {
		return p, fmt.Errorf("while issuing the test server's certificates: %w", err)
	}
	if p.PG, err = StartPostgres(filepath.Join(dir, "pg"), layout.CA()); err != nil {
		return p, err
	}
	if err := p.PG.CreateUser("temporal"); err != nil {
		return p, err
	}
	p.dbArgs = []string{"--db", "postgres", "--pg-host", "127.0.0.1", "--pg-port", strconv.Itoa(p.PG.Port), "--pg-user", p.PG.User,
		"--pg-password-file", p.PG.PasswordFile, "--pg-sslmode", "verify-full", "--pg-ca", p.PG.CAFile}
	if out, err := p.Schema("setup"); err != nil {
		return p, fmt.Errorf("pigwf-temporal schema setup: %w\n%s", err, out)
	}

	port, uiPort, err := serverPorts()
	if err != nil {
		return p, err
	}
	p.args = append([]string{"--port", strconv.Itoa(port), "--ui-port", strconv.Itoa(uiPort), "--num-history-shards", strconv.Itoa(o.Shards),
		"--log-level", "warn", "--log-file", filepath.Join(dir, "temporal.log")}, p.dbArgs...)
	p.args = append(p.args, serverTLSArgs(layout)...)
	p.Env = &Env{TemporalAddr: fmt.Sprintf("127.0.0.1:%d", port), PigwfBin: pigwf, TLS: layout, stop: p.stopAll}
	if err := p.StartServer(); err != nil {
		return p, err
	}

	setup := []string{"temporal", "setup"}
	if o.Retention != "" {
		setup = append(setup, "--retention", o.Retention)
	}
	if p.SetupOutput, err = p.run(pigwf, append(p.GlobalArgs(), setup...)...); err != nil {
		return p, fmt.Errorf("pigwf temporal setup: %w\n%s", err, p.SetupOutput)
	}
	return p, nil
}

// Schema runs `pigwf-temporal schema ACTION` (setup or update) on the env's databases and returns
// what it printed.
func (p *ProdEnv) Schema(action string) (string, error) {
	return p.run(p.bin, append([]string{"schema", action}, p.dbArgs...)...)
}

// StartServer starts pigwf-temporal (again) and waits until it is ready.
func (p *ProdEnv) StartServer() error {
	if p.srv != nil {
		return errors.New("the Temporal server is running already")
	}
	srv, err := startServer(p.bin, p.args, os.Stderr)
	if err != nil {
		return fmt.Errorf("%w (its log: %s)", err, filepath.Join(p.dir, "temporal.log"))
	}
	p.srv, p.UIURL = srv, srv.ui
	return nil
}

// StopServer stops pigwf-temporal with SIGTERM, as a service manager does, and waits for it.
func (p *ProdEnv) StopServer() error {
	if p.srv == nil {
		return nil
	}
	stopped := p.srv.stop(syscall.SIGTERM)
	p.srv = nil
	if !stopped {
		return fmt.Errorf("the Temporal server did not stop within %v of SIGTERM (killed)", serverStopTimeout)
	}
	return nil
}

// Restart stops the server and starts it again on the same database, ports and certificates.
func (p *ProdEnv) Restart() error {
	if err := p.StopServer(); err != nil {
		return err
	}
	return p.StartServer()
}

// ServerLog is the path of pigwf-temporal's log (JSON lines, warnings and errors).
func (p *ProdEnv) ServerLog() string { return filepath.Join(p.dir, "temporal.log") }

// stopAll ends the server and PostgreSQL and removes the directory.
func (p *ProdEnv) stopAll() {
	_ = p.StopServer()
	if p.PG != nil {
		if err := p.PG.Stop(); err != nil {
			p.PG.Kill()
		}
	}
	_ = os.RemoveAll(p.dir)
}

// run runs a command with PIGWF_HOME in the env's directory and returns its combined output.
func (p *ProdEnv) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(temporalCLIEnv(), "PIGWF_HOME="+filepath.Join(p.dir, "home"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}
