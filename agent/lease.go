package agent

import (
	"time"

	"github.com/straas/straas/shared/agentproto"
)

// DefaultLease is the lease period of an agent whose user data names none
// (lease_seconds).
const DefaultLease = time.Minute

// Lease decides the lease flags of an agent's heartbeats, so that the control plane
// stores a node's lease once per period plus once per change however many conductors
// read the status queue (DESIGN §11): the decision needs the node's own history, which
// only the agent has. The zero value renews every DefaultLease. Not safe for concurrent
// use: the agent calls it under its lock.
type Lease struct {
	Period time.Duration // default DefaultLease

	last int64  // unix nanoseconds of the last heartbeat the conductor must store; 0: none since boot
	sig  uint64 // digest of the previous heartbeat's state (services, versions, maintenance)
	seen bool   // sig is set
}

// Reset forgets the history: the next heartbeat renews (a boot, a restart).
func (l *Lease) Reset() { l.last, l.sig, l.seen = 0, 0, false }

// Stamp sets hb's Renew, Changed and LeaseSeconds for a heartbeat sent at now. A
// heartbeat that is stored because it changed renews the lease as well: the next
// renewal is a period after it.
func (l *Lease) Stamp(now time.Time, hb *agentproto.Heartbeat) {
	period := l.Period
	if period <= 0 {
		period = DefaultLease
	}
	sig := stateDigest(hb)
	hb.Changed = l.seen && sig != l.sig
	hb.Renew = l.last == 0 || now.UnixNano()-l.last >= int64(period)
	hb.LeaseSeconds = max(1, int((period+time.Second-1)/time.Second))
	l.sig, l.seen = sig, true
	if hb.Renew || hb.Changed {
		l.last = now.UnixNano()
	}
}

// stateDigest is an FNV-1a digest of what Changed compares, independent of the
// services' map order and without allocating.
func stateDigest(hb *agentproto.Heartbeat) uint64 {
	var services uint64
	for k, v := range hb.Services {
		// A sum of per-entry digests does not depend on the iteration order.
		services += fnv1a(fnv1a(fnv1a(fnvOffset, k), "="), v)
	}
	h := fnv1a(fnv1a(fnv1a(fnv1a(fnv1a(fnvOffset, hb.Installed), "\x00"), hb.ConfigRef), "\x00"), hb.ScriptsRef)
	if hb.Maintenance {
		h = fnv1a(h, "\x00m")
	}
	for i := 0; i < 8; i++ {
		h ^= services >> (8 * i) & 0xff
		h *= fnvPrime
	}
	return h
}

const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

func fnv1a(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}
