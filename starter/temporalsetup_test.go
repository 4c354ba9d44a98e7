package starter

import (
	"errors"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/pigwf/pigwf/workflows"
)

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "1d": 24 * time.Hour, "720h": 720 * time.Hour, "36h": 36 * time.Hour} {
		got, err := ParseRetention(in)
		if err != nil || got != want {
			t.Errorf("ParseRetention(%q) = %v, %v; want %v", in, got, err, want)
		}
		// What FormatRetention writes reads back the same.
		if back, err := ParseRetention(FormatRetention(got)); err != nil || back != got {
			t.Errorf("FormatRetention(%v) = %q reads back as %v, %v", got, FormatRetention(got), back, err)
		}
	}
	for _, in := range []string{"", "0d", "-3d", "12h", "30 days", "d", "1.5d", "thirty"} {
		if d, err := ParseRetention(in); err == nil {
			t.Errorf("ParseRetention(%q) = %v, want an error", in, d)
		}
	}
}

func TestPlanNamespace(t *testing.T) {
	desc := func(ttl time.Duration) *workflowservice.DescribeNamespaceResponse {
		return &workflowservice.DescribeNamespaceResponse{Config: &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(ttl)}}
	}
	day := 24 * time.Hour
	for _, c := range []struct {
		desc     *workflowservice.DescribeNamespaceResponse
		want     time.Duration
		action   namespaceAction
		haveDays time.Duration
	}{
		{nil, 30 * day, namespaceRegister, 0},
		{desc(day), 30 * day, namespaceUpdateRetention, day},
		{desc(30 * day), 30 * day, namespaceOK, 30 * day},
		{desc(30 * day), 7 * day, namespaceUpdateRetention, 30 * day},
	} {
		action, have := planNamespace(c.desc, c.want)
		if action != c.action || have != c.haveDays {
			t.Errorf("planNamespace(%v, %v) = %v, %v; want %v, %v", c.desc, c.want, action, have, c.action, c.haveDays)
		}
	}
}

func TestPlanSearchAttributes(t *testing.T) {
	want := workflows.CustomSearchAttributes()
	have := map[string]enumspb.IndexedValueType{}
	// None registered: all added.
	add, ok, err := planSearchAttributes("default", have, want)
	if err != nil || len(add) != len(want) || len(ok) != 0 {
		t.Fatalf("empty namespace: add %v ok %v err %v", add, ok, err)
	}
	// Some registered, plus one of another program: only the missing ones added, the other left.
	have[want[0].Name] = want[0].Type
	have["CustomerId"] = enumspb.INDEXED_VALUE_TYPE_INT
	add, ok, err = planSearchAttributes("default", have, want)
	if err != nil || len(add) != len(want)-1 || len(ok) != 1 || ok[0] != want[0].Name {
		t.Fatalf("one present: add %v ok %v err %v", add, ok, err)
	}
	if _, again := add[want[0].Name]; again {
		t.Errorf("%s is added again", want[0].Name)
	}
	if _, other := add["CustomerId"]; other {
		t.Error("an attribute pigwf does not use was touched")
	}
	// One with another type: refused, naming both types.
	have[want[0].Name] = enumspb.INDEXED_VALUE_TYPE_INT
	_, _, err = planSearchAttributes("default", have, want)
	var te *AttributeTypeError
	if !errors.As(err, &te) || te.Name != want[0].Name || !strings.Contains(err.Error(), "as Int, but pigwf's runs set it as "+want[0].TypeName()) {
		t.Errorf("type conflict: %v", err)
	}
}

func TestSetupItemString(t *testing.T) {
	if got := (SetupItem{What: "namespace default", Changed: true, Detail: "retention 1d -> 30d"}).String(); got != "namespace default: retention 1d -> 30d (changed)" {
		t.Errorf("changed item: %q", got)
	}
	if got := (SetupItem{What: "search attribute RunState", Detail: "Keyword"}).String(); !strings.HasSuffix(got, "(unchanged)") {
		t.Errorf("unchanged item: %q", got)
	}
}
