package lambda

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/straas/straas/agent"
	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/conductor"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/deps"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/dynamo"
	"github.com/straas/straas/test/awsendpoint"
)

var (
	// moto serves some 50 DynamoDB requests a second and keeps growing (a 10,000-node run
	// took it past 20 GB): the default fleet is small, and the rate is per node — what each
	// agent decides does not depend on the fleet. DESIGN §11's fleet of 10,000 wants a
	// real endpoint (AWS_ENDPOINT_URL) and -timeout 90m.
	leaseNodes   = flag.Int("lease.nodes", 200, "simulated agents of TestLeaseWriteBudget")
	leaseMinutes = flag.Int("lease.minutes", 2, "simulated minutes of steady state TestLeaseWriteBudget counts")
)

// runCtx lasts as long as the test may (a large fleet takes longer than testCtx's
// three minutes on moto).
func runCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	if d, ok := t.Deadline(); ok {
		ctx, cancel = context.WithDeadline(context.Background(), d)
	}
	t.Cleanup(cancel)
	return ctx
}

// leaseTable is an empty straas table on the endpoint.
func leaseTable(t *testing.T) string {
	t.Helper()
	name := awsendpoint.Name("straas-leases")
	if err := dynamo.CreateTable(testCtx(t), awsendpoint.Config(t), name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dynamo.DeleteTable(context.Background(), awsendpoint.Config(t), name) })
	return name
}

// leaseNodeRecords stores n ACTIVE nodes of one topology, as spawn would have.
func leaseNodeRecords(t *testing.T, s store.Store, n int, at time.Time) []string {
	t.Helper()
	ids := make([]string, n)
	var ops []store.Op
	ctx := runCtx(t)
	flush := func() {
		if err := s.Write(ctx, ops...); err != nil {
			t.Fatal(err)
		}
		ops = ops[:0]
	}
	for i := range ids {
		ids[i] = fmt.Sprintf("cmp-lease-%d", i+1)
		r, err := db.NodeRecord(&model.Node{ID: ids[i], Name: fmt.Sprintf("lease-zk-%d", i+1), TopologyID: "topo-lease", ComponentID: "cmp-lease",
			Tenant: "p-demo", Role: "zookeeper", Index: i + 1, Status: model.NodeActive, ServerID: "srv", CreatedAt: at, UpdatedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		if ops = append(ops, store.Put(r, store.Any)); len(ops) == 25 {
			flush()
		}
	}
	if len(ops) > 0 {
		flush()
	}
	return ids
}

// instance is one conductor execution environment: its own store client (and request
// counters) and its own memory, on the shared table.
type instance struct {
	store *dynamo.Store
	cond  *conductor.Conductor
}

func newInstances(t *testing.T, table string, k int, fake clock.Clock, renewal, staleAfter time.Duration) []instance {
	out := make([]instance, k)
	for i := range out {
		s := dynamo.New(awsendpoint.Config(t), table, dynamo.Options{Clock: fake})
		d := db.New(s, fake)
		out[i] = instance{store: s, cond: &conductor.Conductor{DB: d, Batches: &batch.Service{DB: d, Log: quiet()}, Log: quiet(),
			LeaseRenewal: renewal, StaleAfter: staleAfter}}
	}
	return out
}

func counts(is []instance) dynamo.Counters {
	var c dynamo.Counters
	for _, i := range is {
		x := i.store.Counters()
		c.WriteRequests += x.WriteRequests
		c.WriteItems += x.WriteItems
		c.ReadRequests += x.ReadRequests
	}
	return c
}

// simAgent is one node's agent as far as heartbeats go: the real agent.Lease decides
// its flags.
type simAgent struct {
	id       string
	lease    agent.Lease
	seq      uint64
	next     time.Time
	changeAt time.Time // when its service fails (zero: never)
	changed  bool
}

type leaseRun struct {
	heartbeats, flagged, changes int // in the counted window
	writes, reads                uint64
}

// simulate runs agents heartbeating every 10 s ± 10 % through the conductor instances
// (each message to a random one, as SQS hands batches to concurrent Lambda
// environments) on the fake clock, for warm-up then window, and counts the window.
// stamp=false sends what agents sent before they decided (no flags, no lease_seconds).
func simulate(t *testing.T, fake *clock.Fake, is []instance, ids []string, warm, window time.Duration, changeShare float64, stamp bool) leaseRun {
	t.Helper()
	ctx := runCtx(t)
	const every = 10 * time.Second
	start := fake.Now()
	end, from := start.Add(warm+window), start.Add(warm)
	agents := make([]*simAgent, len(ids))
	for i, id := range ids {
		a := &simAgent{id: id, next: start.Add(time.Duration(rand.Int64N(int64(every))))}
		if rand.Float64() < changeShare {
			a.changeAt = from.Add(time.Duration(rand.Int64N(int64(window))))
		}
		agents[i] = a
	}
	var run leaseRun
	var c0 dynamo.Counters
	counting := false
	type msg struct {
		to   int
		body []byte
	}
	for now := fake.Now(); now.Before(end); now = fake.Now() {
		if !counting && !now.Before(from) {
			counting, c0 = true, counts(is)
		}
		var batch []msg
		for _, a := range agents {
			if a.next.After(now) {
				continue
			}
			a.seq++
			hb := &agentproto.Heartbeat{Seq: a.seq, Services: map[string]string{"zookeeper": "running"}, Installed: "3.8.4",
				Metrics: map[string]float64{"cpu": rand.Float64() * 100}}
			if !a.changeAt.IsZero() && !now.Before(a.changeAt) {
				hb.Services["zookeeper"] = "failed"
				if !a.changed && counting {
					run.changes++
				}
				a.changed = true
			}
			if stamp {
				a.lease.Stamp(now, hb)
			}
			if counting {
				run.heartbeats++
				if hb.Renew || hb.Changed {
					run.flagged++
				}
			}
			body, err := agentproto.Encode(agentproto.Envelope{Type: agentproto.TypeHeartbeat, Node: a.id, At: now, Heartbeat: hb})
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, msg{to: rand.IntN(len(is)), body: body})
			a.next = a.next.Add(time.Duration(float64(every) * (1 + 0.1*(2*rand.Float64()-1))))
		}
		// Handled concurrently, as Lambda environments and the handler's own workers do.
		var wg sync.WaitGroup
		work := make(chan msg)
		errc := make(chan error, 1)
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for m := range work {
					if err := is[m.to].cond.Handle(ctx, m.body); err != nil {
						select {
						case errc <- err:
						default:
						}
					}
				}
			}()
		}
		for _, m := range batch {
			work <- m
		}
		close(work)
		wg.Wait()
		select {
		case err := <-errc:
			t.Fatal(err)
		default:
		}
		fake.Advance(time.Second)
	}
	c := counts(is)
	run.writes, run.reads = c.WriteRequests-c0.WriteRequests, c.ReadRequests-c0.ReadRequests
	return run
}

