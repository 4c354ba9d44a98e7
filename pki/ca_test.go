package pki

import (
	"sync"
	"testing"
)

// Workers racing to create the CA end with one matching key and certificate.
func TestCAConcurrentEnsure(t *testing.T) {
	s := CA{Dir: t.TempDir()}
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
