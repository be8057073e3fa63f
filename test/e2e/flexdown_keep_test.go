package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/agent/dummy"
	restapi "github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/test/harness"
)

// A deletion policy that keeps the servers of the nodes a component loses (Senlin's
// destroy_after_deletion false).
const fkKeep = `{"type":"straas.policy.deletion","version":"1.0","properties":{"criteria":"OLDEST_FIRST","destroy_after_deletion":false}}`

// fkKept requires a node's server to be still in the cloud, running, with its services
// stopped, and detached from straas (no node, a node.detached event naming the server).
func fkKept(t *testing.T, s *harness.Straas, c *client.Client, topoID string, n client.Node) {
	t.Helper()
	srv, err := s.Nova(t).GetServer(t.Context(), n.ServerID)
	if err != nil || srv.Status != "ACTIVE" || srv.Name != n.Name {
		t.Errorf("the server %s of node %s: %+v %v, want it kept and ACTIVE", n.ServerID, n.Name, srv, err)
	}
	for name, st := range lcState(t, s, n).Services {
		if st != "stopped" {
			t.Errorf("kept server of %s: service %s is %s, want stopped", n.Name, name, st)
		}
	}
	if e := lcCall(t, c, "GET", lcAPI+"/nodes/"+n.ID, nil, nil); e == nil || e.Status != 404 {
		t.Errorf("the detached node %s: got %v, want 404", n.Name, e)
	}
	evs := plEvents(t, c, url.Values{"topology_id": {topoID}, "type": {"node.detached"}, "node_id": {n.ID}})
	if len(evs) != 1 || fmt.Sprint(evs[0].Data["server_id"]) != n.ServerID {
		t.Errorf("node.detached events of %s: %+v, want one naming server %s", n.Name, evs, n.ServerID)
	}
	// A removed node's events are read by its id alone too, by its tenant only.
	if evs := plEvents(t, c, url.Values{"node_id": {n.ID}, "type": {"node.detached"}}); len(evs) != 1 {
		t.Errorf("node.detached events by node_id alone: %+v, want one", evs)
	}
	if evs := plEvents(t, s.Client(t, "other"), url.Values{"node_id": {n.ID}}); len(evs) != 0 {
		t.Errorf("another tenant reads %d events of node %s, want none", len(evs), n.Name)
	}
}

