package approval

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParsePolicies(t *testing.T) {
	ring := newKeyring(t, "alice", "bob", "chatops")
	tr := ring.trust(`
signature_window: 5m
keys:
  alice: [%[alice]]
  bob: [%[bob]]
signers:
  chatops: { key: %[chatops], vouch_for: ["*"] }
policies:
  - { cluster: pg-test, runbook: pitr-*, approvers: [alice], quorum: 1 }
  - &strict { cluster: "pg-*", approvers: [bob, alice, dave], four_eyes: true, quorum: 2 }
  - { <<: *strict, cluster: "*", runbook: "*", approvers: [alice], quorum: 1, four_eyes: false, allow_unverified: true }
`)
	if tr.Window != 5*time.Minute {
		t.Errorf("window %s", tr.Window)
	}
	for _, tc := range []struct {
		runbook, cluster string
		want             Policy
	}{
		{"pitr-restore", "pg-test", Policy{Source: "approvals.yml policies[0]", Approvers: []string{"alice"}, Quorum: 1}},
		{"switchover", "pg-test", Policy{Source: "approvals.yml policies[1]", Approvers: []string{"alice", "bob", "dave"}, FourEyes: true, Quorum: 2}},
		{"pitr-restore", "pg-prod", Policy{Source: "approvals.yml policies[1]", Approvers: []string{"alice", "bob", "dave"}, FourEyes: true, Quorum: 2}},
		{"switchover", "meta", Policy{Source: "approvals.yml policies[2]", Approvers: []string{"alice"}, Quorum: 1, AllowUnverified: true}},
	} {
		got := tr.Policy(tc.runbook, tc.cluster)
		if got.Source != tc.want.Source || strings.Join(got.Approvers, ",") != strings.Join(tc.want.Approvers, ",") ||
			got.FourEyes != tc.want.FourEyes || got.Quorum != tc.want.Quorum || got.AllowUnverified != tc.want.AllowUnverified {
			t.Errorf("%s on %s: %+v, want %+v", tc.runbook, tc.cluster, got, tc.want)
		}
	}
	none, err := Parse([]byte(""), "empty.yml")
	if err != nil {
		t.Fatal(err)
	}
	if p := none.Policy("switchover", "pg-test"); len(p.Approvers) != 0 || !strings.Contains(p.Source, "no policy matches switchover on pg-test") {
		t.Errorf("an empty file's policy: %+v", p)
	}
}

