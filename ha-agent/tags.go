package haagent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"unicode"

	"github.com/pigwf/pigwf/internal/suggest"
)

// Tag names pigwf acts on: Patroni's switches. nofailover and nosync are Decide's (Tags);
// noloadbalance only turns the REST API's replica checks away (HAProxy sends no reads).
const (
	TagNoFailover    = "nofailover"
	TagNoSync        = "nosync"
	TagNoLoadBalance = "noloadbalance"
)

// Switches are the boolean tags, in the order they are documented.
var Switches = []string{TagNoFailover, TagNoSync, TagNoLoadBalance}

// patroniOnlyTags are Patroni's tags pigwf does not implement. They are refused: kept as custom
// tags they would look as if they worked.
var patroniOnlyTags = []string{"clonefrom", "replicatefrom", "nostream", "failover_priority", "sync_priority"}

// tagKeyRE: a custom tag's name. It is matched by ?tag_<name>=<value> on the health checks and
// written into YAML and JSON, so it is kept to plain words.
var tagKeyRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,62}$`)

// secretWordRE: names of values that must never be a tag.
var secretWordRE = regexp.MustCompile(`(?i)passw|secret|token|credential|private.?key`)

// maxTagValue bounds a custom tag's value: tags travel in every member record, every loop.
const maxTagValue = 256

// CustomTagProblem is the one rule for a custom tag (the agent's config, the inventory's
// pg_tags): what is wrong with key: value ("" when nothing) and the fix.
func CustomTagProblem(key, value string) (problem, fix string) {
	switch {
	case slices.Contains(Switches, key):
		return fmt.Sprintf("%s is a switch", key), fmt.Sprintf("write %s: true or false", key)
	case slices.Contains(patroniOnlyTags, key):
		return fmt.Sprintf("%s is a Patroni tag pigwf does not implement", key), "remove it (pigwf would ignore it)"
	case !tagKeyRE.MatchString(key):
		return fmt.Sprintf("%q is not a tag name", key), "use letters, digits, '_', '.' and '-', starting with a letter, at most 63 (health checks match it with ?tag_<name>=<value>)"
	case secretWordRE.MatchString(key):
		return fmt.Sprintf("tag %s looks like it holds a secret", key), "remove it: tags are public (every member's record in etcd, the REST API that load balancers read)"
	}
	if len(key) >= 5 {
		if near := suggest.Within(key, slices.Concat(Switches, patroniOnlyTags), 2); near != "" {
			return fmt.Sprintf("%s is a custom tag one or two letters from %s", key, near), fmt.Sprintf("did you mean %s? (or rename the custom tag)", near)
		}
	}
	switch {
	case value == "":
		return fmt.Sprintf("tag %s has no value", key), "give it a value, e.g. " + key + ": east"
	case len(value) > maxTagValue:
		return fmt.Sprintf("tag %s's value is %d bytes long", key, len(value)), fmt.Sprintf("keep it to %d bytes", maxTagValue)
	}
	for _, r := range value {
		if !unicode.IsPrint(r) {
			return fmt.Sprintf("tag %s's value holds the character %U", key, r), "use printable characters only (no line breaks, tabs or control characters)"
		}
	}
	return "", ""
}

// ClusterTags are a member's tags: its switches and custom tags (free-form name: value, for
// ?tag_<name>=<value> on the health checks and for people). The agent's config, the member
// record and the inventory hold the same fields (see agent.TagsConfig, dcs.MemberTags).
type ClusterTags struct {
	NoFailover    bool
	NoSync        bool
	NoLoadBalance bool
	// Custom is nil when there are none (so a round trip through JSON is exact).
	Custom map[string]string
}

// Patroni are the tags as Patroni shows and matches them: each switch that is on (true) and the
// custom tags. A switch that is off is absent, as in Patroni, so ?tag_nofailover=false never
// matches there either.
func (t ClusterTags) Patroni() map[string]any {
	out := map[string]any{}
	for name, on := range map[string]bool{TagNoFailover: t.NoFailover, TagNoSync: t.NoSync, TagNoLoadBalance: t.NoLoadBalance} {
		if on {
			out[name] = true
		}
	}
	for k, v := range t.Custom {
		out[k] = v
	}
	return out
}

// Matches reports whether the member has tag key with value, as Patroni's ?tag_<key>=<value>
// compares them: a custom tag's value as written, a switch that is on as "true"; a tag the
// member does not have never matches.
func (t ClusterTags) Matches(key, value string) bool {
	v, ok := t.Patroni()[key]
	switch v := v.(type) {
	case bool:
		return ok && value == "true"
	case string:
		return v == value
	}
	return false
}

// MarshalJSON writes the tags flat, as Patroni's /cluster and /patroni do:
// {"nofailover": false, "nosync": false, "dc": "east"}. nofailover and nosync are always
// there (pigwf's contract since before custom tags), noloadbalance when on.
func (t ClusterTags) MarshalJSON() ([]byte, error) {
	m := map[string]any{TagNoFailover: t.NoFailover, TagNoSync: t.NoSync}
	if t.NoLoadBalance {
		m[TagNoLoadBalance] = true
	}
	for k, v := range t.Custom {
		if _, clash := m[k]; !clash {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads the flat form: the switches as booleans, anything else as a custom tag
// (a string, or the JSON text of a number or boolean, as Patroni's tags may hold them).
func (t *ClusterTags) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("member tags: %w", err)
	}
	*t = ClusterTags{}
	for _, k := range slices.Sorted(maps.Keys(raw)) {
		v := bytes.TrimSpace(raw[k])
		var dst *bool
		switch k {
		case TagNoFailover:
			dst = &t.NoFailover
		case TagNoSync:
			dst = &t.NoSync
		case TagNoLoadBalance:
			dst = &t.NoLoadBalance
		}
		if dst != nil {
			if err := json.Unmarshal(v, dst); err != nil {
				return fmt.Errorf("member tag %s: want true or false: %w", k, err)
			}
			continue
		}
		var s string
		switch {
		case len(v) > 0 && v[0] == '"':
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("member tag %s: %w", k, err)
			}
		case len(v) > 0 && (v[0] == '{' || v[0] == '['):
			return fmt.Errorf("member tag %s: want a single value, got %s", k, v)
		case string(v) == "null":
			continue
		default:
			s = string(v)
		}
		if t.Custom == nil {
			t.Custom = map[string]string{}
		}
		t.Custom[k] = s
	}
	return nil
}
