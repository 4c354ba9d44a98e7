package inventory

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// Limits on what merge keys may expand to. A real inventory merges a few levels of defaults; a
// hostile one could make a mapping merge itself through its own anchor (a loop), or build an
// "alias bomb" where each level merges the previous one many times. maxMergedPairs bounds the
// entries one lookup visits.
const (
	maxMergeDepth  = 16
	maxMergedPairs = 100000
)

// kv is one entry of a mapping, its value with aliases resolved.
type kv struct{ key, val *yaml.Node }

// resolve follows an alias (*name) to the node its anchor (&name) marks. yaml.v3 keeps aliases
// as nodes of their own, whose Value is the anchor's name, not the value.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > maxMergeDepth {
			return nil
		}
		n = n.Alias
	}
	return n
}

// reporter receives a problem found while reading a mapping: its line, the key concerned ("" for
// the mapping as a whole), the problem and the fix.
type reporter func(line int, key, problem, fix string)

// pairs returns the entries of mapping n with aliases resolved and merge keys ('<<: *defaults')
// applied as YAML defines them: the mapping's own keys win over merged ones, and of several
// merged mappings the first listed wins. A key written twice in one mapping, a key that is not a
// plain scalar and a merge of something other than a mapping are reported (report may be nil
// where the same mapping is reported elsewhere). The result keeps the file's order.
func pairs(n *yaml.Node, report reporter) []kv {
	if report == nil {
		report = func(int, string, string, string) {}
	}
	budget := maxMergedPairs
	return flatten(resolve(n), 0, &budget, report)
}

func flatten(n *yaml.Node, depth int, budget *int, report reporter) []kv {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	if depth > maxMergeDepth {
		report(n.Line, "", "merge keys ('<<') nest too deeply or a mapping merges itself", "merge plain mappings of defaults")
		return nil
	}
	// The work, not the result, is bounded: merging one mapping many times over at each level
	// yields few keys but visits exponentially many.
	if *budget < 0 {
		return nil
	}
	if *budget -= 1 + len(n.Content)/2; *budget < 0 {
		return nil // reported at the outermost '<<'
	}
	var own []kv
	var merged [][]kv
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, mergeSources(k, resolve(v), depth, budget, report)...)
			if depth == 0 && *budget < 0 {
				report(k.Line, "", "merge keys ('<<') expand to too many entries", "merge plain mappings of defaults")
				return nil
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			report(k.Line, "", "a key must be a plain name, not a list or mapping", "write 'name: value'")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			report(k.Line, k.Value, fmt.Sprintf("is written twice in one mapping (first on line %d)", own[first].key.Line),
				"keep one of them: YAML silently drops the other")
			own[first] = kv{k, resolve(v)} // the last one, as a YAML decoder keeps
			continue
		}
		seen[k.Value] = len(own)
		own = append(own, kv{k, resolve(v)})
	}
	out := own
	for _, m := range merged {
		for _, p := range m {
			if _, ok := seen[p.key.Value]; !ok {
				seen[p.key.Value] = len(out)
				out = append(out, p)
			}
		}
	}
	return out
}

// mergeSources flattens what one '<<' key merges: a mapping or a list of mappings.
func mergeSources(k, v *yaml.Node, depth int, budget *int, report reporter) [][]kv {
	switch {
	case v != nil && v.Kind == yaml.MappingNode:
		return [][]kv{flatten(v, depth+1, budget, report)}
	case v != nil && v.Kind == yaml.SequenceNode:
		var out [][]kv
		for _, m := range v.Content {
			if m = resolve(m); m == nil || m.Kind != yaml.MappingNode {
				report(k.Line, "", "'<<' merges mappings only", "write '<<: [*a, *b]' with anchors on mappings")
				continue
			}
			out = append(out, flatten(m, depth+1, budget, report))
		}
		return out
	}
	report(k.Line, "", "'<<' must merge a mapping or a list of mappings", "write '<<: *defaults' with the anchor on a mapping")
	return nil
}

// lookup returns the value of key among ps, or nil.
func lookup(ps []kv, key string) *yaml.Node {
	for _, p := range ps {
		if p.key.Value == key {
			return p.val
		}
	}
	return nil
}
