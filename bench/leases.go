package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/conductor"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/bolt"
)

// countingStore counts write requests and the lease records among them.
type countingStore struct {
	store.Store
	writes, leases atomic.Int64
}

func (c *countingStore) Write(ctx context.Context, ops ...store.Op) error {
	err := c.Store.Write(ctx, ops...)
	if err == nil {
		c.writes.Add(1)
		for _, op := range ops {
			if op.Record.Kind == db.KindLease {
				c.leases.Add(1)
			}
		}
	}
	return err
}

// runLeaseWrites measures scenario 3b at n nodes: the real conductor configured as the
// AWS deployment runs it (lease renewal 1 min, stale after 3 min) handles n nodes'
// heartbeats every 10 s ± 10 % on a fake clock, so that minutes of steady state take
// seconds; what is counted is the store writes it decides to make.
func runLeaseWrites(ctx context.Context, r *report, n int, quick bool) error {
	warm, window := 2*time.Minute, 5*time.Minute
	if quick {
		window = 2 * time.Minute
	}
	const every = 10 * time.Second
	dir, cleanup, err := tempDir("leases")
	if err != nil {
		return err
	}
	defer cleanup()
	log, logs := quietLogger()
	defer noteLogs(r, fmt.Sprintf("lease writes at %d nodes", n), logs)
	st, err := bolt.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	cs := &countingStore{Store: st}
	fake := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	d := db.New(cs, fake)
	ids, err := benchNodes(ctx, d, "lease", n)
	if err != nil {
		return err
	}
	cond := &conductor.Conductor{DB: d, Batches: &batch.Service{DB: d, Log: log}, Log: log,
		LeaseRenewal: time.Minute, StaleAfter: 3 * time.Minute}

	type beat struct {
		at   time.Time
		node int
	}
	due := make([]beat, n)
	seq := make([]uint64, n)
	for i := range due {
		due[i] = beat{at: fake.Now().Add(time.Duration(rand.Int64N(int64(every)))), node: i}
	}
	jitter := func() time.Duration {
		return time.Duration(float64(every) * (1 + 0.1*(2*rand.Float64()-1)))
	}
	step := time.Second // coarse enough that each step's writes share a few fsyncs
	end := fake.Now().Add(warm + window)
	measureFrom := fake.Now().Add(warm)
	var w0, l0 int64
	measuring := false
	handled := int64(0)
	b := bar(int((warm+window)/time.Second), fmt.Sprintf("lease writes, %d nodes: simulated seconds", n))
	begin := fake.Now()
	for fake.Now().Before(end) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		now := fake.Now()
		if !measuring && !now.Before(measureFrom) {
			measuring, w0, l0 = true, cs.writes.Load(), cs.leases.Load()
		}
		sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
		k := sort.Search(len(due), func(i int) bool { return due[i].at.After(now) })
		bodies := make([][]byte, k)
		for i := 0; i < k; i++ {
			x := due[i].node
			seq[x]++
			body, err := agentproto.Encode(agentproto.Envelope{Type: agentproto.TypeHeartbeat, Node: ids[x], At: now,
				Heartbeat: &agentproto.Heartbeat{Seq: seq[x], Services: map[string]string{"zookeeper": "running"},
					Metrics: map[string]float64{"cpu": rand.Float64() * 100}, Installed: "3.4.6"}})
			if err != nil {
				return err
			}
			bodies[i] = body
			due[i].at = due[i].at.Add(jitter())
		}
		if err := parallel(ctx, 32, k, func(i int) error { return cond.Handle(ctx, bodies[i]) }); err != nil {
			return err
		}
		if measuring {
			handled += int64(k)
		}
		fake.Advance(step)
		_ = b.Set(int(fake.Now().Sub(begin) / time.Second))
	}
	_ = b.Finish()
	secs := window.Seconds()
	writes, leases := cs.writes.Load()-w0, cs.leases.Load()-l0
	r.setup("3b", "the real conductor as the AWS deployment configures it (lease renewal 1 min, stale after 3 min) handles every node's heartbeat "+
		"(every 10 s ± 10 %%, services unchanged) on a fake clock: %v warm-up, then %v of steady state counted; size = nodes. "+
		"The store's writes are what a DynamoDB table would be billed for", warm, window)
	r.add("3b", n, "heartbeats", float64(handled)/secs, "/s")
	r.add("3b", n, "lease writes", float64(leases)/secs, "/s")
	r.add("3b", n, "store writes", float64(writes)/secs, "/s")
	r.add("3b", n, "writes per node", float64(writes)/float64(n)/(secs/60), "/min")
	if n == 10000 && float64(writes)/secs > 170 {
		r.note("lease writes exceed 170/s at 10,000 nodes")
	}
	return nil
}
