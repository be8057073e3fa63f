package e2e

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	restapi "github.com/straas/straas/shared/api"
	"github.com/straas/straas/test/harness"
)

// TestOpStateAutohealingOffThenOn (seed 001): with autohealing off a silent node's
// failure is recorded on the node and as an event, and nothing heals it; turned back on,
// the pending failure is healed and the event says healing was delayed, since when.
func TestOpStateAutohealingOffThenOn(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, lcTopology("hold-1", 3, 0, -1))
	zk := lcComp(t, topo, "zk")
	plAttach(t, c, zk.ID, plPolicy(t, c, "replace silent", plHealth("replace")))
	set := plSetOp(t, c, "component", zk.ID, map[string]any{"autohealing": "off"})
	if set.OperationalState.Effective.Autohealing != "off" || strings.Join(set.Changed, ",") != "autohealing" {
		t.Fatalf("autohealing off: %+v", set)
	}
	victim := lcNode(t, zk, 3)
	plSilence(t, s, victim.ServerID, true)

	pending := plWaitEvent(t, c, topo.ID, "node.failure_pending", victim.ID, 30*time.Second)
	if !strings.Contains(pending.Message, "autohealing is off") {
		t.Errorf("pending event: %s", pending.Message)
	}
	time.Sleep(4 * time.Second) // longer than detection and recovery would take: nothing may heal it
	if h := plActions(t, c, topo.ID, "heal_node,replace_node"); len(h) != 0 {
		t.Fatalf("recovered with autohealing off: %+v", h)
	}
	n := plOp(t, c, "node", victim.ID)
	if n.Flags == nil || n.Flags.Failure == nil || !n.Flags.Failure.Pending || n.Effective.Autohealing != "off" {
		t.Fatalf("node state with autohealing off: %+v", n)
	}
	since := n.Flags.Failure.Deferred
	if plNodeByID(t, lcTopo(t, c, topo.ID), victim.ID).ServerID != victim.ServerID {
		t.Fatal("the node was replaced with autohealing off")
	}

	plSetOp(t, c, "component", zk.ID, map[string]any{"autohealing": "on"})
	delayed := plWaitEvent(t, c, topo.ID, "node.heal_delayed", victim.ID, 30*time.Second)
	if want := "healing was delayed since " + since.UTC().Format(time.RFC3339); !strings.Contains(delayed.Message, want) {
		t.Errorf("delayed event %q, want it to say %q", delayed.Message, want)
	}
	plWaitEvent(t, c, topo.ID, "node.healed", victim.ID, 60*time.Second)
	if got := plNodeByID(t, lcTopo(t, c, topo.ID), victim.ID); got.Status != "ACTIVE" || got.ServerID == victim.ServerID {
		t.Fatalf("after autohealing on: %s on %s", got.Status, got.ServerID)
	}
	if n := plOp(t, c, "node", victim.ID); n.Flags != nil {
		t.Errorf("flags left: %+v", n.Flags)
	}
}

