package starter

import (
	"bytes"
	"fmt"

	"gopkg.in/yaml.v3"

	haagent "github.com/pigwf/pigwf/ha-agent"
)

// The YAML of `pigwf config show` and `edit`: haagent.Config marshalled by its yaml tags (the
// DCS's json names), in struct order, and read back by DecodeConfigYAML.

// RenderConfigYAML is the config as `config show` prints it and `config edit` opens it: comment
// lines (the cluster, the revision, why a stored config does not validate), then every setting.
func RenderConfigYAML(read ConfigRead) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# cluster %s: the DCS config at etcd revision %d\n", read.Cluster, read.Revision)
	b.WriteString("# HA settings first; PostgreSQL parameters under postgresql: parameters:, as postgresql.conf\n")
	b.WriteString("# takes them (shared_buffers: 1GB). A setting left out is its default; a parameter left out is\n")
	b.WriteString("# not set by the cluster's config (postgresql.conf's value applies).\n")
	for _, p := range read.Problems {
		fmt.Fprintf(&b, "# NOT VALID as stored: %s\n", p)
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(read.Config); err != nil {
		return nil, fmt.Errorf("render %s's config as YAML: %w", read.Cluster, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render %s's config as YAML: %w", read.Cluster, err)
	}
	return b.Bytes(), nil
}

// joined is the errors inside err (an errors.Join), or err alone.
func joined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// DecodeConfigYAML reads an edited config: the defaults, then every setting the file gives.
// Strict: a key that is no setting is refused naming its line with the setting it likely meant,
// a key given twice, a list or mapping where a value goes, an empty value, and a value its
// setting's type does not take (the same rule as `config set`, setHASetting). It walks the YAML
// nodes rather than decoding with KnownFields: that refusal names no near setting unless its
// message is parsed, and yaml.v3 turns 99.9 into 99 for an int without a word. Every problem is
// returned, none stops the others; file names the input in them.
func DecodeConfigYAML(file string, b []byte) (haagent.Config, []error) {
	cfg := haagent.DefaultConfig()
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return cfg, []error{fmt.Errorf("%w: %s is not YAML: %v", ErrConfigInvalid, file, err)}
	}
	if len(doc.Content) == 0 {
		return cfg, []error{fmt.Errorf("%w: %s is empty; to go back to a default, leave its setting out, not the whole file", ErrConfigInvalid, file)}
	}
	d := &yamlConfigDecoder{file: file}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		d.bad(top, "the file", "", "is not a mapping of setting: value", "start from `pigwf config show`")
		return cfg, d.problems
	}
	d.mapping(top, func(key, val *yaml.Node) {
		if key.Value == "postgresql" {
			cfg.Postgresql.Parameters = d.postgresql(val)
			return
		}
		s, ok := lookupHASetting(key.Value)
		if !ok {
			d.bad(key, key.Value, "", "is not a setting of the cluster's config", unknownHASettingFix(key.Value))
			return
		}
		if v, ok := d.scalar(key.Value, val); ok {
			if err := setHASetting(&cfg, s, v); err != nil {
				err.Where = d.where(val)
				d.problems = append(d.problems, err)
			}
		}
	})
	return cfg, d.problems
}

// yamlConfigDecoder gathers DecodeConfigYAML's problems, each with the file and line.
type yamlConfigDecoder struct {
	file     string
	problems []error
}

func (d *yamlConfigDecoder) where(n *yaml.Node) string {
	return fmt.Sprintf("%s line %d", d.file, n.Line)
}

func (d *yamlConfigDecoder) bad(n *yaml.Node, setting, value, problem, fix string) {
	d.problems = append(d.problems, &ConfigSettingError{Where: d.where(n), Setting: setting, Value: value, Problem: problem, Fix: fix})
}

// mapping calls each for every key of m, refusing a key that is not a plain word or is given twice.
func (d *yamlConfigDecoder) mapping(m *yaml.Node, each func(key, val *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		key, val := m.Content[i], m.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			d.bad(key, "a key", "", "is not a setting's name", "write name: value")
			continue
		}
		if first, dup := seen[key.Value]; dup {
			d.bad(key, key.Value, "", fmt.Sprintf("is given twice (also on line %d)", first), "keep one")
			continue
		}
		seen[key.Value] = key.Line
		each(key, val)
	}
}

// scalar is the text of a single value; a list, a mapping or an empty value is refused.
func (d *yamlConfigDecoder) scalar(setting string, v *yaml.Node) (string, bool) {
	switch {
	case v.Kind != yaml.ScalarNode:
		d.bad(v, setting, "", "must be a single value, not a list or mapping", "write "+setting+": value")
	case v.Tag == "!!null":
		d.bad(v, setting, "", "has no value", "write a value (quote an empty string: '') or leave the setting out")
	default:
		return v.Value, true
	}
	return "", false
}

// postgresql reads the postgresql: section: parameters only, each a single value taken as text
// (max_connections: 200 is "200", on is "on", as postgresql.conf would read them).
func (d *yamlConfigDecoder) postgresql(sec *yaml.Node) map[string]string {
	if sec.Tag == "!!null" {
		return nil
	}
	if sec.Kind != yaml.MappingNode {
		d.bad(sec, "postgresql", "", "must be a mapping", "write postgresql: {parameters: {name: value}}")
		return nil
	}
	var params map[string]string
	d.mapping(sec, func(key, val *yaml.Node) {
		if key.Value != "parameters" {
			d.bad(key, "postgresql."+key.Value, "", "is not a part of postgresql:", "PostgreSQL settings go under postgresql: parameters:")
			return
		}
		if val.Tag == "!!null" {
			return
		}
		if val.Kind != yaml.MappingNode {
			d.bad(val, "postgresql.parameters", "", "must be a mapping of parameter: value", "write parameters: {shared_buffers: 1GB}")
			return
		}
		params = map[string]string{}
		d.mapping(val, func(k, v *yaml.Node) {
			if s, ok := d.scalar(ParametersPrefix+k.Value, v); ok {
				params[k.Value] = s
			}
		})
	})
	if len(params) == 0 {
		return nil
	}
	return params
}
