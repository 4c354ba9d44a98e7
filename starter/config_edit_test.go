package starter

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/pigwf/pigwf/ha-agent/dcs"
)

// $VISUAL, then $EDITOR, then vi; words split at white space, never by a shell; the file last.
func TestEditorCommand(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{"VISUAL": "code --wait", "EDITOR": "nano"}, []string{"code", "--wait", "/tmp/f.yaml"}},
		{map[string]string{"VISUAL": "  ", "EDITOR": "nano"}, []string{"nano", "/tmp/f.yaml"}},
		{map[string]string{"EDITOR": "vim -c 'set ft=yaml'"}, []string{"vim", "-c", "'set", "ft=yaml'", "/tmp/f.yaml"}},
		{map[string]string{}, []string{"vi", "/tmp/f.yaml"}},
	} {
		if got := EditorCommand(func(k string) string { return c.env[k] }, "/tmp/f.yaml"); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v: %q, want %q", c.env, got, c.want)
		}
	}
}

// The editor gets a private file holding show's YAML; what it saves is returned, and the file
// stays for the caller; a failing editor leaves no file and no edit.
func TestEditConfigFile(t *testing.T) {
	read := ConfigRead{Cluster: "pg-test", Revision: 9, Config: sampleConfig()}
	want, err := RenderConfigYAML(read)
	if err != nil {
		t.Fatal(err)
	}
	path, edited, err := EditConfigFile(read, func(p string) error {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("the file to edit has mode %v, want 0600", st.Mode().Perm())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if string(b) != string(want) {
			t.Errorf("the editor saw:\n%s\nwant show's YAML:\n%s", b, want)
		}
		return os.WriteFile(p, []byte(strings.Replace(string(b), "leader_timeout_ms: 1000", "leader_timeout_ms: 2000", 1)), 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	if !strings.Contains(string(edited), "leader_timeout_ms: 2000") {
		t.Errorf("edited:\n%s", edited)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the edited file is gone: %v", err)
	}

	var seen string
	_, _, err = EditConfigFile(read, func(p string) error { seen = p; return errors.New("exit status 1") })
	if err == nil || !strings.Contains(err.Error(), "nothing written") {
		t.Errorf("a failing editor: %v", err)
	}
	if _, err := os.Stat(seen); !os.IsNotExist(err) {
		t.Errorf("a failed edit left %s (%v)", seen, err)
	}
}

// An edit is written by compare-and-swap on the revision read before the editor opened: a
// write made while the user edits refuses the edit instead of being overwritten; edited again
// from a fresh read, it is written.
func testConfigEdit(t *testing.T, url string) {
	agent := newSettingsAgent(t)
	h, st, rev0 := configCluster(t, url, "pg-edit", agent, map[string]string{"work_mem": "4MB"})
	ctx := testCtx(t)
	edit := func(from, to string, meanwhile func() error) error {
		read, err := h.ReadConfig(ctx)
		if err != nil {
			return err
		}
		path, edited, err := EditConfigFile(read, func(p string) error {
			if err := meanwhile(); err != nil {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if !strings.Contains(string(b), from) {
				t.Errorf("the file lacks %q:\n%s", from, b)
			}
			return os.WriteFile(p, []byte(strings.Replace(string(b), from, to, 1)), 0o600)
		})
		if err != nil {
			return err
		}
		defer os.Remove(path)
		next, problems := DecodeConfigYAML(path, edited)
		_, err = h.ApplyConfig(ctx, read, next, problems, ConfigApplyOptions{Out: &strings.Builder{}})
		return err
	}
	theirs := func() error {
		_, err := st.PutConfig(ctx, []byte(`{"leader_timeout_ms": 1000}`), rev0)
		return err
	}
	if err := edit("work_mem: 4MB", "work_mem: 64MB", theirs); !errors.Is(err, dcs.ErrChanged) {
		t.Fatalf("edit with a write meanwhile: %v, want refused", err)
	}
	if got, _ := storedConfig(t, st); got.LeaderTimeoutMs != 1000 || got.Postgresql.Parameters != nil {
		t.Errorf("stored %+v, want the concurrent write kept", got)
	}
	if err := edit("leader_timeout_ms: 1000", "leader_timeout_ms: 2000", func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := storedConfig(t, st); got.LeaderTimeoutMs != 2000 {
		t.Errorf("stored %+v, want the edit written", got)
	}
}
