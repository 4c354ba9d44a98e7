// Package chaos is pigwf's HA chaos suite: faults injected into a 3-node lab cluster in
// synchronous mode under a steady writer, measured side by side with Patroni (the anchor) in
// the same run on the same machine. `make chaos` runs it (go test -tags chaos ./chaos/).
//
// What is measured, per fault and trial:
//
//   - RTO: from the fault's injection to the first write acknowledged whose attempt started
//     after it (a commit already in flight does not count). For faults that should cause no
//     failover (agent or etcd member killed) this is the write unavailability.
//   - Lost acknowledged writes: every id the writer saw acknowledged, read back from the
//     current primary after the trial. A commit counts as acknowledged only if it returned
//     success, without error, within its timeout, and without the notice "canceling wait for
//     synchronous replication" (PostgreSQL reports success for a commit whose synchronous wait
//     was cancelled although it committed locally only).
//   - Two writable primaries: a probe writes on every node concurrently every ~20 ms; a round
//     where two or more nodes acknowledge is an instant with two writable primaries.
//   - Whether the old primary came back as a streaming replica of the new one by itself
//     (pg_stat_replication on the new primary), and how long after the fault was lifted.
//
// The writer (writer.go) inserts increasing ids, trying the node that last acknowledged first
// and the others when it fails or hangs for 50 ms (so a hung primary does not inflate the RTO
// by a commit timeout). The monitor (observe.go) judges health by what PostgreSQL reports, never
// by what an HA system believes: one node out of recovery, the others streaming from it, one
// of them sync.
//
// The suite fails when pigwf loses an acknowledged commit, has two writable primaries, an old
// primary does not come back within 60 s, or the cluster does not heal; timings are reported,
// never judged (the sub-second goal is reported as met or not met).
package chaos
