// Package haagent is the core of pigwf's HA agent: one agent runs next to
// every PostgreSQL node, uses etcd as its DCS, fails over in well under a
// second and, in synchronous mode, never loses an acknowledged write.
//
// This package is pure: the types of what the agent observes (ClusterView,
// LocalState), the dynamic Config with its validation, and Decide, the
// single function that makes every HA decision and says why in a sentence
// for the log. The etcd store is in the dcs subpackage; running PostgreSQL
// (start/stop/promote/rewind) is package pgctl; the loop that feeds
// Decide, the fence timer, the REST API and the pg-ha-agent binary are
// the executor, package agent.
//
// Every rule about leadership, WAL positions and synchronous standbys is
// defined here once, as a function or a method on these types, and the
// executor, its fence timer and its REST API call the same definitions
// Decide does, so what they judge can never drift from what Decide decided.
//
// # Where things are
//
//   - types.go: what the agent observes (ClusterView, LocalState, Member,
//     the DCS records) and the small rules on them (WALPosition,
//     AcceptingWrites, MayAcceptWrites, SyncState.Synchronous, MemberNames);
//     action.go: Action, what Decide returns; lsn.go: LSN and LagBytes.
//   - config.go: Config, the cluster-wide settings, its validation and the
//     lease arithmetic (HolderDeadline, StaleAfter).
//   - decide.go: Decide and the order of its checks; pause.
//   - leadership.go: whose lease the leader key carries (LeaseIsMine), when
//     a leader turns stale (LeaderStale), whether this node may take writes
//     now (HoldsLeadership), and the fence.
//   - failsafe.go: failsafe mode, on both sides: the confirmations a holder
//     gathered (FailsafeProof) and the answer a member gives
//     (AnswerFailsafe).
//   - bootstrap.go: an empty data directory, the initialize race and the
//     first lock of a cluster that was never led.
//   - holder.go: the holder's PostgreSQL down, restarting or being
//     promoted; switchover.go: manual failover and switchover, and who
//     could take over from the holder; sync.go: the synchronous standbys.
//   - follow.go: a primary without the lock, and a member following a live
//     leader (rewind, re-clone); race.go: who may take a stale or free lock.
//   - clusterstatus.go: ClusterStatus, the JSON of an agent's GET /cluster,
//     which the agent renders and pigwf parses (Patroni's shape too).
//   - tags.go: a member's tags (ClusterTags: the switches and custom tags,
//     flat JSON as Patroni's), the one rule for custom tags
//     (CustomTagProblem, which the agent's config and the inventory's
//     pg_tags use) and how ?tag_<name>=<value> matches (Matches).
//
// The tests follow the same files: each *_test.go holds the numbered
// TestDecide cases of its concern.
//
// # Leadership in milliseconds
//
// The leader record lives in etcd at <prefix>/<cluster>/leader. Its holder
// renews it every loop interval (100 ms by default) with a compare-and-swap
// on its mod revision:
//
//	Txn(If(ModRevision(leader) == lastRev), Then(Put(leader, record)))
//
// and every write that depends on leadership (sync, initialize, failover
// clear, history, failsafe) carries the same guard, so a member that lost
// the lock cannot write them. A member acquires a free lock with
// If(CreateRevision(leader) == 0) and a stale one with
// If(ModRevision(leader) == the revision it observed stale); etcd
// linearizes these, so exactly one contender wins.
//
// Nobody compares clocks across hosts. Each host measures with its OWN
// monotonic clock:
//
//   - the holder records the SEND time s of each renewal request that
//     succeeded; it must have fenced (PostgreSQL can no longer acknowledge
//     a commit) by its local time s + L(1−ε) − m_f;
//   - every other member records the local time o at which it observed the
//     leader record change (a watch event, or the load that first saw it);
//     it may take the lock no earlier than its local time
//     o + L(1+ε) + m_p, with a CAS on the revision it observed;
//   - a deleted key (ReleaseLeader) may be taken at once: the holder
//     deletes it only when its PostgreSQL cannot acknowledge writes.
//
// L is leader_timeout_ms (default 500), ε the clock-rate bound
// clock_drift_ppm (default 1000 ppm), m_f fence_margin_ms (50), m_p
// promote_margin_ms (20), F max_fence_ms (40), the time from the fence
// timer firing to PostgreSQL being unable to acknowledge a commit.
//
// # Safety argument
//
// Assumptions: (1) every host's monotonic clock runs at a rate within
// [1−ε, 1+ε] of real time (no synchronised clocks needed, no bound on
// offsets); (2) etcd writes are linearizable and each successful Txn has a
// unique, increasing revision; watch events arrive in revision order;
// (3) a fenced PostgreSQL acknowledges no commit, and fencing completes
// within F of its deadline (the executor's timer fires at the deadline, not
// at the next loop); (4) a new primary accepts writes only after its
// acquire Txn succeeded.
//
// Let renewal k be the LAST renewal etcd applied before an observer O's
// acquire. O's CAS names the revision it observed, so it succeeds only if
// O observed renewal k (any later renewal changed the revision, and any
// renewal after O's acquire fails its own CAS). Renewal k was sent at real
// time s_k, applied at a_k ≥ s_k, observed at o_k ≥ a_k.
//
//   - O acquires no earlier than o_k + (L(1+ε) + m_p)/(1+ε)
//     ≥ s_k + L + m_p/(1+ε) in real time (O's clock runs at most 1+ε fast).
//   - The holder's last successful renewal is some j ≤ k, so s_j ≤ s_k. Its
//     fence is done by s_j + (L(1−ε) − m_f)/(1−ε) + F ≤ s_k + L − m_f/(1−ε) + F.
//
// So the old primary is fenced before the new one can exist whenever
//
//	F < m_f/(1−ε) + m_p/(1+ε)
//
// which Config.Validate enforces (70.03 ms > 40 ms with the defaults; a
// simulation test with random clock rates, delays and lost responses
// finds the 30 ms worst-case gap and catches 5 % drift against a 0.1 % bound). A
// renewal whose response is lost but that was applied only makes the holder
// fence earlier (its deadline counts from an older send) and the observer
// wait longer. In synchronous mode every acknowledged commit is on every
// standby in the sync key (synchronous_standby_names = FIRST n (exactly n
// names)); the new leader stops its WAL receiver, replays everything it
// received, and only then promotes, so no acknowledged write is lost.
//
// Failover time with the defaults: the last renewal lands 0–100 ms before a
// crash, others wait 520.5 ms from it, so detection is 421–521 ms after the
// crash, plus the acquire Txn (milliseconds) and pg_ctl promote (~150 ms in
// the lab): about 0.6–0.7 s to writes on the new primary. A released lock
// (switchover, crash with a slow restart) skips the wait entirely.
//
// The clock: ε must bound the clock the agent times leadership with. Go's
// monotonic clock is CLOCK_MONOTONIC, which NTP daemons slew (ntpd up to
// 500 ppm; chrony's default maxslewrate is 83 333 ppm). The executor should
// time leases with CLOCK_MONOTONIC_RAW (golang.org/x/sys/unix.ClockGettime),
// whose rate is the crystal's (±100 ppm typical), or cap the NTP slew rate.
// Timestamps in the records (renewed_at) are for humans only.
//
// # Why not etcd leases for failover timing
//
// etcd lease TTLs are whole seconds, the server raises them to at least
// ceil(1.5 × election timeout), and it extends all leases on every etcd
// leader change; expiry is judged on the etcd leader's clock. A failover
// that waits for a lease to expire cannot be sub-second and has no bound
// that holds across etcd elections. The leader key therefore carries no
// lease (its staleness is judged as above); member keys carry a short lease
// for cleanup of vanished members only.
//
// # etcd unreachable
//
// The choice: a primary keeps taking writes only while it can prove no
// other primary can exist. Without failsafe_mode it fences at its deadline,
// whatever the cause (an etcd outage demotes a healthy primary, by design).
// With failsafe_mode the leader keeps a failsafe key listing the members;
// only listed members may race. When its renewal fails because etcd is
// unreachable (not because the CAS lost), it asks every listed member over
// the REST API to confirm it as leader. A confirmation is a promise by the
// member not to take the lock for L(1+ε)+m_p on the member's clock
// (AnswerFailsafe); the leader may keep writes until
// oldest-confirmation-send + L(1−ε) − m_f, the same inequality. One member
// missing, and it fences. Pause does not suspend the fence: a resume the
// holder cannot see would let the others race.
//
// Rules the executor must keep for the argument to hold: update the lease
// only from successful CAS responses (or after seeing its own renewal
// applied); arm a timer at the fence deadline; make PostgreSQL die with the
// agent (or a watchdog), since a dead agent cannot fence; report PGCrashed
// only when no backend of the old postmaster is left; never answer a
// failsafe request while its own acquire is in flight.
package haagent
