package e2e

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/agent/dummy"
	"github.com/straas/straas/test/harness"
)

// TestLifecycleReplaceZookeeperLeader replaces the zookeeper leader: the node keeps its
// identity (id, index, name, role, myid, config ref) on a new server; the other members
// get the new membership without a restart, then restart one at a time with the leader
// last (the stage records' timestamps show that at most one member is down at a time);
// kafka's zk_list follows the new address.
func TestLifecycleReplaceZookeeperLeader(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	ctx := context.Background()
	topo := lcCreate(t, c, lcTopology("repl-1", 3, 1, -1))
	zk := lcComp(t, topo, "zk")
	n1, n2, n3 := lcNode(t, zk, 1), lcNode(t, zk, 2), lcNode(t, zk, 3)

	// The mock agents answer zookeeper's srvr as a real ensemble would: node 2 leads.
	srvr := func(mode string) *dummy.Knobs {
		return &dummy.Knobs{GuestOutput: map[string]string{"zk-cmd/srvr": "Zookeeper version: 3.4.6\nMode: " + mode}}
	}
	lcKnobs(t, s, n1, srvr("follower"))
	lcKnobs(t, s, n2, srvr("leader"))
	lcKnobs(t, s, n3, srvr("follower"))
	var probe struct {
		Results []struct {
			Name, Output string
		} `json:"results"`
	}
	lcMust(t, c, "POST", lcAPI+"/components/"+zk.ID+"/commands", map[string]any{"command": "zk-cmd/srvr"}, &probe)
	leader := ""
	for _, r := range probe.Results {
		if strings.Contains(r.Output, "Mode: leader") {
			leader = r.Name
		}
	}
	if leader != n2.Name {
		t.Fatalf("the leader by srvr is %q, want %s: %+v", leader, n2.Name, probe.Results)
	}
	// When the leader goes, the ensemble elects another: node 1 here (not the highest
	// index, so that the order below shows the probe is used).
	lcKnobs(t, s, n1, srvr("leader"))

	a := lcStart(t, c, "PUT", lcAPI+"/nodes/"+n2.ID, nil)
	lcSucceeded(t, a)
	topo = lcTopo(t, c, topo.ID)
	zk = lcComp(t, topo, "zk")
	r := lcNode(t, zk, 2)
	if r.ID != n2.ID || r.Name != n2.Name || r.Role != n2.Role || r.Index != 2 || r.Status != "ACTIVE" {
		t.Errorf("replaced node %s %s %s index %d %s: want the same identity, ACTIVE", r.ID, r.Name, r.Role, r.Index, r.Status)
	}
	if r.Generation != n2.Generation+1 || r.ServerID == n2.ServerID || r.IPs[0] == n2.IPs[0] {
		t.Errorf("replaced node: generation %d server %s IP %s; want generation %d and a new server and address",
			r.Generation, r.ServerID, r.IPs[0], n2.Generation+1)
	}
	if r.ConfigRef != n2.ConfigRef || lcSection(r, "zookeeper", "myid") != "2" {
		t.Errorf("replaced node: config ref %s (was %s), myid %s; want the same ref and myid 2", r.ConfigRef, n2.ConfigRef, lcSection(r, "zookeeper", "myid"))
	}
	nova := s.Nova(t)
	if _, err := nova.GetServer(ctx, n2.ServerID); err == nil {
		t.Errorf("the old server %s is still in Nova", n2.ServerID)
	}
	if sv, err := nova.FindServer(ctx, n2.Name); err != nil || sv.ID != r.ServerID {
		t.Errorf("Nova's server named %s: %v %+v, want the new one %s", n2.Name, err, sv, r.ServerID)
	}
	if zk.Status != "ACTIVE" {
		t.Errorf("zk is %s", zk.Status)
	}

	// The order: the replaced node serves again, then the followers restart one at a
	// time, the (new) leader last, never two at once.
	validate, ok := lcStage(a, "zk", "validate")
	if !ok || validate.FinishedAt == nil {
		t.Fatalf("no finished validate stage:\n%s", lcStages(a))
	}
	type turn struct {
		name       string
		start, end time.Time
	}
	var turns []turn
	for _, st := range a.Stages {
		if name, ok := strings.CutPrefix(st.Name, "restart:"); ok {
			if st.Status != "SUCCEEDED" || st.FinishedAt == nil {
				t.Fatalf("restart of %s: %s", name, st.Status)
			}
			turns = append(turns, turn{name, st.StartedAt, *st.FinishedAt})
		}
	}
	sort.Slice(turns, func(i, j int) bool { return turns[i].start.Before(turns[j].start) })
	var order []string
	for i, tn := range turns {
		order = append(order, tn.name)
		if i == 0 && tn.start.Before(*validate.FinishedAt) {
			t.Errorf("%s restarted at %s, before the replaced node validated at %s", tn.name, tn.start, *validate.FinishedAt)
		}
		if i > 0 && tn.start.Before(turns[i-1].end) {
			t.Errorf("%s restarted at %s while %s was restarting (until %s)", tn.name, tn.start, turns[i-1].name, turns[i-1].end)
		}
	}
	if want := n3.Name + "," + n1.Name; strings.Join(order, ",") != want {
		t.Errorf("restart order %v, want %s (followers first, the leader last)\n%s", order, want, lcStages(a))
	}
	plan, _ := lcStage(a, "zk", "restart_plan")
	if !strings.Contains(plan.Detail, "probe zk-cmd/srvr") {
		t.Errorf("restart plan %q does not say the probe chose the leader", plan.Detail)
	}
	// The configuration change itself restarted nobody: the turns did.
	for _, n := range []string{n1.Name, n3.Name} {
		st, ok := lcStage(a, "zk", "config_change/"+n)
		if !ok || !strings.Contains(st.Detail, "RESTART_REQUIRED") {
			t.Errorf("config_change of %s: %q, want the new membership pushed without a restart", n, st.Detail)
		}
	}
	for _, n := range zk.Nodes {
		servers := lcSection(n, "zookeeper", "servers")
		if !strings.Contains(servers, r.IPs[0]) || strings.Contains(servers, n2.IPs[0]+":") {
			t.Errorf("zk node %s lists %s; want the new address %s, not the old %s", n.Name, servers, r.IPs[0], n2.IPs[0])
		}
		if n.Status != "ACTIVE" {
			t.Errorf("zk node %s is %s", n.Name, n.Status)
		}
	}
	broker := lcNode(t, lcComp(t, topo, "kafka"), 1)
	list := lcSection(broker, "kafka", "zk_list")
	if !strings.Contains(list, r.IPs[0]+":2181") || strings.Contains(list, n2.IPs[0]+":2181") || !strings.Contains(lcSitePP(t, s, broker), r.IPs[0]+":2181") {
		t.Errorf("kafka zk_list %q: want the new address %s, not %s", list, r.IPs[0], n2.IPs[0])
	}

	// A replace whose new server fails to install: the action says where and why, the
	// node is FAILED and the ensemble DEGRADED; a second replace repairs it.
	s.Admin(t, "PUT", "/settings", map[string]any{"knobs": dummy.Knobs{FailInstall: []dummy.Package{{Name: "zookeeper"}}}})
	a = lcStart(t, c, "PUT", lcAPI+"/nodes/"+n1.ID, nil)
	s.Admin(t, "PUT", "/settings", map[string]any{"knobs": dummy.Knobs{}})
	if a.Status != "FAILED" || a.Error == nil || a.Error.Stage != "install" || a.Error.Node != n1.Name || !strings.Contains(a.Error.Cause, "E: Version") {
		t.Fatalf("replace with a failing install: %s %+v\n%s", a.Status, a.Error, lcStages(a))
	}
	topo = lcTopo(t, c, topo.ID)
	if zk := lcComp(t, topo, "zk"); zk.Status != "DEGRADED" || lcNode(t, zk, 1).Status != "FAILED" {
		t.Errorf("after the failed replace: zk %s, node 1 %s; want DEGRADED, FAILED", zk.Status, lcNode(t, zk, 1).Status)
	}
	lcSucceeded(t, lcStart(t, c, "PUT", lcAPI+"/nodes/"+n1.ID, nil))
	topo = lcTopo(t, c, topo.ID)
	if zk := lcComp(t, topo, "zk"); zk.Status != "ACTIVE" || lcNode(t, zk, 1).Status != "ACTIVE" || lcNode(t, zk, 1).Generation != 2 {
		t.Errorf("after the second replace: zk %s, node 1 %s generation %d", zk.Status, lcNode(t, zk, 1).Status, lcNode(t, zk, 1).Generation)
	}

	// Replacing while another member is down would lose the quorum: refused.
	lcMust(t, c, "POST", lcAPI+"/components/"+zk.ID+"/status", map[string]string{n3.Name: "UNREACHABLE"}, nil)
	e := lcCall(t, c, "PUT", lcAPI+"/nodes/"+n1.ID, nil, nil)
	if e == nil || e.Status != 409 || !strings.Contains(e.Message, "needs 2 up") {
		t.Errorf("replace with a member down: %v, want 409 about the quorum", e)
	}
	// The unreachable member itself may be replaced: that is the cure.
	a = lcStart(t, c, "PUT", lcAPI+"/nodes/"+n3.ID, nil)
	lcSucceeded(t, a)
	if got := lcNode(t, lcComp(t, lcTopo(t, c, topo.ID), "zk"), 3); got.Status != "ACTIVE" || got.Generation != 1 {
		t.Errorf("replaced unreachable node: %s generation %d", got.Status, got.Generation)
	}
}