// TestOpStateMaintenanceRestartResume (seed 001): maintenance restart signals each node
// (one zookeeper member at a time) with a maintenance event; each agent restarts (here:
// reboots) and sends a resume event, which clears the node's flags; the component's
// maintenance goes back to off. A second command meanwhile is queued behind the first
// and says so.
func TestOpStateMaintenanceRestartResume(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, lcTopology("maint-1", 3, 0, -1))
	zk := lcComp(t, topo, "zk")
	first := plSetOp(t, c, "component", zk.ID, map[string]any{"maintenance": "restart", "restart_mode": "reboot"})
	if first.Action == nil || first.OperationalState.Effective.Maintenance != "restart" {
		t.Fatalf("maintenance restart: %+v", first)
	}
	// In quick succession: serialised, and reported.
	second := plSetOp(t, c, "component", zk.ID, map[string]any{"maintenance": "restart"})
	if second.Action == nil || len(second.QueuedBehind) != 1 || second.QueuedBehind[0] != first.Action.ID || !strings.Contains(second.Note, "queued behind") {
		t.Fatalf("second command: %+v, want it queued behind %s", second, first.Action.ID)
	}
	a1 := harness.WaitAction(t, c, first.Action.ID, 90*time.Second)
	lcSucceeded(t, a1)
	a2 := harness.WaitAction(t, c, second.Action.ID, 90*time.Second)
	lcSucceeded(t, a2)
	// One member at a time: three waves of one node, each resumed.
	var waves int
	for _, st := range a1.Stages {
		if strings.HasPrefix(st.Name, "maintenance/resume#") {
			waves++
			if st.NodesTotal != 1 || st.NodesDone != 1 || st.Status != "SUCCEEDED" {
				t.Errorf("wave %s: %d/%d %s", st.Name, st.NodesDone, st.NodesTotal, st.Status)
			}
		}
	}
	if waves != 3 {
		t.Errorf("%d waves, want 3 (one zookeeper member at a time)\n%s", waves, lcStages(a1))
	}
	// The second ran after the first: its turn stage says whom it waited for, and its
	// nodes were signalled only once the first had ended.
	if st, ok := lcStage(a2, "", "maintenance/wait_turn"); !ok || !strings.Contains(st.Detail, first.Action.ID) {
		t.Errorf("second action's wait_turn stage does not name %s:\n%s", first.Action.ID, lcStages(a2))
	}
	plan, ok := lcStage(a2, "zk", "maintenance/plan")
	if !ok || a1.FinishedAt == nil || plan.StartedAt.Before(*a1.FinishedAt) {
		t.Errorf("the second action planned at %v, before the first ended (%v)", plan.StartedAt, a1.FinishedAt)
	}
	resumes := plEvents(t, c, url.Values{"topology_id": {topo.ID}, "type": {"agent.resume"}, "action_id": {a1.ID}})
	if len(resumes) != 3 {
		t.Errorf("%d resume events of the first action, want 3", len(resumes))
	}
	op := plOp(t, c, "component", zk.ID)
	if op.Effective.Maintenance != "off" || op.Own.Maintenance != "off" || len(op.Queue) != 0 {
		t.Errorf("after maintenance: %+v", op)
	}
	for _, n := range op.Nodes {
		if n.Flags != nil || n.Status != "ACTIVE" {
			t.Errorf("node %s after maintenance: %s %+v", n.Name, n.Status, n.Flags)
		}
	}
}

// TestOpStatePropagation (seed 001 Q&A 2): a state applies to the level it is set on and
// to a component's nodes; it reaches a topology's components only with propagate; a
// propagated command overrides what the levels below had set.
func TestOpStatePropagation(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, lcTopology("prop-1", 1, 1, -1))
	zk, kafka := lcComp(t, topo, "zk"), lcComp(t, topo, "kafka")
	node := lcNode(t, kafka, 1)

	plSetOp(t, c, "topology", topo.ID, map[string]any{"autoscaling": "off"})
	view := plOp(t, c, "topology", topo.ID)
	if view.Effective.Autoscaling != "off" || len(view.Components) != 2 {
		t.Fatalf("topology view %+v", view)
	}
	for _, comp := range view.Components {
		if comp.Effective.Autoscaling != "on" {
			t.Errorf("component %s autoscaling %s: a topology's state reaches it only with propagate", comp.Name, comp.Effective.Autoscaling)
		}
	}
	// A node's own setting, then a component's: the node keeps its own.
	plSetOp(t, c, "node", node.ID, map[string]any{"autohealing": "off"})
	plSetOp(t, c, "component", kafka.ID, map[string]any{"autohealing": "on"})
	if n := plOp(t, c, "node", node.ID); n.Effective.Autohealing != "off" || n.Own.Autohealing != "off" {
		t.Errorf("node after its component's autohealing on: %+v", n)
	}
	// Propagated from the topology: every component and node follows, overrides cleared.
	set := plSetOp(t, c, "topology", topo.ID, map[string]any{"autohealing": "off", "propagate": true})
	if strings.Join(set.OperationalState.Propagated, ",") != "autohealing" {
		t.Errorf("propagated fields %v", set.OperationalState.Propagated)
	}
	for _, comp := range set.OperationalState.Components {
		if comp.Effective.Autohealing != "off" || comp.Own.Autohealing != "" {
			t.Errorf("component %s after a propagated command: %+v", comp.Name, comp)
		}
		for _, n := range comp.Nodes {
			if n.Effective.Autohealing != "off" || n.Own.Autohealing != "" {
				t.Errorf("node %s after a propagated command: %+v", n.Name, n)
			}
		}
	}
	if z := plOp(t, c, "component", zk.ID); z.Effective.Autoscaling != "on" {
		t.Errorf("zk autoscaling %s: the earlier topology command was not propagated", z.Effective.Autoscaling)
	}
	// Maintenance of a topology without propagate would reach no node: refused, saying why.
	e := lcCall(t, c, "PUT", lcAPI+"/topologies/"+topo.ID+"/operational_state", map[string]any{"maintenance": "restart"}, nil)
	if e == nil || e.Status != http.StatusBadRequest || e.Field != "propagate" {
		t.Errorf("topology maintenance without propagate: %+v", e)
	}
	// Windows: declared on a component, shown with the next opening.
	set = plSetOp(t, c, "component", zk.ID, map[string]any{"maintenance_windows": []map[string]string{{"cron": "0 2 * * SAT", "duration": "4h", "time_zone": "Europe/Paris"}}})
	if w := set.OperationalState.NextWindow; w == nil || w.Window.TimeZone != "Europe/Paris" || (!w.Open && !w.Opens.After(time.Now())) {
		t.Errorf("next window %+v", w)
	}
	e = lcCall(t, c, "PUT", lcAPI+"/components/"+zk.ID+"/operational_state", map[string]any{"maintenance_windows": []map[string]string{{"cron": "0 2 * *", "duration": "4h"}}}, nil)
	if e == nil || e.Status != http.StatusBadRequest || e.Field != "maintenance_windows[0].cron" {
		t.Errorf("bad window: %+v", e)
	}
	// Every change is an event.
	if evs := plEvents(t, c, url.Values{"topology_id": {topo.ID}, "type": {"opstate.set"}}); len(evs) < 5 {
		t.Errorf("%d opstate.set events, want one per change", len(evs))
	}
}

