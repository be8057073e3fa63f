package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/agent/dummy"
	"github.com/straas/straas/mockcn"
	restapi "github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/policy/records"
	"github.com/straas/straas/test/harness"
)

// TestPolicyTypesAndCRUD: the types are documented; specs are validated and versioned;
// a policy attached somewhere cannot be deleted; a component takes one policy per type.
func TestPolicyTypesAndCRUD(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	var types restapi.PolicyTypeList
	lcMust(t, c, "GET", lcAPI+"/policy_types", nil, &types)
	var names []string
	for _, d := range types.PolicyTypes {
		names = append(names, d.Name)
		if len(d.Properties) == 0 || d.Doc == "" {
			t.Errorf("%s is not documented", d.Name)
		}
	}
	if got := strings.Join(names, ","); got != "straas.policy.deletion-1.0,straas.policy.health-1.0,straas.policy.placement-1.0,straas.policy.scaling-1.0" {
		t.Fatalf("policy types %s", got)
	}
	// Bad specs are 400 naming the field.
	for _, tc := range []struct{ spec, field string }{
		{`{"type":"straas.policy.health","version":"2.0"}`, "spec.version"},
		{`{"type":"straas.policy.healthy","version":"1.0"}`, "spec.type"},
		{`{"type":"straas.policy.scaling","version":"1.0","properties":{"min_size":3,"max_size":2}}`, "spec.properties.max_size"},
		{`{"type":"straas.policy.health","version":"1.0","properties":{"recovery":{"actions":["reboot","restart"]}}}`, "spec.properties.recovery.actions[1]"},
	} {
		e := lcCall(t, c, "POST", lcAPI+"/policies", map[string]any{"name": "bad", "spec": json.RawMessage(tc.spec)}, nil)
		if e == nil || e.Status != 400 || e.Field != tc.field {
			t.Errorf("spec %s: %+v, want 400 on %s", tc.spec, e, tc.field)
		}
	}
	topo := lcCreate(t, c, lcTopology("crud-1", 1, 0, -1))
	zk := lcComp(t, topo, "zk")
	id := plPolicy(t, c, "h", plHealth("restart", "replace"))
	plAttach(t, c, zk.ID, id)
	if e := lcCall(t, c, "POST", lcAPI+"/components/"+zk.ID+"/policies", map[string]any{"policy_id": restapi.BuiltinHealthPolicy}, nil); e == nil || e.Status != 409 {
		t.Errorf("a second health policy: %+v, want 409", e)
	}
	if e := lcCall(t, c, "DELETE", lcAPI+"/policies/"+id, nil, nil); e == nil || e.Status != 409 || !strings.Contains(e.Message, zk.ID) {
		t.Errorf("delete an attached policy: %+v, want 409 naming the component", e)
	}
	// A new spec is a new revision, seen through the binding.
	var upd restapi.PolicyResponse
	lcMust(t, c, "PUT", lcAPI+"/policies/"+id, map[string]any{"spec": json.RawMessage(plHealth("replace"))}, &upd)
	if upd.Policy.Revision != 2 {
		t.Errorf("revision %d after an update, want 2", upd.Policy.Revision)
	}
	var bl restapi.BindingList
	lcMust(t, c, "GET", lcAPI+"/components/"+zk.ID+"/policies", nil, &bl)
	if len(bl.Bindings) != 1 || bl.Bindings[0].Revision != 2 || !strings.Contains(string(bl.Bindings[0].Spec.Properties), `"replace"`) {
		t.Errorf("bindings %+v", bl.Bindings)
	}
	// Another project neither sees nor attaches it.
	other := s.Client(t, "other")
	if e := lcCall(t, other, "GET", lcAPI+"/policies/"+id, nil, nil); e == nil || e.Status != 404 {
		t.Errorf("another project reads the policy: %+v", e)
	}
	lcMust(t, c, "DELETE", lcAPI+"/components/"+zk.ID+"/policies/"+id, nil, nil)
	lcMust(t, c, "DELETE", lcAPI+"/policies/"+id, nil, nil)
	if e := lcCall(t, c, "GET", lcAPI+"/policies/"+id, nil, nil); e == nil || e.Status != 404 {
		t.Errorf("deleted policy: %+v", e)
	}
}

