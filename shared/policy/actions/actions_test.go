package actions

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/straas/straas/shared/asl/asltest"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/jobs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/policy/records"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/workflow"
)

type engine struct {
	mu     sync.Mutex
	starts []string
}

func (e *engine) Start(_ context.Context, machine, name string, _ []byte) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.starts = append(e.starts, machine+"/"+name)
	return name, nil
}
func (e *engine) Describe(context.Context, string) (workflow.Execution, error) {
	return workflow.Execution{}, nil
}
func (e *engine) Stop(context.Context, string, string, string) error            { return nil }
func (e *engine) SendTaskSuccess(context.Context, string, []byte) error         { return nil }
func (e *engine) SendTaskFailure(context.Context, string, string, string) error { return nil }
func (e *engine) SendTaskHeartbeat(context.Context, string) error               { return nil }

type fx struct {
	ctx   context.Context
	db    *db.DB
	clk   *clock.Fake
	svc   *Service
	topo  model.Topology
	comps []model.Component
	nodes []model.Node
}

func newFx(t *testing.T) *fx {
	t.Helper()
	ctx := context.Background()
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Second))
	d := db.New(asltest.NewMemStore(), clk)
	f := &fx{ctx: ctx, db: d, clk: clk, svc: New(d, &jobs.Launcher{DB: d, Workflow: &engine{}, Log: slog.Default()}, nil)}
	f.topo = model.Topology{ID: "topo-1", Name: "t", AvailabilityZone: "az1", Tenant: "p", Status: model.StatusActive}
	tr, _ := db.TopologyRecord(&f.topo)
	ops := []store.Op{store.Put(tr, store.Any)}
	for i, name := range []string{"zk", "kafka"} {
		c := model.Component{ID: "comp-" + name, TopologyID: "topo-1", Tenant: "p", Name: name, Type: name, Size: 2, Status: model.StatusActive, Order: i}
		cr, _ := db.ComponentRecord(&c)
		ops = append(ops, store.Put(cr, store.Any))
		f.comps = append(f.comps, c)
		for j := 1; j <= 2; j++ {
			n := model.Node{ID: c.ID + "-" + string(rune('0'+j)), Name: name + string(rune('0'+j)), TopologyID: "topo-1", ComponentID: c.ID,
				Tenant: "p", Index: j, Status: model.NodeActive}
			nr, _ := db.NodeRecord(&n)
			ops = append(ops, store.Put(nr, store.Any))
			f.nodes = append(f.nodes, n)
		}
	}
	if err := d.S.Write(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fx) target(t *testing.T, level, id string) Target {
	t.Helper()
	tg, err := f.svc.Resolve(f.ctx, level, id)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func TestOpRequestValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		level string
		req   OpRequest
		field string // "" = valid
	}{
		{"autohealing off", policy.LevelNode, OpRequest{Command: policy.Command{Settings: policy.Settings{Autohealing: policy.Off}}}, ""},
		{"nothing", policy.LevelComponent, OpRequest{}, "body"},
		{"bad value", policy.LevelComponent, OpRequest{Command: policy.Command{Settings: policy.Settings{Autoscaling: "maybe"}}}, "autoscaling"},
		{"topology maintenance without propagate", policy.LevelTopology, OpRequest{Command: policy.Command{Settings: policy.Settings{Maintenance: policy.MaintRestart}}}, "propagate"},
		{"topology maintenance propagated", policy.LevelTopology, OpRequest{Command: policy.Command{Settings: policy.Settings{Maintenance: policy.MaintRestart}, Propagate: true}}, ""},
		{"windows on a node", policy.LevelNode, OpRequest{Windows: &[]policy.Window{{Cron: "0 2 * * *", Duration: "1h"}}}, "maintenance_windows"},
		{"restart mode without restart", policy.LevelComponent, OpRequest{Command: policy.Command{Settings: policy.Settings{Autohealing: policy.On}}, RestartMode: "reboot"}, "restart_mode"},
		{"ignore windows without replace", policy.LevelComponent, OpRequest{Command: policy.Command{Settings: policy.Settings{Maintenance: policy.MaintRestart}}, IgnoreWindows: true}, "ignore_windows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.Validate(tc.level)
			if tc.field == "" && err != nil {
				t.Fatalf("got %v, want valid", err)
			}
			if tc.field != "" && (!errs.Is(err, errs.Invalid) || errs.FieldOf(err) != tc.field) {
				t.Fatalf("got %v (field %q), want Invalid on %s", err, errs.FieldOf(err), tc.field)
			}
		})
	}
}

