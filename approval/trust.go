package approval

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pigwf/pigwf/internal/suggest"
	"golang.org/x/crypto/ssh"
	"gopkg.in/yaml.v3"
)

// The worker's approvals file ($PIGWF_HOME/approvals.yml, `pigwf worker --approvals FILE`): whom
// the worker believes, and who may approve what. It lives on the worker's side only; a run's input
// never says who may approve it.
//
//	signature_window: 15m        # how far a decision's signing time may be from the worker's clock
//	keys:                        # people and their public keys (OpenSSH lines, ssh-ed25519)
//	  alice: ["ssh-ed25519 AAAA... alice"]
//	  bob:   ["ssh-ed25519 AAAA... bob"]
//	signers:                     # services that verify people themselves and then sign for them
//	  chatops:
//	    key: "ssh-ed25519 AAAA... chatops"
//	    vouch_for: [alice, bob]  # whom it may sign for; "*": anyone
//	policies:                    # the first whose cluster and runbook match applies
//	  - cluster: pg-test         # a glob: "pg-*", "*"
//	    runbook: "*"             # switchover, pitr-restore, pg-cluster-create, or a glob
//	    approvers: [alice, bob]
//	    four_eyes: true          # the requester may not approve their own run
//	    quorum: 1                # distinct approvers needed; one verified reject rejects
//	    allow_unverified: false  # LAB ONLY: act on unsigned decisions (a name typed anywhere)

// DefaultWindow is how far a signed decision's time may be from the verifier's clock.
const DefaultWindow = 15 * time.Minute

// Trust is a parsed, validated approvals file.
type Trust struct {
	File     string        // where it was read, for messages
	Window   time.Duration // signature_window
	keys     map[string][]ssh.PublicKey
	signers  map[string]trustedSigner
	policies []rule
}

type trustedSigner struct {
	key      ssh.PublicKey
	vouchFor []string // names, or "*"
}

// vouchesFor reports whether the signer may sign for name.
func (s trustedSigner) vouchesFor(name string) bool {
	return slices.Contains(s.vouchFor, "*") || slices.Contains(s.vouchFor, name)
}

type rule struct {
	cluster, runbook string // globs
	policy           Policy
}

// The file as written.
type trustFile struct {
	SignatureWindow string                `yaml:"signature_window"`
	Keys            map[string][]string   `yaml:"keys"`
	Signers         map[string]signerFile `yaml:"signers"`
	Policies        []policyFile          `yaml:"policies"`
}

type signerFile struct {
	Key      string   `yaml:"key"`
	VouchFor []string `yaml:"vouch_for"`
}

type policyFile struct {
	Cluster         string   `yaml:"cluster"`
	Runbook         string   `yaml:"runbook"`
	Approvers       []string `yaml:"approvers"`
	FourEyes        bool     `yaml:"four_eyes"`
	Quorum          *int     `yaml:"quorum"`
	AllowUnverified bool     `yaml:"allow_unverified"`
}

// knownFields are the fields of each level of the file, for the unknown-field check (which names
// the closest known field) that runs before decoding.
var knownFields = map[string][]string{
	"":           {"signature_window", "keys", "signers", "policies"},
	"signers.*":  {"key", "vouch_for"},
	"policies[]": {"cluster", "runbook", "approvers", "four_eyes", "quorum", "allow_unverified"},
}

// Load reads and validates the approvals file at file. A missing file is an error that
// errors.Is(err, fs.ErrNotExist): the caller decides what no file means (the worker: nobody can
// approve).
func Load(file string) (*Trust, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("approvals file %s: %w", file, err)
	}
	return Parse(data, file)
}

// Parse validates an approvals file's content; every problem is reported at once, each naming
// its field and the fix.
func Parse(data []byte, file string) (*Trust, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if problems := unknownFields(&root); len(problems) > 0 {
		return nil, problemsError(file, problems)
	}
	var f trustFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) { // an empty file trusts nobody
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	t, problems := build(f, file)
	if len(problems) > 0 {
		return nil, problemsError(file, problems)
	}
	return t, nil
}

