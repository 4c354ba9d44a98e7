package main

import (
	"reflect"
	"testing"
)

// pigwf dev registers every search attribute pigwf's runs set, with its type.
func TestDevServerArgs(t *testing.T) {
	got := devServerArgs("/opt/pigwf/bin/pigwf-temporal", "127.0.0.1", 7233, 8233, "/root/.pigwf/temporal.db")
	want := []string{"/opt/pigwf/bin/pigwf-temporal", "--ip", "127.0.0.1", "--port", "7233", "--ui-port", "8233", "--db-filename", "/root/.pigwf/temporal.db",
		"--search-attribute", "PgCluster=Keyword",
		"--search-attribute", "Runbook=Keyword",
		"--search-attribute", "RunState=Keyword",
		"--search-attribute", "RunSummary=Text",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}
