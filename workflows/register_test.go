package workflows

import (
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
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