func problemsError(file string, problems []string) error {
	return fmt.Errorf("%s: %d problem(s):\n  %s", file, len(problems), strings.Join(problems, "\n  "))
}

// build checks the decoded file field by field.
func build(f trustFile, file string) (*Trust, []string) {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	t := &Trust{File: file, Window: DefaultWindow, keys: map[string][]ssh.PublicKey{}, signers: map[string]trustedSigner{}}

	if f.SignatureWindow != "" {
		w, err := time.ParseDuration(f.SignatureWindow)
		switch {
		case err != nil:
			bad("signature_window: %q is not a duration; write e.g. 15m", f.SignatureWindow)
		case w < time.Minute || w > 24*time.Hour:
			bad("signature_window: %s is outside 1m..24h; 15m is the default", w)
		default:
			t.Window = w
		}
	}

	owner := map[string]string{} // key fingerprint -> the field that holds it
	claim := func(field string, pub ssh.PublicKey) {
		fp := ssh.FingerprintSHA256(pub)
		if prev, dup := owner[fp]; dup {
			bad("%s: the same key as %s: one key, one identity (make another with `pigwf keys new NAME`)", field, prev)
			return
		}
		owner[fp] = field
	}
	for _, name := range sortedKeys(f.Keys) {
		field := "keys." + name
		if err := CheckName(name); err != nil {
			bad("%s: %v", field, err)
			continue
		}
		if len(f.Keys[name]) == 0 {
			bad("%s: no key: list the public key line(s) of %s (NAME.pub from `pigwf keys new %s`)", field, name, name)
		}
		for i, line := range f.Keys[name] {
			pub, err := ParsePublicKey(line)
			if err != nil {
				bad("%s[%d]: %v", field, i, err)
				continue
			}
			claim(fmt.Sprintf("%s[%d]", field, i), pub)
			t.keys[name] = append(t.keys[name], pub)
		}
	}
	for _, name := range sortedKeys(f.Signers) {
		field := "signers." + name
		s := f.Signers[name]
		if err := CheckName(name); err != nil {
			bad("%s: %v", field, err)
			continue
		}
		if _, person := f.Keys[name]; person {
			bad("%s: %s is also a person under keys: a signer is a service that signs for people; give it a name of its own", field, name)
		}
		pub, err := ParsePublicKey(s.Key)
		if err != nil {
			bad("%s.key: %v", field, err)
		} else {
			claim(field+".key", pub)
		}
		if len(s.VouchFor) == 0 {
			bad("%s.vouch_for: empty: list the people it may sign for, or [\"*\"] for anyone", field)
		}
		for i, v := range s.VouchFor {
			if v != "*" {
				if err := CheckName(v); err != nil {
					bad("%s.vouch_for[%d]: %v", field, i, err)
				}
			}
		}
		t.signers[name] = trustedSigner{key: pub, vouchFor: s.VouchFor}
	}
	for i, p := range f.Policies {
		field := fmt.Sprintf("policies[%d]", i)
		r := rule{cluster: p.Cluster, runbook: p.Runbook}
		if r.runbook == "" {
			r.runbook = "*"
		}
		if r.cluster == "" {
			bad("%s.cluster: missing: name the cluster(s) it covers (a glob; \"*\" for every cluster)", field)
		}
		for _, g := range [][2]string{{"cluster", r.cluster}, {"runbook", r.runbook}} {
			if _, err := path.Match(g[1], ""); err != nil {
				bad("%s.%s: %q is not a glob (%v)", field, g[0], g[1], err)
			}
		}
		pol := Policy{Source: fmt.Sprintf("%s %s", file, field), FourEyes: p.FourEyes, Quorum: 1, AllowUnverified: p.AllowUnverified}
		if len(p.Approvers) == 0 {
			bad("%s.approvers: empty: list who may approve (names under keys, or people a signer vouches for)", field)
		}
		seen := map[string]bool{}
		for j, a := range p.Approvers {
			af := fmt.Sprintf("%s.approvers[%d]", field, j)
			if err := CheckName(a); err != nil {
				bad("%s: %v", af, err)
				continue
			}
			if seen[a] {
				bad("%s: %s is listed twice", af, a)
				continue
			}
			seen[a] = true
			if !p.AllowUnverified && !t.canVerify(a) {
				bad("%s: nobody could ever approve as %s: add keys.%s, or a signer that vouches for %s", af, a, a, a)
			}
			pol.Approvers = append(pol.Approvers, a)
		}
		sort.Strings(pol.Approvers)
		if p.Quorum != nil {
			switch q := *p.Quorum; {
			case q < 1:
				bad("%s.quorum: %d: at least 1 approver must approve", field, q)
			case q > len(p.Approvers) && len(p.Approvers) > 0:
				bad("%s.quorum: %d is more than its %d approver(s): lower quorum or list more approvers", field, q, len(p.Approvers))
			default:
				pol.Quorum = q
			}
		}
		r.policy = pol
		t.policies = append(t.policies, r)
	}
	return t, problems
}

