package activities

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"

	"github.com/pigwf/pigwf/internal/atomicfile"
	"github.com/pigwf/pigwf/inventory"
)

// SecretStore keeps passwords pigwf generates (the replication and admin roles' when the
// inventory sets none) on the control side, one file per secret, mode 0600. Activities read
// secrets here or from the inventory file on the worker: they never travel in workflow input,
// results or history, and reach nodes only on an SSH command's stdin.
type SecretStore struct {
	Dir string
}

// The secrets PgClusterCreate keeps for the replication and admin roles when the inventory sets
// no password for them.
const (
	SecretReplication = "replication"
	SecretAdmin       = "admin"
)

// Get returns the named secret of a cluster, generating it the first time.
func (s SecretStore) Get(cluster, name string) (string, error) {
	// Both are path elements under Dir: the inventory's rule keeps them inside it.
	if probs := append(inventory.CheckDecoded("cluster", inventory.RuleSecretName, cluster),
		inventory.CheckDecoded("secret", inventory.RuleSecretName, name)...); len(probs) > 0 {
		return "", fmt.Errorf("bad secret name %s/%s: %w", cluster, name, probs[0])
	}
	path := filepath.Join(s.Dir, cluster, name)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("while reading secret %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("while creating %s: %w", filepath.Dir(path), err)
	}
	pw, err := randomPassword(24)
	if err != nil {
		return "", err
	}
	if err := atomicfile.CreateOnce(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	// Whoever won the race, the file now holds a complete secret: read it.
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("while reading secret %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// randomPassword avoids characters that need quoting in .pgpass or conninfo.
func randomPassword(n int) (string, error) {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b), nil
}

// clusterSecrets resolves the passwords of a cluster: the inventory's when it sets them (read
// here, on the worker, from the file), otherwise generated ones from the store.
func (a *Activities) clusterSecrets(inventoryFile, cluster string) (replication, admin string, users map[string]string, err error) {
	users = map[string]string{}
	var pg inventory.PGVars
	if inventoryFile != "" {
		inv, err := inventory.LoadInventory(inventoryFile)
		if err != nil {
			return "", "", nil, fmt.Errorf("while reading passwords from the inventory: %w", err)
		}
		c, err := inv.Cluster(cluster)
		if err != nil {
			return "", "", nil, err
		}
		pg = c.PG
		for _, u := range c.Users {
			users[u.Name] = u.Password
		}
	}
	replication, admin = pg.ReplicationPassword, pg.AdminPassword
	if replication == "" {
		if replication, err = a.Secrets.Get(cluster, SecretReplication); err != nil {
			return "", "", nil, err
		}
	}
	if admin == "" {
		if admin, err = a.Secrets.Get(cluster, SecretAdmin); err != nil {
			return "", "", nil, err
		}
	}
	return replication, admin, users, nil
}

// rolePasswords are a cluster's role passwords, by where a RoleSpec says its password comes from.
type rolePasswords struct {
	replication, admin string
	users              map[string]string // pg_users' name -> password
}

// of is role r's password; "" when it has none (the role's password is then left alone).
func (p rolePasswords) of(r RoleSpec) string {
	switch r.Password {
	case "replication":
		return p.replication
	case "admin":
		return p.admin
	case "user":
		return p.users[r.Name]
	}
	return ""
}

// rolePasswords resolves the passwords of a cluster's roles (clusterSecrets) on the worker.
func (a *Activities) rolePasswords(inventoryFile, cluster string) (rolePasswords, error) {
	repl, admin, users, err := a.clusterSecrets(inventoryFile, cluster)
	return rolePasswords{replication: repl, admin: admin, users: users}, err
}
