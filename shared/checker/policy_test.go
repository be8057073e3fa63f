package checker

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straas/straas/shared/alert"
	"github.com/straas/straas/shared/asl/asltest"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/jobs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/policy/actions"
	"github.com/straas/straas/shared/policy/records"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/workflow"
)

// engine is a workflow engine that only records starts.
type engine struct {
	mu     sync.Mutex
	starts []string // machine/name
}

func (e *engine) Start(ctx context.Context, machine, name string, input []byte) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.starts = append(e.starts, machine+"/"+name)
	return "exec-" + name, nil
}
func (e *engine) Describe(context.Context, string) (workflow.Execution, error) {
	return workflow.Execution{}, nil
}
func (e *engine) Stop(context.Context, string, string, string) error            { return nil }
func (e *engine) SendTaskSuccess(context.Context, string, []byte) error         { return nil }
func (e *engine) SendTaskFailure(context.Context, string, string, string) error { return nil }
func (e *engine) SendTaskHeartbeat(context.Context, string) error               { return nil }
func (e *engine) count(machine string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, s := range e.starts {
		if strings.HasPrefix(s, machine+"/") {
			n++
		}
	}
	return n
}

// alerts records what was published.
type alerts struct {
	mu   sync.Mutex
	sent []alert.Alert
}

func (a *alerts) Publish(ctx context.Context, x alert.Alert) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent = append(a.sent, x)
	return nil
}

func (a *alerts) keys(prefix string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, x := range a.sent {
		if strings.HasPrefix(x.Key, prefix) {
			n++
		}
	}
	return n
}

type fixture struct {
	t      *testing.T
	ctx    context.Context
	clk    *clock.Fake
	db     *db.DB
	eng    *engine
	alerts *alerts
	c      *Checker
	comp   model.Component
	nodes  []model.Node
}

func newFixture(t *testing.T, nodes int) *fixture {
	t.Helper()
	ctx := context.Background()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	d := db.New(asltest.NewMemStore(), clk)
	eng := &engine{}
	al := &alerts{}
	l := &jobs.Launcher{DB: d, Workflow: eng, Log: slog.Default()}
	f := &fixture{t: t, ctx: ctx, clk: clk, db: d, eng: eng, alerts: al,
		c: &Checker{DB: d, Batches: &batch.Service{DB: d, Log: slog.Default()}, Launcher: l, Alerts: al, Log: slog.Default(), Clock: clk, StaleAfter: 3 * time.Second}}
	topo := model.Topology{ID: "topo-1", Name: "t", AvailabilityZone: "az1", Tenant: "p", Status: model.StatusActive, CreatedAt: clk.Now()}
	tr, _ := db.TopologyRecord(&topo)
	f.comp = model.Component{ID: "comp-1", TopologyID: topo.ID, Tenant: "p", Name: "zk", Type: "zookeeper", Version: "3.4.6", Size: nodes,
		Flavor: "small", Status: model.StatusActive}
	cr, _ := db.ComponentRecord(&f.comp)
	if err := d.S.Write(ctx, store.Put(tr, store.Any), store.Put(cr, store.Any)); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= nodes; i++ {
		n := model.Node{ID: "n" + string(rune('0'+i)), Name: "t-zk-" + string(rune('0'+i)), TopologyID: topo.ID, ComponentID: f.comp.ID,
			Tenant: "p", Role: "zookeeper", Index: i, Status: model.NodeActive, Flavor: "small", CreatedAt: clk.Now()}
		if err := d.PutNode(ctx, &n); err != nil {
			t.Fatal(err)
		}
		f.nodes = append(f.nodes, n)
		f.beat(n.ID, 10)
	}
	return f
}