// DESIGN §11: lease renewals at most once a minute per node plus status changes, ≤ 170
// writes/s for 10,000 nodes on DynamoDB — however many conductor instances share the
// status queue. The agents decide (agent.Lease): two conductors on the DynamoDB adapter
// write exactly the heartbeats marked Renew or Changed, once each. Before, each
// instance renewed by its own memory, and two instances wrote about twice the budget.
func TestLeaseWriteBudget(t *testing.T) {
	n, window := *leaseNodes, time.Duration(*leaseMinutes)*time.Minute
	table := leaseTable(t)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	setup := dynamo.New(awsendpoint.Config(t), table, dynamo.Options{})
	ids := leaseNodeRecords(t, setup, n, t0)
	cfg := newStackConfig(t)

	fake := clock.NewFake(t0)
	is := newInstances(t, table, 2, fake, cfg.LeaseRenewal, cfg.StaleAfter)
	run := simulate(t, fake, is, ids, time.Minute, window, 0.02, true)
	minutes := window.Minutes()
	perNode := float64(run.writes) / float64(n) / minutes
	budget := 1 + float64(run.changes)/float64(n)/minutes
	t.Logf("%d nodes, 2 conductors, %v counted: %d heartbeats, %d marked, %d service changes -> %d writes, %d reads: "+
		"%.3f writes per node per minute (budget %.3f); at 10,000 nodes %.0f writes/s (DESIGN §11: ≤ 170)",
		n, window, run.heartbeats, run.flagged, run.changes, run.writes, run.reads, perNode, budget, perNode*10000/60)
	if run.writes != uint64(run.flagged) {
		t.Errorf("got %d writes for %d heartbeats marked Renew or Changed: want exactly one each", run.writes, run.flagged)
	}
	if perNode > budget {
		t.Errorf("%.3f writes per node per minute, over the budget of one renewal a minute plus changes (%.3f)", perNode, budget)
	}
	if perNode < 0.75 {
		t.Errorf("%.3f writes per node per minute: leases are not renewed every minute (the checker would flag nodes)", perNode)
	}
	if run.reads > run.writes {
		t.Errorf("%d reads for %d writes: the stale check reads at most once per write", run.reads, run.writes)
	}

	// The same fleet, as agents sent it before (no flags): each instance renews by its
	// own memory, and the two together exceed the budget. (A smaller fleet suffices.)
	m := min(200, max(50, n/5))
	fake = clock.NewFake(t0.Add(time.Hour))
	legacy := simulate(t, fake, newInstances(t, table, 2, fake, cfg.LeaseRenewal, cfg.StaleAfter), ids[:m], time.Minute, window, 0, false)
	lp := float64(legacy.writes) / float64(m) / minutes
	t.Logf("without the agents' flags: %.3f writes per node per minute", lp)
	if lp < 1.4 {
		t.Errorf("conductor-decided renewals through two instances: %.3f writes per node per minute; the comparison should show about 2", lp)
	}
}

