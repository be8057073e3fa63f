package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/straas/straas/agent/dummy"
	"github.com/straas/straas/test/harness"
)

// TestLifecycleZookeeperFlex: a zookeeper flexup reconfigures the ensemble and kafka's
// zk_list on every broker (in straas's records and on the brokers' disks), a flexdown
// below the quorum-safe size is refused with the reason, a flexdown above it removes the
// node from Nova and from every configuration, and kafka brokers are drained before
// they go.
func TestLifecycleZookeeperFlex(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	ctx := context.Background()
	topo := lcCreate(t, c, lcTopology("flex-1", 3, 2, -1))
	zk := lcComp(t, topo, "zk")

	// Below the quorum-safe size: refused, with the reason.
	e := lcCall(t, c, "DELETE", lcAPI+"/nodes/"+lcNode(t, zk, 3).ID, nil, nil)
	if e == nil || e.Status != 409 || !strings.Contains(e.Message, "quorum") {
		t.Fatalf("flexdown of a 3-member ensemble: got %v, want 409 naming the quorum", e)
	}

	// Flexup: one more member.
	a := lcStart(t, c, "POST", lcAPI+"/components/"+zk.ID, map[string]any{"count": 1})
	lcSucceeded(t, a)
	topo = lcTopo(t, c, topo.ID)
	zk = lcComp(t, topo, "zk")
	if len(zk.Nodes) != 4 || zk.Size != 4 || zk.Status != "ACTIVE" {
		t.Fatalf("zk after flexup: %d nodes, size %d, %s; want 4, 4, ACTIVE", len(zk.Nodes), zk.Size, zk.Status)
	}
	added := lcNode(t, zk, 4)
	if added.ID != zk.ID+"-4" || added.Status != "ACTIVE" || added.Name != "flex-1-zk-4" {
		t.Errorf("new node %s %s %s, want %s-4 flex-1-zk-4 ACTIVE", added.ID, added.Name, added.Status, zk.ID)
	}
	zkIPs := lcIPs(zk.Nodes)
	// Every zookeeper member lists the four, in straas's records and on its disk.
	for _, n := range zk.Nodes {
		servers := lcSection(n, "zookeeper", "servers")
		pp := lcSitePP(t, s, n)
		for _, ip := range zkIPs {
			if !strings.Contains(servers, ip) || !strings.Contains(pp, ip) {
				t.Errorf("zk node %s does not list %s: servers %s", n.Name, ip, servers)
			}
		}
	}
	// Every broker's zk_list names the four members.
	kafka := lcComp(t, topo, "kafka")
	if kafka.Status != "ACTIVE" {
		t.Errorf("kafka is %s after the zk flexup", kafka.Status)
	}
	for _, b := range kafka.Nodes {
		list := lcSection(b, "kafka", "zk_list")
		pp := lcSitePP(t, s, b)
		for _, ip := range zkIPs {
			if !strings.Contains(list, ip+":2181") || !strings.Contains(pp, ip+":2181") {
				t.Errorf("broker %s: zk_list %q (site.pp too) lacks %s:2181", b.Name, list, ip)
			}
		}
		if b.Status != "ACTIVE" {
			t.Errorf("broker %s is %s", b.Name, b.Status)
		}
		if _, ok := lcStage(a, "kafka", "config_change/"+b.Name); !ok {
			t.Errorf("the flexup's action shows no configuration change of broker %s:\n%s", b.Name, lcStages(a))
		}
	}

	// Flexdown of the new member (4 -> 3): out of Nova and of every configuration.
	a = lcStart(t, c, "DELETE", lcAPI+"/nodes/"+added.ID, nil)
	lcSucceeded(t, a)
	topo = lcTopo(t, c, topo.ID)
	zk = lcComp(t, topo, "zk")
	if len(zk.Nodes) != 3 || zk.Size != 3 || zk.Status != "ACTIVE" {
		t.Fatalf("zk after flexdown: %d nodes, size %d, %s; want 3, 3, ACTIVE", len(zk.Nodes), zk.Size, zk.Status)
	}
	if _, err := s.Nova(t).FindServer(ctx, added.Name); err == nil {
		t.Errorf("Nova still has server %s", added.Name)
	}
	if e := lcCall(t, c, "GET", lcAPI+"/nodes/"+added.ID, nil, nil); e == nil || e.Status != 404 {
		t.Errorf("the removed node: got %v, want 404", e)
	}
	gone := added.IPs[0] + ":2181"
	for _, b := range lcComp(t, topo, "kafka").Nodes {
		if strings.Contains(lcSection(b, "kafka", "zk_list"), gone) || strings.Contains(lcSitePP(t, s, b), gone) {
			t.Errorf("broker %s still lists the removed member %s", b.Name, gone)
		}
	}
	if e := lcCall(t, c, "DELETE", lcAPI+"/nodes/"+lcNode(t, zk, 1).ID, nil, nil); e == nil || e.Status != 409 {
		t.Errorf("flexdown back at 3 members: got %v, want 409", e)
	}

	// Kafka: a broker is drained (its partitions moved) before it goes; a drain that
	// fails stops the flexdown before anything is removed.
	kafka = lcComp(t, topo, "kafka")
	b2 := lcNode(t, kafka, 2)
	lcKnobs(t, s, b2, &dummy.Knobs{Fail: map[string]string{"guestcmd": "partition t-0 has no other in-sync replica"}})
	a = lcStart(t, c, "DELETE", lcAPI+"/nodes/"+b2.ID, nil)
	if a.Status != "FAILED" || a.Error == nil || a.Error.Stage != "drain" || a.Error.Node != b2.Name || !strings.Contains(a.Error.Cause, "no other in-sync replica") {
		t.Fatalf("flexdown with a failing drain: %s %+v, want FAILED at drain on %s with the agent's reason\n%s", a.Status, a.Error, b2.Name, lcStages(a))
	}
	if got := lcNode(t, lcComp(t, lcTopo(t, c, topo.ID), "kafka"), 2); got.Status != "ACTIVE" || got.ServerID != b2.ServerID {
		t.Errorf("after the failed drain, broker 2 is %s on %s; want it untouched", got.Status, got.ServerID)
	}
	lcKnobs(t, s, b2, nil)
	a = lcStart(t, c, "DELETE", lcAPI+"/nodes/"+b2.ID, nil)
	lcSucceeded(t, a)
	drain, ok := lcStage(a, "kafka", "drain")
	if !ok || drain.Status != "SUCCEEDED" || drain.Detail != "kafka-cmd/reassign_partitions 2" {
		t.Errorf("drain stage %+v, want SUCCEEDED running kafka-cmd/reassign_partitions 2:\n%s", drain, lcStages(a))
	}
	if rm, ok := lcStage(a, "kafka", "remove_node"); !ok || drain.FinishedAt == nil || rm.StartedAt.Before(*drain.FinishedAt) {
		t.Errorf("the node was removed before its drain ended:\n%s", lcStages(a))
	}
	// The last broker holds data nothing else holds: refused.
	topo = lcTopo(t, c, topo.ID)
	e = lcCall(t, c, "DELETE", lcAPI+"/nodes/"+lcNode(t, lcComp(t, topo, "kafka"), 1).ID, nil, nil)
	if e == nil || e.Status != 409 {
		t.Errorf("flexdown of the last broker: got %v, want 409", e)
	}
}