// Every problem at once, each naming its field and the fix.
func TestParseRefusals(t *testing.T) {
	ring := newKeyring(t, "alice", "bob", "chatops")
	rsa := "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDCNNwd2Cqd7aZrNW6AmgxiL6ua2Kf2E8ppXz1ZB0JQa9e7N7k6gCu5i3O6mrD6QzyQ+7qnL4xLrJbk7CKm6kSwLW7yJdbTHkcpUXPHvEt5EmqQAOAu5Kb98kmWS3ryG5ZTRpz1V2mNaQZWgH60bKj63kVqHKGfE3hfthdbM/MH/Q== x"
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"misspelt field", "policies:\n  - { cluster: pg-test, approvers: [alice], quroum: 2 }\nkeys: { alice: [%[alice]] }\n",
			[]string{"line 2: policies[0]: unknown field \"quroum\" (did you mean quorum?)"}},
		{"unknown top-level field", "approvers: [alice]\n", []string{"line 1: unknown field \"approvers\""}},
		{"misspelt signer field", "signers:\n  chatops: { key: %[chatops], vouches_for: [alice] }\n",
			[]string{"signers.chatops: unknown field \"vouches_for\" (did you mean vouch_for?)"}},
		{"not a key", "keys: { alice: [\"hello\"] }\n", []string{"keys.alice[0]: not an OpenSSH public key line"}},
		{"an RSA key", "keys: { alice: [\"" + rsa + "\"] }\n", []string{"keys.alice[0]: a ssh-rsa key: approvals are signed with ed25519 keys only"}},
		{"authorized_keys options", "keys: { alice: ['command=\"x\" " + ring.pubs["alice"] + "'] }\n", []string{"keys.alice[0]: authorized_keys options (command=\"x\") mean nothing here"}},
		{"no keys listed", "keys: { alice: [] }\n", []string{"keys.alice: no key"}},
		{"bad name", "keys: { \"../alice\": [%[alice]] }\n", []string{"keys.../alice: \"../alice\": not an identity name"}},
		{"one key, two people", "keys: { alice: [%[alice]], bob: [%[alice]] }\n", []string{"keys.bob[0]: the same key as keys.alice[0]"}},
		{"a signer with a person's key", "keys: { alice: [%[alice]] }\nsigners: { chatops: { key: %[alice], vouch_for: [alice] } }\n", []string{"signers.chatops.key: the same key as keys.alice[0]"}},
		{"a signer named like a person", "keys: { alice: [%[alice]] }\nsigners: { alice: { key: %[chatops], vouch_for: [bob] } }\n", []string{"signers.alice: alice is also a person under keys"}},
		{"a signer vouching for nobody", "signers: { chatops: { key: %[chatops] } }\n", []string{"signers.chatops.vouch_for: empty"}},
		{"no cluster", "keys: { alice: [%[alice]] }\npolicies: [ { approvers: [alice] } ]\n", []string{"policies[0].cluster: missing"}},
		{"bad glob", "keys: { alice: [%[alice]] }\npolicies: [ { cluster: \"pg-[\", approvers: [alice] } ]\n", []string{"policies[0].cluster: \"pg-[\" is not a glob"}},
		{"no approvers", "policies: [ { cluster: pg-test } ]\n", []string{"policies[0].approvers: empty"}},
		{"an approver nobody can verify", "keys: { alice: [%[alice]] }\npolicies: [ { cluster: pg-test, approvers: [alice, carol] } ]\n",
			[]string{"policies[0].approvers[1]: nobody could ever approve as carol: add keys.carol"}},
		{"an approver twice", "keys: { alice: [%[alice]] }\npolicies: [ { cluster: pg-test, approvers: [alice, alice] } ]\n", []string{"policies[0].approvers[1]: alice is listed twice"}},
		{"quorum above the approvers", "keys: { alice: [%[alice]] }\npolicies: [ { cluster: pg-test, approvers: [alice], quorum: 2 } ]\n",
			[]string{"policies[0].quorum: 2 is more than its 1 approver(s): lower quorum or list more approvers"}},
		{"quorum zero", "keys: { alice: [%[alice]] }\npolicies: [ { cluster: pg-test, approvers: [alice], quorum: 0 } ]\n", []string{"policies[0].quorum: 0: at least 1"}},
		{"bad window", "signature_window: forever\n", []string{"signature_window: \"forever\" is not a duration"}},
		{"window too wide", "signature_window: 48h\n", []string{"signature_window: 48h0m0s is outside 1m..24h"}},
		{"a key written twice", "keys:\n  alice: [%[alice]]\n  alice: [%[bob]]\n", []string{"already defined"}},
		{"wrong type", "policies: { cluster: pg-test }\n", []string{"cannot unmarshal"}},
		{"several problems at once", "keys: { alice: [\"x\"] }\npolicies: [ { cluster: pg-test, approvers: [bob], quorum: 3 } ]\n",
			[]string{"3 problem(s)", "keys.alice[0]", "policies[0].approvers[0]: nobody could ever approve as bob", "policies[0].quorum: 3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := tc.text
			for n, p := range ring.pubs {
				text = strings.ReplaceAll(text, "%["+n+"]", `"`+p+`"`)
			}
			_, err := Parse([]byte(text), "approvals.yml")
			if err == nil {
				t.Fatalf("accepted:\n%s", text)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if !strings.HasPrefix(err.Error(), "approvals.yml: ") {
				t.Errorf("the error does not name the file: %v", err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "approvals.yml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
	if p := NoFilePolicy("/x/approvals.yml"); len(p.Approvers) != 0 || !strings.Contains(p.Describe(), "nobody may approve: no approvals file at /x/approvals.yml") {
		t.Errorf("no-file policy: %s", p.Describe())
	}
}