// beat writes a node's lease now with a cpu metric.
func (f *fixture) beat(node string, cpu float64) {
	f.t.Helper()
	l := model.Lease{NodeID: node, TopologyID: "topo-1", LastSeen: f.db.Now(), Services: map[string]string{"zookeeper": "running"},
		Metrics: map[string]float64{"cpu": cpu}}
	r, _ := db.LeaseRecord(&l)
	if err := f.db.S.Write(f.ctx, store.Put(r, store.Any)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) attach(spec string) {
	f.t.Helper()
	parsed, err := policy.ParseSpec("spec", []byte(spec))
	if err != nil {
		f.t.Fatal(err)
	}
	p := records.Policy{ID: "pol-" + parsed.Spec.Type, Name: parsed.Spec.Type, Type: parsed.Spec.Type, Version: "1.0", Spec: parsed.Spec, Tenant: "p"}
	pr, _ := records.PolicyRecord(&p)
	b := records.Binding{ComponentID: f.comp.ID, PolicyID: p.ID, PolicyType: p.Type, TopologyID: "topo-1", Tenant: "p", Enabled: true}
	br, _ := records.BindingRecord(&b)
	if err := f.db.S.Write(f.ctx, store.Put(pr, store.Any), store.Put(br, store.Any)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) tick() PolicyReport {
	f.t.Helper()
	r, err := f.c.TickReport(f.ctx)
	if err != nil {
		f.t.Fatalf("tick: %v", err)
	}
	return r.Policy
}

func (f *fixture) events(typ string) []model.Event {
	f.t.Helper()
	evs, _, err := f.db.Events(f.ctx, db.EventFilter{TopologyID: "topo-1", Type: typ, Limit: 1000})
	if err != nil {
		f.t.Fatal(err)
	}
	return evs
}

func (f *fixture) actions(kind string) []model.Action {
	f.t.Helper()
	all, err := store.All[model.Action](f.ctx, f.db.S, db.KindAction, store.Query{})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []model.Action
	for _, a := range all {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

func (f *fixture) setOpState(level, id string, s policy.Settings) {
	f.t.Helper()
	svc := actions.New(f.db, f.c.Launcher, nil)
	tg, err := svc.Resolve(f.ctx, level, id)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := svc.SetOpState(f.ctx, tg, actions.OpRequest{Command: policy.Command{Settings: s}}, "u", "tester"); err != nil {
		f.t.Fatal(err)
	}
}

const healthSpec = `{"type":"straas.policy.health","version":"1.0","properties":{"detection":{"interval":1,"count":3}}}`

func TestNoPoliciesIsCheap(t *testing.T) {
	f := newFixture(t, 3)
	if r := f.tick(); r.Components != 0 || r.Healing != 0 || r.Scaling != 0 {
		t.Fatalf("no policy: %+v", r)
	}
	if f.eng.count(actions.MachineHeal)+f.eng.count(actions.MachineScale) != 0 {
		t.Fatal("an action started without any policy")
	}
}

func TestSilentNodeIsHealedOnce(t *testing.T) {
	f := newFixture(t, 3)
	f.attach(healthSpec)
	f.clk.Advance(5 * time.Second)
	f.beat("n1", 10)
	f.beat("n2", 10) // n3 stays silent
	r := f.tick()
	if r.Healing != 1 || f.eng.count(actions.MachineHeal) != 1 {
		t.Fatalf("report %+v, heal starts %d; want one recovery", r, f.eng.count(actions.MachineHeal))
	}
	hs := f.actions(actions.KindHeal)
	if len(hs) != 1 || hs[0].NodeID != "n3" {
		t.Fatalf("heal actions %+v, want one for n3", hs)
	}
	var in actions.HealInput
	_ = json.Unmarshal(hs[0].Input, &in)
	if in.Mode != policy.DetectHeartbeat || in.DelayedSince != nil {
		t.Errorf("heal input %+v", in)
	}
	f.clk.Advance(time.Second)
	f.beat("n1", 10)
	f.beat("n2", 10)
	f.tick()
	if n := f.eng.count(actions.MachineHeal); n != 1 {
		t.Fatalf("%d recoveries of one node: never twice at once", n)
	}
}

func TestAutohealingOffHoldsThenHealsWithDelayedNote(t *testing.T) {
	f := newFixture(t, 3)
	f.attach(healthSpec)
	f.setOpState(policy.LevelComponent, f.comp.ID, policy.Settings{Autohealing: policy.Off})
	f.clk.Advance(5 * time.Second)
	f.beat("n1", 10)
	f.beat("n2", 10)
	r := f.tick()
	if r.Healing != 0 || r.Pending != 1 {
		t.Fatalf("autohealing off: %+v, want one pending failure, no recovery", r)
	}
	fl, _ := records.New(f.db).NodeFlags(f.ctx, &f.nodes[2])
	if fl.Failure == nil || !fl.Failure.Pending || !strings.Contains(fl.Failure.Why, "autohealing is off") {
		t.Fatalf("flags %+v", fl.Failure)
	}
	if len(f.events("node.failure_pending")) != 1 {
		t.Fatal("no node.failure_pending event")
	}
	f.clk.Advance(time.Second)
	f.beat("n1", 10)
	f.beat("n2", 10)
	if r := f.tick(); r.Pending != 0 || r.Healing != 0 {
		t.Fatalf("held failure recorded again: %+v", r)
	}
	deferred := fl.Failure.Deferred
	f.setOpState(policy.LevelComponent, f.comp.ID, policy.Settings{Autohealing: policy.On})
	f.clk.Advance(time.Second)
	f.beat("n1", 10)
	f.beat("n2", 10)
	if r := f.tick(); r.Healing != 1 {
		t.Fatalf("autohealing on: %+v, want the pending failure healed", r)
	}
	evs := f.events("node.heal_delayed")
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "delayed since "+deferred.UTC().Format(time.RFC3339)) {
		t.Fatalf("delayed events %+v", evs)
	}
	var in actions.HealInput
	_ = json.Unmarshal(f.actions(actions.KindHeal)[0].Input, &in)
	if in.DelayedSince == nil || !in.DelayedSince.Equal(deferred) {
		t.Errorf("heal input delayed_since %v, want %s", in.DelayedSince, deferred)
	}
}

func TestScalingTrigger(t *testing.T) {
	for _, tc := range []struct {
		name        string
		autoscaling string
		wantScale   int
	}{
		{"autoscaling on scales out", policy.On, 1},
		{"autoscaling off tracks the load only", policy.Off, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 3)
			f.attach(`{"type":"straas.policy.scaling","version":"1.0","properties":{"min_size":1,"max_size":5,"period":1,"cooldown":60,
				"triggers":[{"metric":"cpu","threshold":80,"intervals":3,"action":"scale_out"}]}}`)
			f.setOpState(policy.LevelComponent, f.comp.ID, policy.Settings{Autoscaling: tc.autoscaling})
			for i := 0; i < 4; i++ {
				f.clk.Advance(time.Second)
				for _, n := range f.nodes {
					f.beat(n.ID, 95)
				}
				f.tick()
			}
			if got := len(f.actions(actions.KindScaleOut)); got != tc.wantScale {
				t.Fatalf("scale out actions %d, want %d", got, tc.wantScale)
			}
			evs := f.events("component.load")
			if len(evs) != 1 || !strings.Contains(evs[0].Message, "normal -> overload") {
				t.Fatalf("load events %+v, want one normal -> overload", evs)
			}
			st, _ := records.New(f.db).ComponentState(f.ctx, &f.comp)
			if st.Load != policy.LoadOverload {
				t.Errorf("load state %s", st.Load)
			}
			// Back to normal: the state variable changes again, and says so.
			for i := 0; i < 2; i++ {
				f.clk.Advance(time.Second)
				for _, n := range f.nodes {
					f.beat(n.ID, 20)
				}
				f.tick()
			}
			if evs := f.events("component.load"); len(evs) != 2 || !strings.Contains(evs[1].Message, "overload -> normal") {
				t.Fatalf("load events %+v", evs)
			}
		})
	}
}

func TestDegradedAndAlertsOnce(t *testing.T) {
	f := newFixture(t, 3)
	// n3 stops: the stale check flags it, the component degrades, one alert each.
	for i := 0; i < 3; i++ {
		f.clk.Advance(2 * time.Second)
		f.beat("n1", 10)
		f.beat("n2", 10)
		f.tick()
	}
	comp, _, _ := f.db.Component(f.ctx, f.comp.ID)
	if comp.Status != model.StatusDegraded {
		t.Fatalf("component %s, want DEGRADED", comp.Status)
	}
	if f.alerts.keys(alertStale) != 1 || f.alerts.keys(alertDegraded) != 1 {
		t.Fatalf("alerts %+v: want one stale, one degraded", f.alerts.sent)
	}
	// It reports again: ACTIVE, alerts cleared; a second failure is a new episode.
	if _, err := f.db.UpdateNode(f.ctx, "n3", func(n *model.Node) error { n.Status = model.NodeActive; return nil }); err != nil {
		t.Fatal(err)
	}
	f.beat("n3", 10)
	f.tick()
	comp, _, _ = f.db.Component(f.ctx, f.comp.ID)
	if comp.Status != model.StatusActive {
		t.Fatalf("component %s after recovery, want ACTIVE", comp.Status)
	}
	open, _ := records.New(f.db).OpenAlerts(f.ctx)
	if len(open) != 0 {
		t.Fatalf("open alerts after recovery: %+v", open)
	}
	// A failed action: one alert, however many scans see it.
	a := model.Action{ID: db.NewID("act"), Kind: "flexup_component", Tenant: "p", TopologyID: "topo-1", Status: model.ActionFailed,
		CreatedAt: f.db.Now(), Error: &model.ActionError{Error: "NodeFailed", Cause: "install failed"}}
	ar, _ := db.ActionRecord(&a)
	if err := f.db.S.Write(f.ctx, store.Put(ar, store.Any)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		f.clk.Advance(ActionScanEvery)
		for _, n := range f.nodes {
			f.beat(n.ID, 10)
		}
		f.tick()
	}
	if n := f.alerts.keys(alertFailed); n != 1 {
		t.Fatalf("failed action alerts %d, want 1", n)
	}
}

func TestDriftIsAnEvent(t *testing.T) {
	f := newFixture(t, 3)
	f.tick()
	if evs := f.events("topology.drift"); len(evs) != 0 {
		t.Fatalf("drift on a converged topology: %+v", evs)
	}
	// A node disappears behind straas's back.
	if err := f.db.S.Write(f.ctx, store.Del(db.KindNode, "n3", store.Any, 0)); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(DriftEvery)
	for _, n := range f.nodes[:2] {
		f.beat(n.ID, 10)
	}
	f.tick()
	evs := f.events("topology.drift")
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "2 zookeeper node(s), want 3") {
		t.Fatalf("drift events %+v", evs)
	}
	f.clk.Advance(DriftEvery)
	for _, n := range f.nodes[:2] {
		f.beat(n.ID, 10)
	}
	f.tick()
	if evs := f.events("topology.drift"); len(evs) != 1 {
		t.Fatalf("the same drift reported again: %d events", len(evs))
	}
}

func TestDeletedTopologyRecordsCollected(t *testing.T) {
	f := newFixture(t, 1)
	f.attach(healthSpec)
	f.setOpState(policy.LevelComponent, f.comp.ID, policy.Settings{Autohealing: policy.Off})
	if err := f.db.S.Write(f.ctx, store.Del(db.KindTopology, "topo-1", store.Any, 0)); err != nil {
		t.Fatal(err)
	}
	a := model.Action{ID: db.NewID("act"), Kind: "delete_topology", Tenant: "p", TopologyID: "topo-1", Status: model.ActionSucceeded, CreatedAt: f.db.Now()}
	ar, _ := db.ActionRecord(&a)
	if err := f.db.S.Write(f.ctx, store.Put(ar, store.Any)); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(ActionScanEvery)
	f.tick()
	for _, kind := range []string{records.KindBinding, records.KindOpState} {
		recs, _, err := f.db.S.List(f.ctx, kind, store.Query{Index: store.IdxTopology, Part: "topo-1"})
		if err != nil || len(recs) != 0 {
			t.Errorf("%s records left: %d (%v)", kind, len(recs), err)
		}
	}
}
