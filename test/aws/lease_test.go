package aws

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/dynamo"
	"github.com/straas/straas/test/awsendpoint"
)

// leaseRecord is a node's lease as the conductor would store it: due for staleness
// checks at lastSeen plus the renewal period.
func leaseRecord(t testing.TB, node string, seq uint64, at time.Time) store.Record {
	r, err := store.Encode("lease", node, model.Lease{NodeID: node, TopologyID: "t1", LastSeen: at, Seq: seq})
	if err != nil {
		t.Fatal(err)
	}
	r.Index = map[string]store.IndexKey{
		store.IdxDue:      {Part: "lease", Sort: store.SortTime(at.Add(time.Minute))},
		store.IdxTopology: {Part: "t1"},
	}
	return r
}

// TestLeaseWriteCost pins the cost model behind the heartbeat budget (≤ 170 writes/s for
// 10,000 nodes renewing once a minute): every lease write, whatever its condition, is
// exactly one DynamoDB write request of one item, and reading costs no write.
func TestLeaseWriteCost(t *testing.T) {
	cfg := awsendpoint.Config(t)
	s := dynamo.New(cfg, newTable(t), dynamo.Options{})
	ctx := testCtx(t)
	const nodes = 50
	now := time.Now()
	steps := []struct {
		name string
		op   func(node string, round int) store.Op
	}{
		{"create", func(n string, _ int) store.Op { return store.Put(leaseRecord(t, n, 1, now), store.Absent) }},
		{"renew unconditionally", func(n string, r int) store.Op {
			return store.Put(leaseRecord(t, n, uint64(r), now.Add(time.Duration(r)*time.Minute)), store.Any)
		}},
		{"renew at version", func(n string, r int) store.Op {
			rec := leaseRecord(t, n, uint64(r), now.Add(time.Duration(r)*time.Minute))
			rec.Version = int64(r - 1) // round r finds the version the r-1 rounds before made
			return store.Put(rec, store.AtVersion)
		}},
	}
	for i, st := range steps {
		before := s.Counters()
		for n := 0; n < nodes; n++ {
			if err := s.Write(ctx, st.op(fmt.Sprintf("node-%03d", n), i+1)); err != nil {
				t.Fatalf("%s node %d: %v", st.name, n, err)
			}
		}
		after := s.Counters()
		if got := after.WriteRequests - before.WriteRequests; got != nodes {
			t.Errorf("%s: %d write requests for %d lease writes, want one each", st.name, got, nodes)
		}
		if got := after.WriteItems - before.WriteItems; got != nodes {
			t.Errorf("%s: %d items written for %d leases", st.name, got, nodes)
		}
	}
	before := s.Counters()
	recs, err := store.All[model.Lease](ctx, s, "lease", store.Query{})
	if err != nil || len(recs) != nodes {
		t.Fatalf("list leases: got %d, %v", len(recs), err)
	}
	if got := s.Counters().WriteRequests - before.WriteRequests; got != 0 {
		t.Fatalf("listing made %d write requests", got)
	}
}

// BenchmarkLeaseRenewal reports write requests per lease renewal through the adapter
// (writes/op; the budget assumes 1) and the renewals/s this endpoint sustains (moto's
// speed, not DynamoDB's).
func BenchmarkLeaseRenewal(b *testing.B) {
	cfg := awsendpoint.Config(b)
	table := awsendpoint.Name("straas-bench")
	ctx := context.Background()
	if err := dynamo.CreateTable(ctx, cfg, table); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dynamo.DeleteTable(context.Background(), cfg, table) })
	s := dynamo.New(cfg, table, dynamo.Options{})
	now := time.Now()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		rec := leaseRecord(b, fmt.Sprintf("node-%05d", i%10000), uint64(i), now)
		if err := s.Write(ctx, store.Put(rec, store.Any)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	c := s.Counters()
	b.ReportMetric(float64(c.WriteRequests)/float64(b.N), "writes/op")
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "renewals/s")
}
