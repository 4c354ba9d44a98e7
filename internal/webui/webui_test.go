package webui

import "testing"

func TestRunURL(t *testing.T) {
	for _, tc := range []struct{ base, ns, id, run, want string }{
		{"http://127.0.0.1:8233", "default", "switchover/pg-test", "0199a0e4-7c1b-7d2e-9f00-5a1b2c3d4e5f",
			"http://127.0.0.1:8233/namespaces/default/workflows/switchover%2Fpg-test/0199a0e4-7c1b-7d2e-9f00-5a1b2c3d4e5f/user-metadata"},
		{"http://127.0.0.1:8233/", "default", "node-init/pg-test", "r1",
			"http://127.0.0.1:8233/namespaces/default/workflows/node-init%2Fpg-test/r1/user-metadata"},
		{"https://temporal.example.com/ui", "ops team", "pg-cluster-create/pg-meta", "r2",
			"https://temporal.example.com/ui/namespaces/ops%20team/workflows/pg-cluster-create%2Fpg-meta/r2/user-metadata"},
		{"http://127.0.0.1:8233", "default", "switchover/pg-test", "",
			"http://127.0.0.1:8233/namespaces/default/workflows/switchover%2Fpg-test"},
	} {
		if got := RunURL(tc.base, tc.ns, tc.id, tc.run); got != tc.want {
			t.Errorf("RunURL(%q, %q, %q, %q)\n got %s\nwant %s", tc.base, tc.ns, tc.id, tc.run, got, tc.want)
		}
	}
}

func TestListURL(t *testing.T) {
	for _, tc := range []struct{ base, ns, query, want string }{
		{"http://127.0.0.1:8233", "default", `RunState="waiting for approval"`,
			"http://127.0.0.1:8233/namespaces/default/workflows?query=RunState%3D%22waiting+for+approval%22"},
		{"http://127.0.0.1:8233/", "default", `PgCluster='pg-test'`,
			"http://127.0.0.1:8233/namespaces/default/workflows?query=PgCluster%3D%27pg-test%27"},
		{"http://127.0.0.1:8233", "default", "", "http://127.0.0.1:8233/namespaces/default/workflows"},
	} {
		if got := ListURL(tc.base, tc.ns, tc.query); got != tc.want {
			t.Errorf("ListURL(%q, %q, %q)\n got %s\nwant %s", tc.base, tc.ns, tc.query, got, tc.want)
		}
	}
}
