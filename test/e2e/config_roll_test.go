package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/test/harness"
)

// TestConfigRollStopsAtFailedValidate: the roll goes node by node; when a node fails its
// validate, the roll stops there (the nodes after it are untouched), the action says
// which node and why, and the component is DEGRADED. Rolling back is applying an earlier
// tag: every node, the failed one included, ends on it. A second change while one runs
// is refused.
func TestConfigRollStopsAtFailedValidate(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo, act := create(t, c, zkBody("roll-1", 3), 60*time.Second)
	if act.Status != "SUCCEEDED" {
		t.Fatalf("creation: %s %+v", act.Status, act.Error)
	}
	branch := topo.ConfigBranch
	zk := componentNamed(t, c, topo.ID, "zk")
	if len(zk.Nodes) != 3 {
		t.Fatalf("zk has %d nodes", len(zk.Nodes))
	}
	before := zk.Nodes[0].ConfigRef
	tags := v1 + "/configurations/tree/" + branch + "/tags"
	cfgMust(t, c, "POST", tags, map[string]any{"tag": "before", "message": "as created"}, nil)

	var w configWritten
	cfgMust(t, c, "PUT", treePath(branch, "app/zookeeper/3.4.6/user.json"), userJSON("zookeeper", map[string]any{"tick_time": 3000}), &w)

	// The second node's agent fails every validate.
	bad := zk.Nodes[1]
	const why = "port 2181 refused: zookeeper did not start"
	s.Admin(t, "PUT", "/vms/"+bad.ServerID+"/agent", map[string]any{"knobs": map[string]any{"fail": map[string]string{"validate": why}}})

	_, a := apply(t, c, zk.ID, branch, "")
	if a.Status != "FAILED" || a.Error == nil {
		t.Fatalf("apply with a failing validate: %s %+v", a.Status, a.Error)
	}
	if a.Error.Node != bad.Name || a.Error.Stage != "validate" || a.Error.Component != "zk" ||
		!strings.Contains(a.Error.Cause, why) || !strings.Contains(a.Error.Cause, bad.Name) {
		t.Errorf("action error %+v, want node %s at validate with %q", a.Error, bad.Name, why)
	}
	if st, ok := stageOf(a, "config_change/"+zk.Nodes[0].Name); !ok || st.Status != "SUCCEEDED" {
		t.Errorf("first node's stage: %+v", st)
	}
	if st, ok := stageOf(a, "config_change/"+bad.Name); !ok || st.Status != "FAILED" || len(st.Failures) != 1 || !strings.Contains(st.Failures[0].Error, why) {
		t.Errorf("failed node's stage: %+v", st)
	}
	if st, ok := stageOf(a, "config_change/"+zk.Nodes[2].Name); ok {
		t.Errorf("the roll reached the third node after the failure: %+v", st)
	}
	zk = componentNamed(t, c, topo.ID, "zk")
	if zk.Status != "DEGRADED" {
		t.Errorf("component after the failed roll: %s, want DEGRADED", zk.Status)
	}
	tick := func(i int) string { return fmt.Sprint(zk.Nodes[i].Config.Sections["zookeeper"]["tick_time"]) }
	if n := zk.Nodes[0]; n.ConfigRef != w.Commit || n.Status != "ACTIVE" || tick(0) != "3000" {
		t.Errorf("first node: %s at %s, tick_time %s; want ACTIVE at %s with 3000", n.Status, n.ConfigRef, tick(0), w.Commit)
	}
	if n := zk.Nodes[1]; n.ConfigRef != before || !strings.Contains(n.Error, why) {
		t.Errorf("failed node: config_ref %s (want %s), error %q", n.ConfigRef, before, n.Error)
	}
	if n := zk.Nodes[2]; n.ConfigRef != before || n.Status != "ACTIVE" || tick(2) != "2000" {
		t.Errorf("third node: %s at %s, tick_time %s; want it untouched", n.Status, n.ConfigRef, tick(2))
	}

	// Roll back: apply the tag taken before the change, once the node is healthy again.
	s.Admin(t, "PUT", "/vms/"+bad.ServerID+"/agent", map[string]any{"clear_knobs": true})
	back, a := apply(t, c, zk.ID, branch+"&before", "")
	if a.Status != "SUCCEEDED" {
		t.Fatalf("rollback: %s %+v", a.Status, a.Error)
	}
	if back.Plan.Commit != before || back.Plan.ToRoll != 2 {
		t.Errorf("rollback plan: commit %s (want %s), %d nodes to roll (want the changed and the failed one)", back.Plan.Commit, before, back.Plan.ToRoll)
	}
	zk = componentNamed(t, c, topo.ID, "zk")
	for i, n := range zk.Nodes {
		if n.ConfigRef != before || n.Status != "ACTIVE" || n.Error != "" || tick(i) != "2000" {
			t.Errorf("node %s after the rollback: %s at %s, tick_time %s, error %q", n.Name, n.Status, n.ConfigRef, tick(i), n.Error)
		}
	}
	if zk.Status != "ACTIVE" {
		t.Errorf("component after the rollback: %s", zk.Status)
	}

	// One change at a time: while a roll runs, another is refused.
	s.Admin(t, "PUT", "/settings", map[string]any{"knobs": map[string]any{"durations": map[string]string{"configure": "300ms"}}})
	var first configApplied
	cfgMust(t, c, "PUT", v1+"/components/"+zk.ID+"/tree/"+branch, nil, &first)
	if st, e := cfgCall(t, c, "PUT", v1+"/components/"+zk.ID+"/tree/"+branch, nil, nil); st != 409 {
		t.Errorf("apply during an apply: %d %v, want 409", st, e)
	}
	if st, e := cfgCall(t, c, "PUT", v1+"/components/"+zk.ID, map[string]any{"version": "3.5.9"}, nil); st != 409 {
		t.Errorf("upgrade during an apply: %d %v, want 409", st, e)
	}
	if a := harness.WaitAction(t, c, first.Action.ID, 60*time.Second); a.Status != "SUCCEEDED" {
		t.Errorf("the running apply: %s %+v", a.Status, a.Error)
	}
	s.Admin(t, "PUT", "/settings", map[string]any{"knobs": map[string]any{}})
}
