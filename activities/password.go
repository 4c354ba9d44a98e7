package activities

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/pigwf/pigwf/inventory"
)

// SetPasswordInput sets a role's password to a secret of the worker's secret store: the step
// `password: {role, secret}` of custom runbooks. Only the two names travel in workflow input and
// history; the password is read on the worker and reaches PostgreSQL as a SCRAM verifier.
type SetPasswordInput struct {
	Node    Node   `json:"node"` // the leader
	Port    int    `json:"port"`
	Cluster string `json:"cluster"` // the secret store's directory
	Role    string `json:"role"`
	Secret  string `json:"secret"`
	Step    string `json:"step"` // the runbook's step, for messages
}

// SetPassword compares the role's stored verifier with the secret (scramMatches) and, only when
// they differ, stores a verifier of the secret computed here (ALTER ROLE ... PASSWORD
// '<verifier>'): unchanged on a second run, and the password itself is in no statement. The
// secret is made the first time it is read (SecretStore.Get). A missing role, or a secret
// PostgreSQL would hash differently (not ASCII), is final.
func (a *Activities) SetPassword(ctx context.Context, in SetPasswordInput) (StepResult, error) {
	res := StepResult{Node: in.Node.Addr, Step: in.Step}
	pw, err := a.Secrets.Get(in.Cluster, in.Secret)
	if err != nil {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: the secret %s of %s: %v", in.Step, in.Secret, in.Cluster, err), ErrConfig, nil)
	}
	// "r:" tells a role without a password ("r:") from no role at all (no row).
	cur, err := a.psqlStep(ctx, in.Node, in.Port, "postgres", fmt.Sprintf("SELECT 'r:' || coalesce(rolpassword, '') FROM pg_authid WHERE rolname = %s;", sqlLit(in.Role)), in.Step)
	if err != nil {
		return res, err
	}
	stored, exists := strings.CutPrefix(cur, "r:")
	if !exists {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: role %s does not exist on %s: create it first (pg_users in the inventory, then pigwf start pg-cluster-create)", in.Step, in.Role, in.Node), ErrConflict, nil)
	}
	if scramMatches(stored, pw) {
		res.Notes = []string{fmt.Sprintf("the password of %s already is the secret %s", in.Role, in.Secret)}
		return res, nil
	}
	verifier, err := scramVerifier(pw)
	if errors.Is(err, ErrPasswordNotASCII) {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: the secret %s %v; write an ASCII password into it", in.Step, in.Secret, err), ErrConfig, nil)
	} else if err != nil {
		return res, fmt.Errorf("%s: computing the verifier of %s: %w", in.Step, in.Role, err)
	}
	if _, err := a.psqlStep(ctx, in.Node, in.Port, "postgres", fmt.Sprintf("ALTER ROLE %s PASSWORD %s;", sqlIdent(in.Role), sqlLit(verifier)), in.Step); err != nil {
		return res, err
	}
	res.Changed = true
	res.Changes = []string{fmt.Sprintf("set the password of %s to the secret %s", in.Role, in.Secret)}
	return res, nil
}

// Validate checks the leader, the port, the cluster, the role and the secret's name.
func (in SetPasswordInput) Validate() error {
	var c inputCheck
	c.node("node", in.Node)
	c.rule("port", "pg_port", in.Port)
	c.rule("cluster", "pg_cluster", in.Cluster)
	c.rule("role", inventory.RuleRoleName, in.Role)
	c.rule("secret", inventory.RuleSecretName, in.Secret)
	c.rule("step", inventory.RuleText, in.Step)
	return c.err()
}