// TestPolicyHealthReplacesSilentAgent: a node whose agent goes silent is detected by its
// health policy and replaced (the replace workflow, as a child action): a new server,
// the same node, ACTIVE and heartbeating again; the component is ACTIVE again.
func TestPolicyHealthReplacesSilentAgent(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, lcTopology("heal-1", 3, 0, -1))
	zk := lcComp(t, topo, "zk")
	plAttach(t, c, zk.ID, plPolicy(t, c, "replace silent", plHealth("replace")))
	victim := lcNode(t, zk, 2)
	plSilence(t, s, victim.ServerID, true)

	healed := plWaitEvent(t, c, topo.ID, "node.healed", victim.ID, 60*time.Second)
	if !strings.Contains(healed.Message, "healed by replace") {
		t.Errorf("healed event: %s", healed.Message)
	}
	heals := plActions(t, c, topo.ID, "heal_node")
	if len(heals) != 1 || heals[0].Status != "SUCCEEDED" || heals[0].NodeID != victim.ID {
		t.Fatalf("heal actions %+v, want one SUCCEEDED for %s", heals, victim.Name)
	}
	replaces := plActions(t, c, topo.ID, "replace_node")
	if len(replaces) != 1 || replaces[0].Status != "SUCCEEDED" || !strings.HasPrefix(replaces[0].ID, heals[0].ID+"-") {
		t.Fatalf("replace actions %+v, want the heal's child", replaces)
	}
	now := lcTopo(t, c, topo.ID)
	n := plNodeByID(t, now, victim.ID)
	if n.Status != "ACTIVE" || n.ServerID == victim.ServerID || n.Generation != victim.Generation+1 || n.Name != victim.Name {
		t.Fatalf("after recovery: status %s server %s (was %s) generation %d: want ACTIVE on a new server, same name",
			n.Status, n.ServerID, victim.ServerID, n.Generation)
	}
	harness.Eventually(t, 20*time.Second, "the component ACTIVE again, every node heartbeating", func() bool {
		comp := lcComp(t, lcTopo(t, c, topo.ID), "zk")
		for _, x := range comp.Nodes {
			if x.Status != "ACTIVE" {
				return false
			}
		}
		return comp.Status == "ACTIVE"
	})
	// The node's state variables are clear; the failure and its healing are events.
	op := plOp(t, c, "node", victim.ID)
	if op.Flags != nil {
		t.Errorf("flags left after recovery: %+v", op.Flags)
	}
	for _, typ := range []string{"node.unreachable", "component.degraded", "node.heal", "action.child"} {
		if evs := plEvents(t, c, url.Values{"topology_id": {topo.ID}, "type": {typ}}); len(evs) == 0 {
			t.Errorf("no %s event", typ)
		}
	}
}

