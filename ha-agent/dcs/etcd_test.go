package dcs

import (
	"context"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/pigwf/pigwf/internal/etcdtest"
)

func startEtcd(t *testing.T) string { return etcdtest.Start(t) }

func newClient(t *testing.T, url string) *clientv3.Client { return etcdtest.Client(t, url) }

func newStore(t *testing.T, url string) *Store {
	t.Helper()
	s, err := New(newClient(t, url), "/pigwf-test", "pg-test", time.Second)
	if err != nil {
		t.Fatalf("new store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func percentiles(ds []time.Duration) (p50, p99, maxD time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[(len(s)*99)/100], s[len(s)-1]
}

// All scenarios share one etcd process (starting one costs ~1 s).
func TestEtcdStore(t *testing.T) {
	url := startEtcd(t)
	t.Run("LoadSeesEveryKey", func(t *testing.T) { testLoad(t, url) })
	t.Run("AcquireByTwoContendersExactlyOneWins", func(t *testing.T) { testAcquireRace(t, url) })
	t.Run("RenewWithStaleRevisionFails", func(t *testing.T) { testRenew(t, url) })
	t.Run("WatchSeesReleaseWithinMilliseconds", func(t *testing.T) { testWatchRelease(t, url) })
	t.Run("GuardedWritesByNonHolderFail", func(t *testing.T) { testGuarded(t, url) })
	t.Run("WatchFromCompactedRevisionFails", func(t *testing.T) { testCompacted(t, url) })
	t.Run("MemberLeaseKeptAliveAndRevoked", func(t *testing.T) { testMemberLease(t, url) })
	t.Run("RegisterClusterCreatesOnlyIfAbsent", func(t *testing.T) { testRegisterCluster(t, url) })
	t.Run("RecoverGuardOnlyForOwnAppliedRenewal", func(t *testing.T) { testRecoverGuard(t, url) })
	t.Run("HandOverLeaderOnlyWhilePausedAndUnchanged", func(t *testing.T) { testHandOverLeader(t, url) })
}

func wipe(t *testing.T, s *Store) {
	t.Helper()
	if _, err := s.cli.Delete(ctxT(t), s.Prefix(), clientv3.WithPrefix()); err != nil {
		t.Fatalf("wipe: %v", err)
	}
}