// TestFlexdownKeepsServerUnderDeletionPolicy: with a deletion policy whose
// destroy_after_deletion is false, a flexdown takes the node out of the component, the
// store and every configuration, but its server stays in the cloud with its services
// stopped, and the action says so. A stop that fails removes nothing. A scale in through
// the scaling policy keeps its victim's server the same way.
func TestFlexdownKeepsServerUnderDeletionPolicy(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, lcTopology("keep-1", 4, 2, -1))
	zk, kafka := lcComp(t, topo, "zk"), lcComp(t, topo, "kafka")
	keep := plPolicy(t, c, "keep servers", fkKeep)
	plAttach(t, c, zk.ID, keep)
	plAttach(t, c, kafka.ID, keep)
	victim := lcNode(t, zk, 4)

	// Its services will not stop: the flexdown fails before anything is removed.
	lcKnobs(t, s, victim, &dummy.Knobs{Fail: map[string]string{"stop": "zookeeper would not stop"}})
	a := lcStart(t, c, "DELETE", lcAPI+"/nodes/"+victim.ID, nil)
	if a.Status != "FAILED" || a.Error == nil || a.Error.Stage != "stop_services" || a.Error.Node != victim.Name ||
		!strings.Contains(a.Error.Cause, "would not stop") {
		t.Fatalf("flexdown whose stop fails: %s %+v, want FAILED at stop_services on %s\n%s", a.Status, a.Error, victim.Name, lcStages(a))
	}
	zk = lcComp(t, lcTopo(t, c, topo.ID), "zk")
	if got := lcNode(t, zk, 4); got.Status != "ACTIVE" || got.ServerID != victim.ServerID || zk.Size != 4 || zk.Status != "ACTIVE" {
		t.Fatalf("after the failed stop: node %s on %s, zk size %d %s; want the node ACTIVE on its server, zk 4 ACTIVE",
			got.Status, got.ServerID, zk.Size, zk.Status)
	}
	lcKnobs(t, s, victim, nil)

	// The flexdown: the node goes, its server stays.
	a = lcStart(t, c, "DELETE", lcAPI+"/nodes/"+victim.ID, nil)
	lcSucceeded(t, a)
	begin, _ := lcStage(a, "zk", "begin")
	stop, okS := lcStage(a, "zk", "stop_services")
	rm, okR := lcStage(a, "zk", "remove_node")
	if !strings.Contains(begin.Detail, "destroy_after_deletion false") || !okS || stop.Status != "SUCCEEDED" || !okR ||
		!strings.Contains(rm.Detail, "server "+victim.ServerID+" is kept") || stop.FinishedAt == nil || rm.StartedAt.Before(*stop.FinishedAt) {
		t.Errorf("the action does not show the server kept after its services stopped:\n%s", lcStages(a))
	}
	topo = lcTopo(t, c, topo.ID)
	zk = lcComp(t, topo, "zk")
	if len(zk.Nodes) != 3 || zk.Size != 3 || zk.Status != "ACTIVE" {
		t.Fatalf("zk after the flexdown: %d nodes, size %d, %s; want 3, 3, ACTIVE", len(zk.Nodes), zk.Size, zk.Status)
	}
	fkKept(t, s, c, topo.ID, victim)
	// Nobody's configuration lists it any more.
	gone := victim.IPs[0]
	for _, n := range zk.Nodes {
		if strings.Contains(lcSection(n, "zookeeper", "servers"), gone) || strings.Contains(lcSitePP(t, s, n), gone) {
			t.Errorf("zk node %s still lists the detached member %s", n.Name, gone)
		}
	}
	for _, b := range lcComp(t, topo, "kafka").Nodes {
		if strings.Contains(lcSection(b, "kafka", "zk_list"), gone) || strings.Contains(lcSitePP(t, s, b), gone) {
			t.Errorf("broker %s still lists the detached member %s", b.Name, gone)
		}
	}

	// A scale in through the scaling policy keeps its victim's server too.
	plAttach(t, c, kafka.ID, plPolicy(t, c, "kafka 1..3", `{"type":"straas.policy.scaling","version":"1.0","properties":{"min_size":1,"max_size":3}}`))
	brokers := map[string]client.Node{}
	for _, b := range kafka.Nodes {
		brokers[b.ID] = b
	}
	var rr restapi.ReceiverResponse
	lcMust(t, c, "POST", lcAPI+"/receivers", map[string]any{"name": "shrink", "component_id": kafka.ID, "action": "scale_in"}, &rr)
	var acc restapi.TriggerAccepted
	lcMust(t, client.New(s.APIURL, ""), "POST", strings.TrimPrefix(rr.Receiver.URL, s.APIURL), nil, &acc)
	a = harness.WaitAction(t, c, acc.Action.ID, 90*time.Second)
	lcSucceeded(t, a)
	if st, _ := lcStage(a, "kafka", "scale/start"); !strings.Contains(st.Detail, "server is kept") {
		t.Errorf("scale/start says %q, want it to say the victims' servers are kept", st.Detail)
	}
	var child []string
	for _, fd := range plActions(t, c, topo.ID, "delete_node") {
		if strings.HasPrefix(fd.ID, acc.Action.ID+"-") {
			child = append(child, fd.ID)
			b, ok := brokers[fd.NodeID]
			if !ok || fd.Status != "SUCCEEDED" {
				t.Fatalf("the scale in's flexdown %s of node %s: %s", fd.ID, fd.NodeID, fd.Status)
			}
			fa := harness.WaitAction(t, c, fd.ID, time.Second)
			if rm, _ := lcStage(fa, "kafka", "remove_node"); !strings.Contains(rm.Detail, "server "+b.ServerID+" is kept") {
				t.Errorf("the scale in's flexdown does not keep the server:\n%s", lcStages(fa))
			}
			fkKept(t, s, c, topo.ID, b)
		}
	}
	if len(child) != 1 {
		t.Fatalf("the scale in ran %d flexdowns (%v), want 1", len(child), child)
	}
	if k := lcComp(t, lcTopo(t, c, topo.ID), "kafka"); plSize(k) != 1 || k.Status != "ACTIVE" {
		t.Errorf("kafka after the scale in: %d nodes, %s; want 1, ACTIVE", plSize(k), k.Status)
	}
}
