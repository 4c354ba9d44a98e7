package activities

import (
	"sync"
	"testing"
)

// Parallel steps ask for the same secret at once: every caller gets the same, complete value.
func TestSecretStoreConcurrentGet(t *testing.T) {
	s := SecretStore{Dir: t.TempDir()}
	const n = 32
	got := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) { defer wg.Done(); got[i], errs[i] = s.Get("pg-test", "replication") }(i)
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || len(got[i]) != 24 || got[i] != got[0] {
			t.Fatalf("caller %d got %q, %v (caller 0: %q)", i, got[i], errs[i], got[0])
		}
	}
	again, _ := s.Get("pg-test", "replication")
	if again != got[0] {
		t.Error("the secret changed on a later call")
	}
}

// Workers racing to create the CA end with one matching key and certificate.
func TestCAStoreConcurrentEnsure(t *testing.T) {
	s := CAStore{Dir: t.TempDir()}
	const n = 16
	fps := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			info, err := s.Ensure()
			fps[i], errs[i] = info.Fingerprint, err
		}(i)
	}
	wg.Wait()
	final, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.verifyPair(); err != nil {
		t.Fatal(err)
	}
	for i := range fps {
		if errs[i] != nil || fps[i] != final.Fingerprint {
			t.Errorf("worker %d: %s, %v (final %s)", i, fps[i], errs[i], final.Fingerprint)
		}
	}
}