// canVerify reports whether a decision by name could ever verify: name has a key, or a signer
// vouches for name.
func (t *Trust) canVerify(name string) bool {
	if len(t.keys[name]) > 0 {
		return true
	}
	for _, s := range t.signers {
		if s.vouchesFor(name) {
			return true
		}
	}
	return false
}

// Policy is the policy of the first rule matching runbook and cluster; with none, a policy that
// nobody can satisfy (its Source says why).
func (t *Trust) Policy(runbook, cluster string) Policy {
	for _, r := range t.policies {
		cm, _ := path.Match(r.cluster, cluster)
		rm, _ := path.Match(r.runbook, runbook)
		if cm && rm {
			return r.policy
		}
	}
	return Policy{Source: fmt.Sprintf("%s: no policy matches %s on %s", t.File, runbook, cluster), Quorum: 1}
}

// NoFilePolicy is the policy when the worker has no approvals file: nobody can approve.
func NoFilePolicy(file string) Policy {
	return Policy{Source: fmt.Sprintf("no approvals file at %s (`pigwf worker --approvals FILE`)", file), Quorum: 1}
}

// unknownFields walks the document and names every field the file format does not have, with
// the closest known one.
func unknownFields(root *yaml.Node) []string {
	var problems []string
	check := func(n *yaml.Node, level, where string) {
		if n == nil || n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Value == "<<" || slices.Contains(knownFields[level], k.Value) {
				continue
			}
			msg := fmt.Sprintf("line %d: %sunknown field %q", k.Line, where, k.Value)
			if near := suggest.Within(k.Value, knownFields[level], 2); near != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", near)
			} else {
				msg += " (known: " + strings.Join(knownFields[level], ", ") + ")"
			}
			problems = append(problems, msg)
		}
	}
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		doc = doc.Content[0]
	}
	check(doc, "", "")
	if doc.Kind != yaml.MappingNode {
		return problems
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		for v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		switch k.Value {
		case "signers":
			if v.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(v.Content); j += 2 {
					s := v.Content[j+1]
					for s.Kind == yaml.AliasNode && s.Alias != nil {
						s = s.Alias
					}
					check(s, "signers.*", "signers."+v.Content[j].Value+": ")
				}
			}
		case "policies":
			if v.Kind == yaml.SequenceNode {
				for j, p := range v.Content {
					for p.Kind == yaml.AliasNode && p.Alias != nil {
						p = p.Alias
					}
					check(p, "policies[]", fmt.Sprintf("policies[%d]: ", j))
				}
			}
		}
	}
	return problems
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