// TestPolicyReceiverScalesWithinBoundsAndCooldown: a receiver's signed URL scales a
// component out without a token, within max_size and the cooldown; a bad signature or a
// revoked receiver is 404.
func TestPolicyReceiverScalesWithinBoundsAndCooldown(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, lcTopology("rcv-1", 3, 0, -1))
	zk := lcComp(t, topo, "zk")
	plAttach(t, c, zk.ID, plPolicy(t, c, "zk 3..4", `{"type":"straas.policy.scaling","version":"1.0","properties":{"min_size":3,"max_size":4,"cooldown":4}}`))
	var rr restapi.ReceiverResponse
	lcMust(t, c, "POST", lcAPI+"/receivers", map[string]any{"name": "grow", "component_id": zk.ID, "action": "scale_out"}, &rr)
	u := rr.Receiver.URL
	if !strings.Contains(u, "/receivers/"+rr.Receiver.ID+"/trigger?") || !strings.Contains(u, "sig=") {
		t.Fatalf("receiver URL %s", u)
	}
	// An alarm system posts the URL: no token.
	anon := client.New(s.APIURL, "")
	path := strings.TrimPrefix(u, s.APIURL)
	var acc restapi.TriggerAccepted
	lcMust(t, anon, "POST", path, nil, &acc)
	if acc.Decision.Target != 4 || acc.Action.ID == "" {
		t.Fatalf("trigger: %+v", acc)
	}
	lcSucceeded(t, harness.WaitAction(t, c, acc.Action.ID, 90*time.Second))
	if n := plSize(lcComp(t, lcTopo(t, c, topo.ID), "zk")); n != 4 {
		t.Fatalf("after scale out: %d nodes, want 4", n)
	}
	plErr(t, lcCall(t, anon, "POST", path, nil, nil), http.StatusConflict, "cooldown")
	time.Sleep(4 * time.Second) // the policy's cooldown, which is the behaviour under test
	plErr(t, lcCall(t, anon, "POST", path, nil, nil), http.StatusConflict, "max_size is 4")
	// The signature is the credential.
	bad := strings.Replace(path, "sig=", "sig=x", 1)
	plErr(t, lcCall(t, anon, "POST", bad, nil, nil), http.StatusNotFound, "signature")
	// Revoked: the URL stops working.
	lcMust(t, c, "DELETE", lcAPI+"/receivers/"+rr.Receiver.ID, nil, nil)
	plErr(t, lcCall(t, anon, "POST", path, nil, nil), http.StatusNotFound, "no receiver")
	if evs := plEvents(t, c, url.Values{"topology_id": {topo.ID}, "type": {"receiver.refused"}}); len(evs) < 2 {
		t.Errorf("refusals recorded: %d events, want 2", len(evs))
	}
	// A scale in through another receiver, bounded by min_size.
	lcMust(t, c, "POST", lcAPI+"/receivers", map[string]any{"name": "shrink", "component_id": zk.ID, "action": "scale_in", "params": map[string]any{"count": 5}}, &rr)
	time.Sleep(4 * time.Second) // cooldown again
	lcMust(t, anon, "POST", strings.TrimPrefix(rr.Receiver.URL, s.APIURL), nil, &acc)
	if acc.Decision.Target != 3 || !acc.Decision.Clipped {
		t.Fatalf("scale in by 5 from 4 with min 3: %+v, want clipped to 3", acc.Decision)
	}
	lcSucceeded(t, harness.WaitAction(t, c, acc.Action.ID, 90*time.Second))
	if n := plSize(lcComp(t, lcTopo(t, c, topo.ID), "zk")); n != 3 {
		t.Fatalf("after scale in: %d nodes, want 3", n)
	}
}

// TestPolicyCPUThresholdScalesOut: a trigger on the nodes' cpu metric scales the
// component out; with autoscaling off the load state goes to overload (an event) and
// nothing scales until autoscaling is on again.
func TestPolicyCPUThresholdScalesOut(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, lcTopology("cpu-1", 3, 0, -1))
	zk := lcComp(t, topo, "zk")
	// The mock nodes' cpu is 17-32% while their services run: a 5% threshold is exceeded.
	plSetOp(t, c, "component", zk.ID, map[string]any{"autoscaling": "off"})
	plAttach(t, c, zk.ID, plPolicy(t, c, "cpu", `{"type":"straas.policy.scaling","version":"1.0","properties":{"min_size":3,"max_size":4,"period":1,"cooldown":60,
		"triggers":[{"metric":"cpu","statistic":"avg","comparison":"gt","threshold":5,"intervals":3,"action":"scale_out"}]}}`))
	load := plWaitEvent(t, c, topo.ID, "component.load", "", 30*time.Second)
	if !strings.Contains(load.Message, "normal -> overload") || !strings.Contains(load.Message, "autoscaling is off: nothing scales") {
		t.Fatalf("load event with autoscaling off: %s", load.Message)
	}
	if op := plOp(t, c, "component", zk.ID); op.Load != "overload" {
		t.Errorf("load state %s, want overload", op.Load)
	}
	time.Sleep(3 * time.Second) // three more evaluation periods: nothing may scale
	if a := plActions(t, c, topo.ID, "scale_out"); len(a) != 0 {
		t.Fatalf("scaled with autoscaling off: %+v", a)
	}
	plSetOp(t, c, "component", zk.ID, map[string]any{"autoscaling": "on"})
	var scale model.Action
	harness.Eventually(t, 30*time.Second, "a scale out", func() bool {
		as := plActions(t, c, topo.ID, "scale_out")
		if len(as) == 1 {
			scale = as[0]
		}
		return len(as) == 1
	})
	a := harness.WaitAction(t, c, scale.ID, 90*time.Second)
	lcSucceeded(t, a)
	if n := plSize(lcComp(t, lcTopo(t, c, topo.ID), "zk")); n != 4 {
		t.Fatalf("after the trigger: %d nodes, want 4", n)
	}
	evs := plEvents(t, c, url.Values{"topology_id": {topo.ID}, "type": {"component.scale_out"}})
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "trigger avg cpu > 5 for 3 intervals") {
		t.Errorf("scale out events %+v", evs)
	}
}

