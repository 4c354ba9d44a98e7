package pgwire

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// realServer runs a throw-away PostgreSQL 15 as the postgres user, on a unix socket only.
func realServer(t *testing.T) (socketDir string, port int) {
	t.Helper()
	bin := "/usr/lib/postgresql/15/bin"
	if os.Geteuid() != 0 {
		t.Skip("needs root to run PostgreSQL as postgres")
	}
	if _, err := os.Stat(bin + "/postgres"); err != nil {
		t.Skip("needs postgresql-15: run `make deps`")
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Skip("no postgres user")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // t.TempDir's parent is root-only; postgres must traverse it
	os.Chown(dir, uid, gid)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	run := func(args ...string) {
		cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	data := filepath.Join(dir, "data")
	// trust on a socket in a private directory: the test process (root) connects as postgres.
	run(bin+"/initdb", "-D", data, "-U", "postgres", "--auth-local=trust")
	run(bin+"/pg_ctl", "-D", data, "-w", "-l", filepath.Join(dir, "log"), "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=''", port, dir), "start")
	t.Cleanup(func() {
		exec.Command("runuser", "-u", "postgres", "--", bin+"/pg_ctl", "-D", data, "-m", "immediate", "stop").Run()
	})
	return dir, port
}

func TestQueryAgainstPostgres(t *testing.T) {
	dir, port := realServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Connect(ctx, Config{Network: "unix", Address: SocketPath(dir, port), User: "postgres", Database: "postgres",
		ApplicationName: "pgwire-test", Options: map[string]string{"statement_timeout": "0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.BackendPID() == 0 {
		t.Error("no backend PID")
	}
	res, err := c.Query(ctx, "SELECT 1 AS a, NULL::text AS b; SELECT current_setting('application_name'), current_setting('statement_timeout'); CREATE TEMP TABLE t(x int)")
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Columns[0] != "a" || *res[0].Rows[0][0] != "1" || res[0].Rows[0][1] != nil {
		t.Fatalf("first result = %+v", res[0])
	}
	if *res[1].Rows[0][0] != "pgwire-test" || *res[1].Rows[0][1] != "0" || res[2].Tag != "CREATE TABLE" {
		t.Errorf("settings/tag = %v %v %q", *res[1].Rows[0][0], *res[1].Rows[0][1], res[2].Tag)
	}
	// A server error carries its SQLSTATE, and the connection stays usable.
	if err := c.Exec(ctx, "SELECT pg_create_physical_replication_slot('s1'); SELECT pg_create_physical_replication_slot('s1')"); SQLState(err) != "42710" {
		t.Errorf("duplicate slot: SQLSTATE %q (%v)", SQLState(err), err)
	}
	if res, err := c.Query(ctx, "SELECT count(*) FROM pg_replication_slots"); err != nil || *res[0].Rows[0][0] != "1" {
		t.Errorf("after the error: %v %v", res, err)
	}
	if QuoteLiteral("it's") != "'it''s'" || QuoteIdent(`a"b`) != `"a""b"` {
		t.Error("quoting")
	}
}