// newStackConfig is the functions' configuration with the template's defaults.
func newStackConfig(t *testing.T) deps.AWSConfig {
	t.Helper()
	env := map[string]string{deps.EnvTable: "t", deps.EnvKeystoneURL: "http://ks/v3", deps.EnvCloudZones: "az1",
		deps.EnvConfigRepo: "https://git/c.git", deps.EnvScriptsRepo: "https://git/s.git", deps.EnvSecret: "{}"}
	cfg, err := deps.ParseAWSConfig(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LeaseRenewal <= 0 {
		t.Fatalf("AWS lease renewal %v: the conductor would write every heartbeat", cfg.LeaseRenewal)
	}
	return cfg
}

// What the conductor writes for each heartbeat, in AWS mode (agent-decided leases) and
// for the cases around it.
func TestLeaseWriteDecisions(t *testing.T) {
	table := leaseTable(t)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := newStackConfig(t)
	type beat struct {
		instance int
		after    time.Duration // since the previous beat
		seq      uint64
		at       time.Duration // agent's send time, since t0 (default: the conductor's time)
		renew    bool
		changed  bool
		lease    int  // lease_seconds (0: an agent that predates the flags)
		writes   int  // write requests it causes
		restored bool // the node is ACTIVE again after it
	}
	tests := []struct {
		name    string
		renewal time.Duration
		status  string // the node's stored status
		stale   bool   // its stored lease is flagged by the checker
		beats   []beat
	}{
		{"renew and change are written, nothing else", cfg.LeaseRenewal, model.NodeActive, false, []beat{
			{0, 0, 1, -1, true, false, 60, 1, false},
			{0, 10 * time.Second, 2, -1, false, false, 60, 0, false},
			{1, 10 * time.Second, 3, -1, false, false, 60, 0, false},
			{1, 10 * time.Second, 4, -1, false, true, 60, 1, false}, // reads the lease: not silent
			{0, 10 * time.Second, 5, -1, false, false, 60, 0, false},
			{0, 30 * time.Second, 6, -1, true, false, 60, 1, false},
		}},
		{"a redelivery and a late heartbeat are not written twice", cfg.LeaseRenewal, model.NodeActive, false, []beat{
			{0, 0, 5, 100 * time.Second, true, false, 60, 1, false},
			{0, time.Second, 5, 100 * time.Second, true, false, 60, 0, false}, // the same message again
			{0, time.Second, 4, 90 * time.Second, false, true, 60, 0, false},  // older than what was written
			{0, time.Second, 1, 200 * time.Second, true, false, 60, 1, false}, // a restarted agent counts again
		}},
		{"a flagged node is restored by its first heartbeat", cfg.LeaseRenewal, model.NodeUnreachable, true, []beat{
			{0, 0, 7, -1, false, false, 60, 3, true}, // the lease, the node, its event
			{0, 10 * time.Second, 8, -1, false, false, 60, 0, false},
		}},
		{"a node flagged while this instance knew it", cfg.LeaseRenewal, model.NodeActive, false, []beat{
			{0, 0, 1, -1, true, false, 60, 1, false},
			// flagged meanwhile (below, before this beat), heard from again 4 minutes later
			{0, 4 * time.Minute, 2, -1, true, false, 60, 3, true},
		}},
		{"an agent without flags is renewed by the conductor's clock", cfg.LeaseRenewal, model.NodeActive, false, []beat{
			{0, 0, 1, -1, false, false, 0, 2, false}, // first seen here: the lease, and the node checked for a flag (a write)
			{0, 10 * time.Second, 2, -1, false, false, 0, 0, false},
			{0, 55 * time.Second, 3, -1, false, false, 0, 1, false},
		}},
		{"embedded writes every heartbeat", 0, model.NodeActive, false, []beat{
			{0, 0, 1, -1, true, false, 60, 2, false},
			{0, 10 * time.Second, 2, -1, false, false, 60, 1, false},
		}},
	}
	for ti, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := clock.NewFake(t0)
			setup := db.New(dynamo.New(awsendpoint.Config(t), table, dynamo.Options{}), fake)
			node := fmt.Sprintf("cmp-decide-%d", ti)
			nr, err := db.NodeRecord(&model.Node{ID: node, Name: node, TopologyID: "topo-lease", ComponentID: "cmp-decide", Status: tc.status, ServerID: "srv"})
			if err != nil {
				t.Fatal(err)
			}
			ops := []store.Op{store.Put(nr, store.Any)}
			if tc.stale {
				lr, err := db.LeaseRecord(&model.Lease{NodeID: node, TopologyID: "topo-lease", LastSeen: t0.Add(-10 * time.Minute), Stale: true})
				if err != nil {
					t.Fatal(err)
				}
				ops = append(ops, store.Put(lr, store.Any))
			}
			if err := setup.S.Write(testCtx(t), ops...); err != nil {
				t.Fatal(err)
			}
			is := newInstances(t, table, 2, fake, tc.renewal, cfg.StaleAfter)
			for i, b := range tc.beats {
				fake.Advance(b.after)
				if tc.name == "a node flagged while this instance knew it" && i == 1 {
					flagStale(t, setup, node, t0)
				}
				at := fake.Now()
				if b.at >= 0 {
					at = t0.Add(b.at)
				}
				hb := &agentproto.Heartbeat{Seq: b.seq, Renew: b.renew, Changed: b.changed, LeaseSeconds: b.lease, Services: map[string]string{"zookeeper": "running"}}
				body, err := agentproto.Encode(agentproto.Envelope{Type: agentproto.TypeHeartbeat, Node: node, At: at, Heartbeat: hb})
				if err != nil {
					t.Fatal(err)
				}
				before := is[b.instance].store.Counters()
				if err := is[b.instance].cond.Handle(testCtx(t), body); err != nil {
					t.Fatal(err)
				}
				if writes := is[b.instance].store.Counters().WriteRequests - before.WriteRequests; writes != uint64(b.writes) {
					t.Errorf("beat %d (seq %d renew=%v changed=%v): %d writes, want %d", i, b.seq, b.renew, b.changed, writes, b.writes)
				}
				if b.restored {
					if n, _, err := setup.Node(testCtx(t), node); err != nil || n.Status != model.NodeActive {
						t.Errorf("beat %d: node %s is %s (%v), want ACTIVE again", i, node, n.Status, err)
					}
				}
			}
		})
	}
}