// TestOpStateMaintenanceReplaceWaitsForWindow: maintenance replace is disruptive and not
// urgent: outside the component's maintenance window it waits, and its action says so;
// with ignore_windows it runs at once, one node at a time, through the replace workflow.
func TestOpStateMaintenanceReplaceWaitsForWindow(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, lcTopology("mrep-1", 3, 0, -1))
	zk := lcComp(t, topo, "zk")
	// A window that is not open now: an hour from now, every day.
	at := time.Now().UTC().Add(time.Hour)
	cron := strings.Join([]string{strconv.Itoa(at.Minute()), strconv.Itoa(at.Hour()), "*", "*", "*"}, " ")
	plSetOp(t, c, "component", zk.ID, map[string]any{"maintenance_windows": []map[string]string{{"cron": cron, "duration": "30m"}}})
	waiting := plSetOp(t, c, "component", zk.ID, map[string]any{"maintenance": "replace"})
	if waiting.Action == nil {
		t.Fatal("maintenance replace: no action")
	}
	harness.Eventually(t, 20*time.Second, "the action says it waits for the window", func() bool {
		var a restapi.ActionResponse
		lcMust(t, c, "GET", lcAPI+"/actions/"+waiting.Action.ID, nil, &a)
		for _, st := range a.Action.Stages {
			if st.Name == "maintenance/wait_window" && st.Status == "RUNNING" && strings.Contains(st.Detail, "opens at") {
				return true
			}
		}
		return false
	})
	// Cancelled, then asked again to run at once.
	var cancelled restapi.ActionCancelled
	lcMust(t, c, "POST", lcAPI+"/actions/"+waiting.Action.ID+"/cancel", nil, &cancelled)
	if cancelled.Action.Status != "CANCELLED" {
		t.Fatalf("cancel: %+v", cancelled.Action)
	}
	if op := plOp(t, c, "component", zk.ID); op.Effective.Maintenance != "off" || len(op.Queue) != 0 {
		t.Fatalf("after the cancel: %+v", op)
	}
	now := plSetOp(t, c, "component", zk.ID, map[string]any{"maintenance": "replace", "ignore_windows": true})
	a := harness.WaitAction(t, c, now.Action.ID, 180*time.Second)
	lcSucceeded(t, a)
	replaced := plActions(t, c, topo.ID, "replace_node")
	if len(replaced) != 3 {
		t.Fatalf("%d replace actions, want 3", len(replaced))
	}
	for i := 1; i < len(replaced); i++ {
		if replaced[i].StartedAt == nil || replaced[i-1].FinishedAt == nil || replaced[i].StartedAt.Before(*replaced[i-1].FinishedAt) {
			t.Errorf("replaces overlap: %s started before %s ended", replaced[i].ID, replaced[i-1].ID)
		}
	}
	after := lcComp(t, lcTopo(t, c, topo.ID), "zk")
	for _, n := range after.Nodes {
		before := lcNode(t, zk, n.Index)
		if n.ServerID == before.ServerID || n.Status != "ACTIVE" {
			t.Errorf("node %s: server %s (was %s), %s", n.Name, n.ServerID, before.ServerID, n.Status)
		}
	}
}
