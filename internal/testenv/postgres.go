package testenv

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pigwf/pigwf/ha-agent/pgwire"
	"github.com/pigwf/pigwf/internal/libpq"
	"github.com/pigwf/pigwf/internal/pgparams"
	"github.com/pigwf/pigwf/pki"
)

// EnvPGBin names PostgreSQL's binaries directory (default DefaultPGBin).
const EnvPGBin = "PIGWF_PG_BIN"

// DefaultPGBin is Debian's PostgreSQL 15, which `make deps` installs.
const DefaultPGBin = "/usr/lib/postgresql/15/bin"

// safePath is the rule for a path written into postgresql.conf and given to PostgreSQL's tools.
var safePath = regexp.MustCompile(`^/[A-Za-z0-9/._-]+$`)

// Postgres is a private PostgreSQL on 127.0.0.1, run by the postgres OS user (PostgreSQL refuses
// root) in a directory of its own: TCP only with TLS (a certificate from the test's CA) and
// scram-sha-256 passwords; the superuser only through the Unix socket, by peer authentication.
type Postgres struct {
	Port         int
	User         string // the login role CreateUser made, "" before
	PasswordFile string // its password, 0600, readable by this (root) process only
	CAFile       string // the CA the server's certificate chains to
	bin, dir     string
	uid, gid     int
}

// StartPostgres initdb's a cluster in dir (which it creates, for the postgres OS user), gives it
// a server certificate from ca for 127.0.0.1, and starts it on a free port.
func StartPostgres(dir string, ca pki.CA) (*Postgres, error) {
	bin := os.Getenv(EnvPGBin)
	if bin == "" {
		bin = DefaultPGBin
	}
	if _, err := os.Stat(filepath.Join(bin, "postgres")); err != nil {
		return nil, fmt.Errorf("no PostgreSQL in %s (set %s; `make deps` installs PostgreSQL 15): %w", bin, EnvPGBin, err)
	}
	if !safePath.MatchString(dir) {
		return nil, fmt.Errorf("PostgreSQL directory %q: want an absolute path of letters, digits, '/', '.', '_' and '-'", dir)
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL runs as the postgres OS user: %w", err)
	}
	pg := &Postgres{bin: bin, dir: dir, CAFile: ca.Files().CA}
	pg.uid, _ = strconv.Atoi(u.Uid)
	pg.gid, _ = strconv.Atoi(u.Gid)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chown(dir, pg.uid, pg.gid); err != nil {
		return nil, err
	}

	// initdb wants a superuser password for password authentication on TCP; nobody uses it
	// (the superuser is refused on TCP below), so it lives only for initdb.
	superPW := filepath.Join(dir, "initdb.pw")
	pw, err := newPassword()
	if err != nil {
		return nil, err
	}
	if err := pg.writeOwned(superPW, pw+"\n"); err != nil {
		return nil, err
	}
	out, err := pg.cmd(filepath.Join(bin, "initdb"), "-D", pg.dataDir(), "-U", "postgres", "--auth-local=peer",
		"--auth-host=scram-sha-256", "--pwfile="+superPW).CombinedOutput()
	_ = os.Remove(superPW)
	if err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}

	// The server reads its files as the postgres OS user: a copy of the CA's certificate too.
	server := pki.Files{CA: filepath.Join(dir, "ca.crt"), Cert: filepath.Join(dir, "server.crt"), Key: filepath.Join(dir, "server.key")}
	caPEM, err := os.ReadFile(ca.Files().CA)
	if err != nil {
		return nil, err
	}
	if err := pg.writeOwned(server.CA, string(caPEM)); err != nil {
		return nil, err
	}
	if _, err := ca.EnsurePair(pki.Request{CommonName: "temporal-postgres", IPs: []string{"127.0.0.1"}, Usage: pki.Server}, server.Cert, server.Key, time.Now()); err != nil {
		return nil, fmt.Errorf("issuing PostgreSQL's certificate: %w", err)
	}
	for _, f := range []string{server.Cert, server.Key} {
		if err := os.Chown(f, pg.uid, pg.gid); err != nil {
			return nil, err
		}
	}
	if pg.Port, err = FreePort(); err != nil {
		return nil, err
	}
	settings := libpq.ServerSettings(server)
	for k, v := range map[string]string{
		"listen_addresses":        "127.0.0.1",
		"port":                    strconv.Itoa(pg.Port),
		"unix_socket_directories": dir,
		"password_encryption":     "scram-sha-256",
		// Each service of a pigwf-temporal process has its own pools, up to 20 connections a
		// database (4 services x 2 databases x 20).
		"max_connections": "250",
		// As the pgctl tests: the segments stay in the data directory, not the machine's /dev/shm.
		"dynamic_shared_memory_type": "mmap",
	} {
		settings[k] = v
	}
	for k, v := range settings {
		if p := pgparams.ValueProblem(v); p != "" {
			return nil, fmt.Errorf("postgresql.conf %s: %s", k, p)
		}
	}
	conf, err := os.OpenFile(filepath.Join(pg.dataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = conf.WriteString("\n" + pgparams.Render([]string{"pigwf test harness: a private PostgreSQL for Temporal"}, settings))
	if cerr := conf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("postgresql.conf: %w", err)
	}
	// TCP only with TLS and a password, and never as the superuser.
	hba := "# pigwf test harness\nlocal all postgres peer\nhostssl all postgres 0.0.0.0/0 reject\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
	if err := pg.writeOwned(filepath.Join(pg.dataDir(), "pg_hba.conf"), hba); err != nil {
		return nil, err
	}
	if err := pg.Start(); err != nil {
		return nil, err
	}
	return pg, nil
}