// TestPolicyRackFailureLeavesComponentServing: a component spread over fault domains
// (racks) keeps a majority serving when a whole rack goes down, and its health policy
// replaces the lost member on a rack that is up.
func TestPolicyRackFailureLeavesComponentServing(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	// The mock has two racks per zone: a third one, so that three members can spread.
	s.Admin(t, "POST", "/cns", mockcn.CNSpec{Count: 2, AZ: "az1", Rack: mockcn.RackName("az1", 3)})
	body := `{"name":"rack-1","availability_zone":"az1","components":[{"name":"zk","type":"zookeeper","version":"3.4.6","size":3,
		"enable_fault_domain":true,"min_num_of_fault_domain":3}]}`
	topo := lcCreate(t, c, []byte(body))
	zk := lcComp(t, topo, "zk")
	racks := map[string]string{}
	for _, n := range zk.Nodes {
		racks[n.ID] = plVM(t, s, n.ServerID).Rack
		// Spawn records each node's fault domain (its host's aggregate fault_domain).
		if n.FaultDomain != racks[n.ID] {
			t.Errorf("node %s: fault_domain %q, want its rack %q", n.Name, n.FaultDomain, racks[n.ID])
		}
	}
	distinct := map[string]bool{}
	for _, r := range racks {
		distinct[r] = true
	}
	if len(distinct) != 3 {
		t.Fatalf("members on racks %v: want three fault domains", racks)
	}
	plAttach(t, c, zk.ID, plPolicy(t, c, "replace", plHealth("replace")))
	lost := lcNode(t, zk, 1)
	s.Admin(t, "POST", "/racks/"+racks[lost.ID]+"/down?az=az1", nil)

	// While the rack is down: the member there is unreachable, the component DEGRADED
	// and the two others go on heartbeating (a zookeeper majority).
	serving := func() int {
		n := 0
		for _, x := range lcComp(t, lcTopo(t, c, topo.ID), "zk").Nodes {
			if x.Status == "ACTIVE" && x.LastHeartbeat != nil {
				if at, err := time.Parse(time.RFC3339Nano, *x.LastHeartbeat); err == nil && time.Since(at) < 3*time.Second {
					n++
				}
			}
		}
		return n
	}
	plWaitEvent(t, c, topo.ID, "component.degraded", "", 30*time.Second)
	if n := serving(); n < 2 {
		t.Fatalf("%d members serving while a rack is down, want at least 2 of 3", n)
	}
	plWaitEvent(t, c, topo.ID, "node.healed", lost.ID, 60*time.Second)
	harness.Eventually(t, 30*time.Second, "three members serving again, the component ACTIVE", func() bool {
		return serving() == 3 && lcComp(t, lcTopo(t, c, topo.ID), "zk").Status == "ACTIVE"
	})
	n := plNodeByID(t, lcTopo(t, c, topo.ID), lost.ID)
	if r := plVM(t, s, n.ServerID).Rack; r == racks[lost.ID] {
		t.Errorf("the replacement is on the rack that is down (%s)", r)
	}
	s.Admin(t, "POST", "/racks/"+racks[lost.ID]+"/up?az=az1", nil)
}