// TestLifecycleFlexupFailedInstall: new nodes whose install fails are FAILED and
// reported (which node, which stage, why); the component stays ACTIVE and nobody's
// configuration lists them. A flexup of a role no configuration lists (storm
// supervisors) reconfigures nobody.
func TestLifecycleFlexupFailedInstall(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, lcTopology("flexfail-1", 3, 1, 1))
	zk := lcComp(t, topo, "zk")
	before := map[string]string{}
	for _, n := range zk.Nodes {
		before[n.ID] = lcSection(n, "zookeeper", "servers")
	}
	broker := lcNode(t, lcComp(t, topo, "kafka"), 1)
	zkList, brokerPP := lcSection(broker, "kafka", "zk_list"), lcSitePP(t, s, broker)

	s.Admin(t, "PUT", "/settings", map[string]any{"knobs": dummy.Knobs{FailInstall: []dummy.Package{{Name: "zookeeper", Version: "3.4.6"}}}})
	a := lcStart(t, c, "POST", lcAPI+"/components/"+zk.ID, map[string]any{"count": 2, "role": "zookeeper"})
	s.Admin(t, "PUT", "/settings", map[string]any{"knobs": dummy.Knobs{}})
	if a.Status != "FAILED" || a.Error == nil {
		t.Fatalf("flexup with failing installs: %s %+v, want FAILED with an error", a.Status, a.Error)
	}
	if a.Error.Stage != "install" || !strings.HasPrefix(a.Error.Node, "flexfail-1-zk-") || !strings.Contains(a.Error.Cause, "E: Version") {
		t.Errorf("error %+v: want stage install, a new zk node, and apt's message", a.Error)
	}
	if _, ok := lcStage(a, "zk", "config_change/pre_config"); ok {
		t.Errorf("a flexup that added no node reconfigured the ensemble:\n%s", lcStages(a))
	}
	topo = lcTopo(t, c, topo.ID)
	zk = lcComp(t, topo, "zk")
	if zk.Status != "ACTIVE" || zk.Size != 3 || len(zk.Nodes) != 5 {
		t.Fatalf("zk: %s, size %d, %d nodes; want ACTIVE, 3 members, 5 nodes (2 FAILED)", zk.Status, zk.Size, len(zk.Nodes))
	}
	var failed []string
	for _, n := range zk.Nodes {
		switch {
		case n.Index > 3:
			if n.Status != "FAILED" || !strings.HasPrefix(n.Error, "install: ") {
				t.Errorf("new node %s: %s %q, want FAILED with the install error", n.Name, n.Status, n.Error)
			}
			failed = append(failed, n.ID)
		case n.Status != "ACTIVE" || lcSection(n, "zookeeper", "servers") != before[n.ID]:
			t.Errorf("member %s: %s, servers %s; want ACTIVE and unchanged %s", n.Name, n.Status, lcSection(n, "zookeeper", "servers"), before[n.ID])
		}
	}
	broker = lcNode(t, lcComp(t, topo, "kafka"), 1)
	if got := lcSection(broker, "kafka", "zk_list"); got != zkList || lcSitePP(t, s, broker) != brokerPP {
		t.Errorf("kafka's zk_list changed to %q (was %q): a half-updated cluster", got, zkList)
	}

	// The failed nodes are no members: they go without quorum checks or reconfiguration.
	for _, id := range failed {
		a := lcStart(t, c, "DELETE", lcAPI+"/nodes/"+id, nil)
		lcSucceeded(t, a)
		if st, _ := lcStage(a, "zk", "membership"); !strings.Contains(st.Detail, "not a member") {
			t.Errorf("removing FAILED node %s: membership stage %q", id, st.Detail)
		}
	}

	// Storm supervisors: nobody lists them.
	strm := lcComp(t, topo, "strm")
	a = lcStart(t, c, "POST", lcAPI+"/components/"+strm.ID, map[string]any{"count": 2, "role": "supervisor"})
	lcSucceeded(t, a)
	if st, _ := lcStage(a, "strm", "membership"); !strings.Contains(st.Detail, "no configuration lists supervisor nodes") {
		t.Errorf("membership stage %q", st.Detail)
	}
	strm = lcComp(t, lcTopo(t, c, topo.ID), "strm")
	roles := map[string]int{}
	for _, n := range strm.Nodes {
		if n.Status == "ACTIVE" {
			roles[n.Role]++
		}
	}
	if fmt.Sprint(roles) != "map[nimbus:1 supervisor:3]" || strm.Size != 4 || strm.Submodules[1].Size != 3 {
		t.Errorf("storm after flexup: ACTIVE %v, size %d, submodules %+v; want 1 nimbus + 3 supervisors", roles, strm.Size, strm.Submodules)
	}
	if e := lcCall(t, c, "POST", lcAPI+"/components/"+strm.ID, map[string]any{"count": 1, "role": "broker"}, nil); e == nil || e.Status != 400 || e.Field != "role" {
		t.Errorf("flexup with an unknown role: %v, want 400 on role", e)
	}
}