func (pg *Postgres) dataDir() string { return filepath.Join(pg.dir, "data") }
func (pg *Postgres) logFile() string { return filepath.Join(pg.dir, "postgresql.log") }

// Start starts the server and waits until it accepts connections.
func (pg *Postgres) Start() error {
	out, err := pg.cmd(filepath.Join(pg.bin, "pg_ctl"), "start", "-w", "-t", "60", "-D", pg.dataDir(), "-l", pg.logFile()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, pg.LogTail())
	}
	return nil
}

// Stop stops the server (fast mode: open sessions are ended).
func (pg *Postgres) Stop() error {
	out, err := pg.cmd(filepath.Join(pg.bin, "pg_ctl"), "stop", "-w", "-m", "fast", "-D", pg.dataDir()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// LogTail is the end of the server's log, for failure messages.
func (pg *Postgres) LogTail() string {
	data, _ := os.ReadFile(pg.logFile())
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// loginRole is the rule for a role name: it is written into SQL (quoted as well).
var loginRole = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CreateUser makes a login role that may create databases, with a new random password written to
// a 0600 file in the directory (PasswordFile). The statement goes to psql on its standard input,
// never its command line.
func (pg *Postgres) CreateUser(name string) error {
	if !loginRole.MatchString(name) {
		return fmt.Errorf("role name %q: want lower-case letters, digits and '_'", name)
	}
	pw, err := newPassword()
	if err != nil {
		return err
	}
	file := filepath.Join(filepath.Dir(pg.dir), name+".pgpass")
	if err := os.WriteFile(file, []byte(pw+"\n"), 0o600); err != nil {
		return err
	}
	sql := fmt.Sprintf("CREATE ROLE %s LOGIN CREATEDB PASSWORD %s;\n", pgwire.QuoteIdent(name), pgwire.QuoteLiteral(pw))
	cmd := pg.cmd(filepath.Join(pg.bin, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", pg.dir, "-p", strconv.Itoa(pg.Port), "-U", "postgres", "-d", "postgres", "-f", "-")
	cmd.Stdin = strings.NewReader(sql)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("creating role %s: %w\n%s", name, err, out)
	}
	pg.User, pg.PasswordFile = name, file
	return nil
}

// Kill ends every process of the cluster at once (the postmaster first), for a cleanup after a
// failed test; Stop is the orderly way.
func (pg *Postgres) Kill() {
	data, err := os.ReadFile(filepath.Join(pg.dataDir(), "postmaster.pid"))
	if err != nil {
		return
	}
	first, _, _ := strings.Cut(string(data), "\n")
	if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pid > 1 {
		_ = syscall.Kill(pid, syscall.SIGQUIT) // immediate shutdown: the postmaster ends its children
	}
}

func (pg *Postgres) cmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(pg.uid), Gid: uint32(pg.gid)}}
	cmd.Env = []string{"HOME=" + pg.dir, "LC_ALL=C", "PATH=/usr/bin:/bin"}
	cmd.Dir = pg.dir
	return cmd
}

// writeOwned writes a 0600 file owned by the postgres OS user.
func (pg *Postgres) writeOwned(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	return os.Chown(path, pg.uid, pg.gid)
}

// newPassword is 24 random bytes, URL-safe base64: nothing in it needs quoting anywhere.
func newPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", errors.New("no randomness for a password: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
