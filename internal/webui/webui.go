// Package webui builds links into the Temporal Web UI. Every link pigwf prints or sends (the CLI,
// notifications, ChatOps replies) is built here, so each one escapes workflow IDs the same way:
// pigwf's IDs are "<runbook>/<cluster>", and the UI's router only finds a run whose ID has its
// "/" escaped ("switchover%2Fpg-test"); the unescaped form opens the UI's 404 page.
package webui

import (
	"net/url"
	"strings"
)

// RunTab is the tab of a run's page a link opens: User Metadata shows the run's summary, its
// Markdown details and the details the workflow keeps current (the step running now, or what an
// approval waits for), which is what a person opening a link from pigwf wants to read first.
const RunTab = "user-metadata"

// RunURL is a run's page in the Web UI at base (a trailing slash is dropped):
// <base>/namespaces/<namespace>/workflows/<workflowID>/<runID>/user-metadata, each part
// path-escaped. With no runID it is <base>/namespaces/<namespace>/workflows/<workflowID>, which
// the UI redirects to the workflow's latest run.
func RunURL(base, namespace, workflowID, runID string) string {
	u := workflowsURL(base, namespace) + "/" + url.PathEscape(workflowID)
	if runID == "" {
		return u
	}
	return u + "/" + url.PathEscape(runID) + "/" + RunTab
}

// ListURL is the Web UI's list of runs in namespace filtered by a visibility query
// (e.g. `RunState="waiting for approval"`): <base>/namespaces/<namespace>/workflows?query=<query>,
// the query form-encoded. An empty query lists every run.
func ListURL(base, namespace, query string) string {
	u := workflowsURL(base, namespace)
	if query == "" {
		return u
	}
	return u + "?query=" + url.QueryEscape(query)
}

func workflowsURL(base, namespace string) string {
	return strings.TrimRight(base, "/") + "/namespaces/" + url.PathEscape(namespace) + "/workflows"
}