// flagStale does what the checker does to a silent node: its lease flagged, the node
// UNREACHABLE.
func flagStale(t *testing.T, d *db.DB, node string, since time.Time) {
	t.Helper()
	l, err := d.Lease(testCtx(t), node)
	if err != nil {
		t.Fatal(err)
	}
	l.Stale = true
	lr, err := db.LeaseRecord(&l)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.S.Write(testCtx(t), store.Put(lr, store.Any)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.UpdateNode(testCtx(t), node, func(n *model.Node) error { n.Status = model.NodeUnreachable; return nil }); err != nil {
		t.Fatal(err)
	}
}

// The conductor function runs in the agents-decide mode: through its SQS handler, a
// heartbeat marked neither Renew nor Changed leaves the stored lease alone.
func TestConductorFunctionWritesMarkedHeartbeats(t *testing.T) {
	s := newStack(t)
	ctx := testCtx(t)
	d := s.db()
	nr, err := db.NodeRecord(&model.Node{ID: "cmp-fn-1", Name: "fn-zk-1", TopologyID: "topo-fn", ComponentID: "cmp-fn", Status: model.NodeActive, ServerID: "srv"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.S.Write(ctx, store.Put(nr, store.Any)); err != nil {
		t.Fatal(err)
	}
	h, err := s.lambda.Conductor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct {
		seq            uint64
		renew, changed bool
		wantSeq        uint64 // of the stored lease after it
	}{
		{1, true, false, 1},
		{2, false, false, 1},
		{3, false, true, 3},
		{4, false, false, 3},
	} {
		body, err := agentproto.Encode(agentproto.Envelope{Type: agentproto.TypeHeartbeat, Node: "cmp-fn-1", At: time.Now(),
			Heartbeat: &agentproto.Heartbeat{Seq: b.seq, Renew: b.renew, Changed: b.changed, LeaseSeconds: 60}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h(ctx, events.SQSEvent{Records: []events.SQSMessage{{MessageId: fmt.Sprint(b.seq), Body: string(body)}}}); err != nil {
			t.Fatal(err)
		}
		l, err := d.Lease(ctx, "cmp-fn-1")
		if err != nil || l.Seq != b.wantSeq {
			t.Fatalf("after heartbeat %d (renew=%v changed=%v): stored lease seq %d, %v; want %d", b.seq, b.renew, b.changed, l.Seq, err, b.wantSeq)
		}
	}
}
