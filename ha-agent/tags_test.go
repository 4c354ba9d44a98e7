package haagent

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// The one rule for custom tags: plain names, printable values, and no name that is a switch, a
// Patroni tag pigwf ignores, or a near miss of one.
func TestCustomTagProblem(t *testing.T) {
	for i, c := range []struct {
		key, value string
		bad        string // part of the problem; "" = fine
	}{
		{"dc", "east", ""},                              // 1
		{"rack.zone-1_a", "r 12 / blue", ""},            // 2
		{"nofailover", "true", "is a switch"},           // 3
		{"clonefrom", "true", "does not implement"},     // 4
		{"nofailovr", "true", "did you mean"},           // 5: would silently be a custom tag
		{"noloadbalanse", "true", "one or two letters"}, // 6
		{"1dc", "east", "not a tag name"},               // 7
		{"d c", "east", "not a tag name"},               // 8
		{"dc", "", "no value"},                          // 9
		{"dc", "east\nwest", "U+000A"},                  // 10
		{"dc", "\u202eeast", "U+202E"},                  // 11: bidirectional override
		{"dc", strings.Repeat("x", 257), "bytes long"},  // 12
		{strings.Repeat("d", 64), "east", "not a tag name"},
		{"db_password", "x", "are public"}, // 13
	} {
		p, fix := CustomTagProblem(c.key, c.value)
		switch {
		case c.bad == "" && p != "":
			t.Errorf("case %d: %s: %s refused: %s (%s)", i+1, c.key, c.value, p, fix)
		case c.bad != "" && (!strings.Contains(p+" "+fix, c.bad) || fix == ""):
			t.Errorf("case %d: %s: %q: got %q (fix %q), want %q", i+1, c.key, c.value, p, fix, c.bad)
		}
	}
}

// ?tag_<key>=<value> as Patroni compares: custom tags by value, switches only when on, as "true".
func TestClusterTagsMatches(t *testing.T) {
	tags := ClusterTags{NoFailover: true, Custom: map[string]string{"dc": "east", "weight": "5"}}
	for i, c := range []struct {
		key, value string
		want       bool
	}{
		{"dc", "east", true},           // 1
		{"dc", "west", false},          // 2
		{"weight", "5", true},          // 3
		{"nofailover", "true", true},   // 4
		{"nofailover", "false", false}, // 5
		{"nosync", "false", false},     // 6: off is absent, as in Patroni
		{"rack", "", false},            // 7: a tag the member does not have
	} {
		if got := tags.Matches(c.key, c.value); got != c.want {
			t.Errorf("case %d: Matches(%s, %s) = %v, want %v", i+1, c.key, c.value, got, c.want)
		}
	}
}

// The flat JSON form reads back exactly, and Patroni's numbers and booleans read as text.
func TestClusterTagsJSON(t *testing.T) {
	for i, c := range []struct {
		in   string
		want ClusterTags
		bad  bool
	}{
		{`{"nofailover":false,"nosync":true}`, ClusterTags{NoSync: true}, false},                                                                                                 // 1
		{`{"noloadbalance":true,"dc":"east","weight":5,"x":true}`, ClusterTags{NoLoadBalance: true, Custom: map[string]string{"dc": "east", "weight": "5", "x": "true"}}, false}, // 2
		{`{"nofailover":"yes"}`, ClusterTags{}, true},                                                                                                                            // 3
		{`{"dc":["east"]}`, ClusterTags{}, true},                                                                                                                                 // 4
		{`{"dc":null}`, ClusterTags{}, false},                                                                                                                                    // 5
	} {
		var got ClusterTags
		err := json.Unmarshal([]byte(c.in), &got)
		if (err != nil) != c.bad || (!c.bad && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("case %d: %s: %+v %v", i+1, c.in, got, err)
		}
		if c.bad {
			continue
		}
		b, _ := json.Marshal(got)
		var back ClusterTags
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, got) {
			t.Errorf("case %d: round trip %s: %+v %v", i+1, b, back, err)
		}
	}
}