// Maintenance commands on overlapping components queue in submission order; a turn
// comes when the actions ahead have ended; a later command is not undone by an earlier
// action's end.
func TestMaintenanceQueues(t *testing.T) {
	f := newFx(t)
	restart := OpRequest{Command: policy.Command{Settings: policy.Settings{Maintenance: policy.MaintRestart}}}
	a, err := f.svc.SetOpState(f.ctx, f.target(t, policy.LevelComponent, "comp-zk"), restart, "u", "tester")
	if err != nil || a.Action == "" || len(a.Queued) != 0 {
		t.Fatalf("first: %+v %v", a, err)
	}
	// The whole topology, propagated: behind the first on zk.
	b, err := f.svc.SetOpState(f.ctx, f.target(t, policy.LevelTopology, "topo-1"),
		OpRequest{Command: policy.Command{Settings: policy.Settings{Maintenance: policy.MaintRestart}, Propagate: true}}, "u", "tester")
	if err != nil || !slices.Equal(b.Queued, []string{a.Action}) {
		t.Fatalf("second: %+v %v, want queued behind %s", b, err, a.Action)
	}
	var in MaintenanceInput
	act, _, _ := f.db.Action(f.ctx, b.Action)
	_ = json.Unmarshal(act.Input, &in)
	if !slices.Equal(in.Components, []string{"comp-zk", "comp-kafka"}) {
		t.Errorf("propagated maintenance touches %v", in.Components)
	}
	if ok, _, _ := f.svc.Turn(f.ctx, []string{"comp-zk"}, a.Action); !ok {
		t.Error("the first is not first")
	}
	if ok, waiting, _ := f.svc.Turn(f.ctx, in.Components, b.Action); ok || !slices.Equal(waiting, []string{a.Action}) {
		t.Errorf("the second's turn: %v, waiting for %v", ok, waiting)
	}
	// The first ends (and releases): the second's turn comes; the zk level keeps the
	// second command's maintenance, not off.
	if _, err := f.db.UpdateAction(f.ctx, a.Action, func(x *model.Action) error { x.Status = model.ActionSucceeded; return nil }); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := f.svc.Turn(f.ctx, in.Components, b.Action); !ok {
		t.Error("the second's turn did not come after the first ended")
	}
	if err := f.svc.Dequeue(f.ctx, in.Components, b.Action); err != nil {
		t.Fatal(err)
	}
	st, _ := f.svc.Records.ComponentState(f.ctx, &f.comps[0])
	if len(st.Queue) != 0 {
		t.Errorf("queue after both: %v", st.Queue)
	}
	ops, _ := f.svc.Records.OpStates(f.ctx, "topo-1")
	if e := ops.Effective("topo-1", "comp-zk", "comp-zk-1"); e.Maintenance != policy.MaintRestart {
		t.Errorf("zk node maintenance %s: the propagated command is in effect", e.Maintenance)
	}
}

func TestHealOnceAndRelease(t *testing.T) {
	f := newFx(t)
	n := f.nodes[0]
	fail := policy.Failure{Mode: policy.DetectHeartbeat, Reason: "silent"}
	id, started, err := f.svc.Heal(f.ctx, &n, fail, nil)
	if err != nil || !started {
		t.Fatalf("heal: %s %v %v", id, started, err)
	}
	again, started, err := f.svc.Heal(f.ctx, &n, fail, nil)
	if err != nil || started || again != id {
		t.Fatalf("second heal of the same node: %s %v %v, want the first (%s)", again, started, err, id)
	}
	a, _, _ := f.db.Action(f.ctx, id)
	if err := f.svc.Release(f.ctx, &a); err != nil {
		t.Fatal(err)
	}
	fl, _ := f.svc.Records.NodeFlags(f.ctx, &n)
	if fl.Healing != "" || fl.HealFailedAt == nil {
		t.Fatalf("flags after release: %+v", fl)
	}
}

func TestScaleChecks(t *testing.T) {
	f := newFx(t)
	zk := f.comps[0]
	spec := `{"type":"straas.policy.scaling","version":"1.0","properties":{"min_size":2,"max_size":3,"cooldown":30}}`
	parsed, err := policy.ParseSpec("spec", []byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	p := records.Policy{ID: "pol-s", Name: "s", Type: policy.TypeScaling, Version: "1.0", Spec: parsed.Spec, Tenant: "p"}
	pr, _ := records.PolicyRecord(&p)
	bnd := records.Binding{ComponentID: zk.ID, PolicyID: p.ID, PolicyType: p.Type, TopologyID: "topo-1", Tenant: "p", Enabled: true}
	br, _ := records.BindingRecord(&bnd)
	if err := f.db.S.Write(f.ctx, store.Put(pr, store.Any), store.Put(br, store.Any)); err != nil {
		t.Fatal(err)
	}
	req := ScaleRequest{Component: zk, Direction: policy.ScaleOut, Cause: "test"}
	res, err := f.svc.Scale(f.ctx, req)
	if err != nil || res.Decision.Target != 3 || res.ActionID == "" {
		t.Fatalf("scale out: %+v %v", res, err)
	}
	if _, err := f.svc.Scale(f.ctx, req); !errs.Is(err, errs.Conflict) {
		t.Fatalf("while scaling: %v, want a conflict", err)
	}
	if _, err := f.db.UpdateAction(f.ctx, res.ActionID, func(x *model.Action) error { x.Status = model.ActionSucceeded; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Scale(f.ctx, req); !errs.Is(err, errs.Conflict) {
		t.Fatalf("in cooldown: %v, want a conflict", err)
	}
	f.clk.Advance(31 * time.Second)
	if err := f.svc.Dequeue(f.ctx, []string{zk.ID}, res.ActionID); err != nil {
		t.Fatal(err)
	}
	// Autoscaling off refuses, saying so.
	if _, err := f.svc.SetOpState(f.ctx, f.target(t, policy.LevelComponent, zk.ID),
		OpRequest{Command: policy.Command{Settings: policy.Settings{Autoscaling: policy.Off}}}, "u", "tester"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Scale(f.ctx, req); !errs.Is(err, errs.Conflict) {
		t.Fatalf("autoscaling off: %v, want a conflict", err)
	}
}