// TestPolicyConvergeDryRunMatchesApply: the plan of a dry run is what applying the same
// desired spec does — nodes added, an upgrade, and (with the oldest-first deletion
// policy) the very node a scale down removes; drift is reported as an event.
func TestPolicyConvergeDryRunMatchesApply(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, lcTopology("conv-1", 3, 2, -1))
	desired := func(kafkaSize int, version string) map[string]any {
		return map[string]any{"name": "conv-1", "availability_zone": "az1", "components": []map[string]any{
			{"name": "zk", "type": "zookeeper", "version": "3.4.6", "size": 3},
			{"name": "kafka", "type": "kafka", "version": version, "size": kafkaSize, "depends_on": []string{"zk"}},
		}}
	}
	path := lcAPI + "/topologies/" + topo.ID
	var dry, applied restapi.ConvergeResponse
	// In sync: nothing to do.
	lcMust(t, c, "PUT", path+"?dry_run=true", desired(2, "0.10.2.1"), &dry)
	if dry.Plan.Changes != 0 || !dry.DryRun || dry.Action != nil {
		t.Fatalf("plan of the spec the topology was created with: %+v", dry)
	}
	// Grow kafka and upgrade it.
	lcMust(t, c, "PUT", path+"?dry_run=true", desired(3, "2.8.1"), &dry)
	kp := planOf(t, dry.Plan, "kafka")
	if len(kp.Add) != 1 || kp.Add[0].Count != 1 || kp.Upgrade == nil || kp.Upgrade.To != "2.8.1" || dry.Plan.Changes != 2 {
		t.Fatalf("dry run: %+v", dry.Plan)
	}
	lcMust(t, c, "PUT", path, desired(3, "2.8.1"), &applied)
	if applied.Action == nil {
		t.Fatal("apply: no action")
	}
	if got, want := mustJSON(applied.Plan), mustJSON(dry.Plan); got != want {
		t.Fatalf("applied plan differs from the dry run:\n%s\n%s", got, want)
	}
	lcSucceeded(t, harness.WaitAction(t, c, applied.Action.ID, 180*time.Second))
	kafka := lcComp(t, lcTopo(t, c, topo.ID), "kafka")
	if plSize(kafka) != 3 || kafka.Version != "2.8.1" {
		t.Fatalf("kafka after convergence: %d nodes at %s", plSize(kafka), kafka.Version)
	}
	for _, n := range kafka.Nodes {
		if n.Status != "ACTIVE" || n.InstalledVersion != "2.8.1" {
			t.Errorf("kafka node %s: %s at %s", n.Name, n.Status, n.InstalledVersion)
		}
	}
	lcMust(t, c, "PUT", path+"?dry_run=true", desired(3, "2.8.1"), &dry)
	if dry.Plan.Changes != 0 {
		t.Fatalf("after convergence the plan is %+v, want nothing to do", dry.Plan)
	}
	// Shrink, oldest first: the dry run names the victim, the apply removes it.
	plAttach(t, c, kafka.ID, records.BuiltinDeletionPolicy)
	lcMust(t, c, "PUT", path+"?dry_run=true", desired(2, "2.8.1"), &dry)
	kp = planOf(t, dry.Plan, "kafka")
	if len(kp.Remove) != 1 {
		t.Fatalf("dry run of a shrink: %+v", kp)
	}
	// The policy keeps the spread first (a victim from the most crowded fault domain),
	// then takes the oldest there.
	crowd := map[string]int{}
	for _, n := range kafka.Nodes {
		crowd[n.FaultDomain]++
	}
	var oldest *client.Node
	for i, n := range kafka.Nodes {
		if n.FaultDomain == "" {
			t.Fatalf("kafka node %s has no fault domain", n.Name)
		}
		if oldest == nil || crowd[n.FaultDomain] > crowd[oldest.FaultDomain] ||
			crowd[n.FaultDomain] == crowd[oldest.FaultDomain] && n.CreatedAt.Before(oldest.CreatedAt) {
			oldest = &kafka.Nodes[i]
		}
	}
	if kp.Remove[0].ID != oldest.ID {
		t.Errorf("victim %s, want the oldest of the most crowded fault domain, %s", kp.Remove[0].Name, oldest.Name)
	}
	lcMust(t, c, "PUT", path, desired(2, "2.8.1"), &applied)
	if got, want := mustJSON(applied.Plan), mustJSON(dry.Plan); got != want {
		t.Fatalf("applied plan differs from the dry run:\n%s\n%s", got, want)
	}
	lcSucceeded(t, harness.WaitAction(t, c, applied.Action.ID, 120*time.Second))
	kafka = lcComp(t, lcTopo(t, c, topo.ID), "kafka")
	if plSize(kafka) != 2 {
		t.Fatalf("kafka after the shrink: %d nodes", plSize(kafka))
	}
	for _, n := range kafka.Nodes {
		if n.ID == kp.Remove[0].ID {
			t.Errorf("the planned victim %s is still there", n.Name)
		}
	}
	// Changes convergence cannot make are refused, naming them.
	bad := desired(2, "2.8.1")
	bad["components"] = append(bad["components"].([]map[string]any), map[string]any{"name": "zk2", "type": "zookeeper", "version": "3.4.6", "size": 1})
	plErr(t, lcCall(t, c, "PUT", path, bad, nil), http.StatusConflict, "add component zk2")
	// Drift: a node's VM crashes behind straas's back.
	s.Admin(t, "POST", "/vms/"+kafka.Nodes[0].ServerID+"/crash", nil)
	ev := plWaitEvent(t, c, topo.ID, "topology.drift", "", 60*time.Second)
	if !strings.Contains(ev.Message, kafka.Nodes[0].Name) {
		t.Errorf("drift event: %s", ev.Message)
	}
}

