package workflows

import (
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// TypeName spells every type as the server's --type and pigwf-temporal's --search-attribute
// read it.
func TestSearchAttributeTypeName(t *testing.T) {
	for typ, want := range map[enumspb.IndexedValueType]string{
		enumspb.INDEXED_VALUE_TYPE_KEYWORD:      "Keyword",
		enumspb.INDEXED_VALUE_TYPE_TEXT:         "Text",
		enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST: "KeywordList",
		enumspb.INDEXED_VALUE_TYPE_DATETIME:     "Datetime",
	} {
		if got := (SearchAttribute{Name: "X", Type: typ}).Flag(); got != "X="+want {
			t.Errorf("%v: Flag %q, want X=%s", typ, got, want)
		}
	}
	for _, sa := range CustomSearchAttributes() {
		if sa.Name == "" || sa.Type == enumspb.INDEXED_VALUE_TYPE_UNSPECIFIED {
			t.Errorf("incomplete attribute %+v", sa)
		}
	}
}

// SummaryAttr writes no character tsvector's literal syntax reads (':', a quote, a backslash),
// and keeps the rest as it is.
func TestSummaryAttrIsTsvectorSafe(t *testing.T) {
	for i, c := range []struct{ in, want string }{
		{"node-init pg-test: 3 nodes, requested by root", "node-init pg-test \u2014 3 nodes, requested by root"},
		{"switchover pg-test: pg-test-1 → pg-test-2", "switchover pg-test \u2014 pg-test-1 → pg-test-2"},
		{"restore to 2026-12-01T02:03:04Z", "restore to 2026-12-01T02\u223603\u223604Z"},
		{`o'brien C:\data`, "o\u2019brien C\u2236\u29f5data"},
		{"plain words", "plain words"},
	} {
		upd := SummaryAttr(c.in)
		got, ok := temporal.NewSearchAttributes(upd).GetString(SearchAttrSummary)
		if !ok || got != c.want {
			t.Errorf("%d: SummaryAttr(%q) = %q, want %q", i+1, c.in, got, c.want)
		}
		if strings.ContainsAny(got, `:'\`) {
			t.Errorf("%d: %q keeps a character tsvector reads", i+1, got)
		}
	}
}
