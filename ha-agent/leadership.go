package haagent

import "time"

// LeaseIsMine: the leader key, as this view shows it, still carries what
// member me's lease wrote. The view may lag behind my own last renewal,
// hence <=; the executor updates its lease when it sees its own renewal
// applied after an unanswered request.
func (v ClusterView) LeaseIsMine(me string, lease *Lease) bool {
	lr := v.Leader
	return lease != nil && lr != nil && lr.Holder == me && lr.ModRevision <= lease.Revision
}

// LeaderStale: the leader key is absent, or has not changed for longer
// than L(1+ε)+m_p on MY clock since I last saw it change; only then may
// I race for the lock.
func (v ClusterView) LeaderStale(now time.Duration) bool {
	return v.Leader == nil || now >= v.Leader.StaleAt(v.Config)
}

// FailsafeProof is what the failsafe confirmations a holder gathered
// over the REST API prove while it cannot reach etcd (doc.go, "etcd
// unreachable").
type FailsafeProof struct {
	// Confirmed are the other members of the failsafe key that confirmed me.
	Confirmed []string
	// Missing are the other members of the failsafe key that did not.
	Missing []string
	// Oldest is the SEND time of the oldest confirmed request: the
	// extension is timed from it, as a renewal is from its send time.
	Oldest time.Duration
}

// FailsafeProof collects, for holder me, the confirmations in acks
// (member → send time of the request it confirmed) against the failsafe
// key, in the key's order.
func (v ClusterView) FailsafeProof(me string, acks map[string]time.Duration) FailsafeProof {
	var p FailsafeProof
	for _, name := range v.FailsafeMembers {
		if name == me {
			continue
		}
		sent, ok := acks[name]
		if !ok {
			p.Missing = append(p.Missing, name)
			continue
		}
		if len(p.Confirmed) == 0 || sent < p.Oldest {
			p.Oldest = sent
		}
		p.Confirmed = append(p.Confirmed, name)
	}
	return p
}

// Deadline is the holder deadline the confirmations prove: the oldest
// confirmation's send time + L(1−ε) − m_f. ok is false when a member of
// the key did not confirm, and when the key lists no other member: then
// no confirmation bounds an extension, and the fence timer keeps the
// lease's own deadline.
func (p FailsafeProof) Deadline(cfg Config) (deadline time.Duration, ok bool) {
	if len(p.Missing) > 0 || len(p.Confirmed) == 0 {
		return 0, false
	}
	return cfg.HolderDeadline(p.Oldest), true
}