// planOf is a component's part of a plan.
func planOf(t *testing.T, p policy.Plan, name string) policy.ComponentPlan {
	t.Helper()
	for _, c := range p.Components {
		if c.Component == name {
			return c
		}
	}
	t.Fatalf("plan has no component %s: %+v", name, p)
	return policy.ComponentPlan{}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestPolicyHealthEscalatesRebootThenReplace: recovery escalates. A node whose server
// vanished behind straas's back is silent: the restart step needs its agent and is
// skipped, the reboot is tried (Nova no longer knows the server) and judged, the replace
// heals it on a new server. The action shows each step.
func TestPolicyHealthEscalatesRebootThenReplace(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, lcTopology("esc-1", 3, 0, -1))
	zk := lcComp(t, topo, "zk")
	plAttach(t, c, zk.ID, plPolicy(t, c, "escalate", plHealth("restart", "reboot", "replace")))
	victim := lcNode(t, zk, 2)
	if err := s.Nova(t).DeleteServer(context.Background(), victim.ServerID); err != nil {
		t.Fatal(err)
	}

	healed := plWaitEvent(t, c, topo.ID, "node.healed", victim.ID, 90*time.Second)
	if !strings.Contains(healed.Message, "healed by replace") {
		t.Fatalf("healed event: %s", healed.Message)
	}
	heals := plActions(t, c, topo.ID, "heal_node")
	if len(heals) != 1 {
		t.Fatalf("heal actions %+v", heals)
	}
	a := harness.WaitAction(t, c, heals[0].ID, 30*time.Second)
	lcSucceeded(t, a)
	start, _ := lcStage(a, "zk", "heal/start")
	reboot, okR := lcStage(a, "zk", "heal/reboot#1")
	replace, okP := lcStage(a, "zk", "heal/replace#2")
	if !strings.Contains(start.Detail, "steps reboot → replace") || !okR || reboot.Status != "FAILED" || !okP || replace.Status != "SUCCEEDED" {
		t.Fatalf("escalation stages:\n%s", lcStages(a))
	}
	if n := plNodeByID(t, lcTopo(t, c, topo.ID), victim.ID); n.ServerID == victim.ServerID || n.Status != "ACTIVE" {
		t.Errorf("after recovery: %s on server %s (was %s)", n.Status, n.ServerID, victim.ServerID)
	}
}

// TestPolicyConvergeWaitsForWindow: a convergence's replacements are disruptive and not
// urgent: outside the component's maintenance window the step waits and the action says
// until when; with ignore_windows it runs at once.
func TestPolicyConvergeWaitsForWindow(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, lcTopology("convw-1", 1, 0, -1))
	zk := lcComp(t, topo, "zk")
	at := time.Now().UTC().Add(2 * time.Hour)
	plSetOp(t, c, "component", zk.ID, map[string]any{"maintenance_windows": []map[string]string{
		{"cron": fmt.Sprintf("%d %d * * *", at.Minute(), at.Hour()), "duration": "1h"}}})
	desired := map[string]any{"name": "convw-1", "availability_zone": "az1", "components": []map[string]any{
		{"name": "zk", "type": "zookeeper", "version": "3.4.6", "size": 1, "flavor": "medium"}}}
	path := lcAPI + "/topologies/" + topo.ID
	var out restapi.ConvergeResponse
	lcMust(t, c, "PUT", path, desired, &out)
	if out.Action == nil || len(planOf(t, out.Plan, "zk").Replace) != 1 {
		t.Fatalf("a new flavor: %+v", out)
	}
	harness.Eventually(t, 30*time.Second, "the replacement waits for the window", func() bool {
		var a restapi.ActionResponse
		lcMust(t, c, "GET", lcAPI+"/actions/"+out.Action.ID, nil, &a)
		for _, st := range a.Action.Stages {
			if st.Name == "converge/wait_window#0" && st.Status == "RUNNING" && strings.Contains(st.Detail, "opens at") {
				return true
			}
		}
		return false
	})
	lcMust(t, c, "POST", lcAPI+"/actions/"+out.Action.ID+"/cancel", nil, nil)
	// Converging again, now, replaces the node.
	lcMust(t, c, "PUT", path+"?ignore_windows=true", desired, &out)
	lcSucceeded(t, harness.WaitAction(t, c, out.Action.ID, 120*time.Second))
	n := lcNode(t, lcComp(t, lcTopo(t, c, topo.ID), "zk"), 1)
	if n.Flavor != "medium" || n.ServerID == lcNode(t, zk, 1).ServerID || n.Status != "ACTIVE" {
		t.Fatalf("after convergence: %s on %s (%s)", n.Flavor, n.ServerID, n.Status)
	}
}

