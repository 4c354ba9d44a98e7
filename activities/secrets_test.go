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