// TestCancelStopsRunningChild: cancelling a convergence whose replacement (a child
// action) is running stops the child too: it is CANCELLED with its parent named, the
// node it left half-built is FAILED saying so, its component lock is released, and
// replacing the node afterwards ends with one server per node (nothing left over from
// the stopped child).
func TestCancelStopsRunningChild(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, lcTopology("cancelch-1", 1, 0, -1))
	// New servers take long to boot: the child replacement waits for its node.
	s.Admin(t, "PUT", "/settings", map[string]any{"boot_latency": mockcn.Latency{Min: dummy.Duration(10 * time.Minute), Max: dummy.Duration(10 * time.Minute)}})
	desired := map[string]any{"name": "cancelch-1", "availability_zone": "az1", "components": []map[string]any{
		{"name": "zk", "type": "zookeeper", "version": "3.4.6", "size": 1, "flavor": "medium"}}}
	path := lcAPI + "/topologies/" + topo.ID + "?ignore_windows=true"
	var out restapi.ConvergeResponse
	lcMust(t, c, "PUT", path, desired, &out)
	if out.Action == nil {
		t.Fatalf("no convergence action: %+v", out)
	}
	var child string
	harness.Eventually(t, 60*time.Second, "the child replacement runs", func() bool {
		var a restapi.ActionResponse
		lcMust(t, c, "GET", lcAPI+"/actions/"+out.Action.ID, nil, &a)
		for _, st := range a.Action.Stages {
			if id, ok := strings.CutPrefix(st.Detail, "child action "); ok {
				child, _, _ = strings.Cut(id, " ")
			}
		}
		if child == "" {
			return false
		}
		var ch restapi.ActionResponse
		lcMust(t, c, "GET", lcAPI+"/actions/"+child, nil, &ch)
		return ch.Action.Status == "RUNNING"
	})
	lcMust(t, c, "POST", lcAPI+"/actions/"+out.Action.ID+"/cancel", nil, nil)
	var ch restapi.ActionResponse
	lcMust(t, c, "GET", lcAPI+"/actions/"+child, nil, &ch)
	if ch.Action.Status != "CANCELLED" || ch.Action.Error == nil || !strings.Contains(ch.Action.Error.Cause, out.Action.ID) {
		t.Fatalf("child after the parent's cancel: %s %+v", ch.Action.Status, ch.Action.Error)
	}

	// The node the child was replacing is FAILED, saying why, not SPAWNING for ever; the
	// lock is free: replacing it again (boots fast again) succeeds and leaves one server.
	zk := lcComp(t, lcTopo(t, c, topo.ID), "zk")
	if n := lcNode(t, zk, 1); n.Status != "FAILED" || !strings.Contains(n.Error, child) {
		t.Fatalf("node after the cancel: %s (%q), want FAILED naming %s", n.Status, n.Error, child)
	}
	s.Admin(t, "PUT", "/settings", map[string]any{"boot_latency": mockcn.DefaultBootLatency})
	lcSucceeded(t, lcStart(t, c, "PUT", lcAPI+"/nodes/"+lcNode(t, zk, 1).ID, nil))
	zk = lcComp(t, lcTopo(t, c, topo.ID), "zk")
	if len(zk.Nodes) != 1 || zk.Nodes[0].Status != "ACTIVE" || zk.Nodes[0].Flavor != "medium" {
		t.Fatalf("after replacing it again: %+v", zk.Nodes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	harness.Eventually(t, 60*time.Second, "one server per node", func() bool {
		servers, err := s.Nova(t).ListServers(ctx, "cancelch-1")
		if err != nil {
			t.Fatal(err)
		}
		return len(servers) == 1 && servers[0].ID == zk.Nodes[0].ServerID
	})
}
