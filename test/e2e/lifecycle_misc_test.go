package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/agent/dummy"
	"github.com/straas/straas/mockcn"
	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/test/harness"
)

// TestLifecycleStatusDependenciesCMSLegacy: the health check's write-back, dependencies,
// the CMS (both spellings), the legacy read routes, and 409 for a second operation on a
// component while one runs.
func TestLifecycleStatusDependenciesCMSLegacy(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	other := s.Client(t, "other")
	topo := lcCreate(t, c, lcTopology("misc-1", 1, 1, -1))
	zk, kafka := lcComp(t, topo, "zk"), lcComp(t, topo, "kafka")
	zn := lcNode(t, zk, 1)

	// Dependencies.
	var deps struct {
		DependsOn  []struct{ Name string } `json:"depends_on"`
		Dependents []struct{ Name string } `json:"dependents"`
	}
	lcMust(t, c, "GET", lcAPI+"/components/"+zk.ID+"/dependencies", nil, &deps)
	if len(deps.DependsOn) != 0 || len(deps.Dependents) != 1 || deps.Dependents[0].Name != "kafka" {
		t.Errorf("zk dependencies %+v, want kafka depending on it", deps)
	}
	lcMust(t, c, "GET", lcAPI+"/components/"+kafka.ID+"/dependencies", nil, &deps)
	if len(deps.DependsOn) != 1 || deps.DependsOn[0].Name != "zk" || len(deps.Dependents) != 0 {
		t.Errorf("kafka dependencies %+v, want zk", deps)
	}

	// Health-check status.
	var rep struct {
		Status string `json:"status"`
		Nodes  []struct{ Name, From, To string }
	}
	lcMust(t, c, "POST", lcAPI+"/components/"+zk.ID+"/status", map[string]string{zn.Name: "UNREACHABLE"}, &rep)
	if rep.Status != "DEGRADED" || len(rep.Nodes) != 1 || rep.Nodes[0].To != "UNREACHABLE" {
		t.Errorf("UNREACHABLE verdict: %+v", rep)
	}
	lcMust(t, c, "POST", lcAPI+"/components/"+zk.ID+"/status", map[string]string{zn.Name: "ACTIVE"}, &rep)
	if rep.Status != "ACTIVE" || rep.Nodes[0].To != "ACTIVE" {
		t.Errorf("ACTIVE verdict: %+v", rep)
	}
	if got := lcNode(t, lcComp(t, lcTopo(t, c, topo.ID), "zk"), 1); got.Status != "ACTIVE" {
		t.Errorf("node after the verdicts: %s", got.Status)
	}
	for _, body := range []map[string]string{{"nobody": "ACTIVE"}, {zn.Name: "GREEN"}} {
		if e := lcCall(t, c, "POST", lcAPI+"/components/"+zk.ID+"/status", body, nil); e == nil || e.Status != 400 {
			t.Errorf("status %v: %v, want 400", body, e)
		}
	}

	// CMS, under both spellings.
	var cms struct {
		Model struct {
			TopologyID string `json:"topology_id"`
			Components []struct {
				Name  string
				Nodes []struct{ Name string }
			} `json:"components"`
		} `json:"cms"`
	}
	if e := lcCall(t, c, "GET", lcAPI+"/topologies/"+topo.ID+"/cms", nil, nil); e == nil || e.Status != 404 {
		t.Errorf("CMS before create: %v, want 404", e)
	}
	lcMust(t, c, "POST", lcAPI+"/typologies/"+topo.ID+"/cms", nil, &cms)
	if cms.Model.TopologyID != topo.ID || len(cms.Model.Components) != 2 || len(cms.Model.Components[0].Nodes) != 1 {
		t.Errorf("CMS model %+v", cms.Model)
	}
	if e := lcCall(t, c, "POST", lcAPI+"/topologies/"+topo.ID+"/cms", nil, nil); e == nil || e.Status != 409 {
		t.Errorf("second CMS create: %v, want 409", e)
	}
	lcMust(t, c, "GET", lcAPI+"/topologies/"+topo.ID+"/cms", nil, &cms)
	lcMust(t, c, "PUT", lcAPI+"/typologies/"+topo.ID+"/cms", nil, &cms)
	if e := lcCall(t, other, "GET", lcAPI+"/topologies/"+topo.ID+"/cms", nil, nil); e == nil || e.Status != 404 {
		t.Errorf("another tenant's CMS read: %v, want 404", e)
	}
	lcMust(t, c, "DELETE", lcAPI+"/topologies/"+topo.ID+"/cms", nil, nil)
	if e := lcCall(t, c, "GET", lcAPI+"/typologies/"+topo.ID+"/cms", nil, nil); e == nil || e.Status != 404 {
		t.Errorf("CMS after delete: %v, want 404", e)
	}

	// Legacy reads.
	var list struct {
		Topologies []struct{ ID string } `json:"topologies"`
	}
	lcMust(t, c, "GET", "/straas/", nil, &list)
	if len(list.Topologies) != 1 || list.Topologies[0].ID != topo.ID {
		t.Errorf("GET /straas/: %+v", list)
	}
	var one struct {
		Topology client.Topology `json:"topology"`
	}
	for _, name := range []string{"misc-1", "misc-1@az1"} {
		lcMust(t, c, "GET", "/straas/"+name, nil, &one)
		if one.Topology.ID != topo.ID || len(one.Topology.Components) != 2 {
			t.Errorf("GET /straas/%s: %s with %d components", name, one.Topology.ID, len(one.Topology.Components))
		}
		if e := lcCall(t, other, "GET", "/straas/"+name, nil, nil); e == nil || e.Status != 404 {
			t.Errorf("another tenant's GET /straas/%s: %v, want 404", name, e)
		}
	}

	// One operation at a time per component: slow boots keep a flexup running.
	s.Admin(t, "PUT", "/settings", map[string]any{"boot_latency": mockcn.Latency{Min: dummy.Duration(2 * time.Second), Max: dummy.Duration(2 * time.Second)}})
	var first lcAccepted
	lcMust(t, c, "POST", lcAPI+"/components/"+kafka.ID, map[string]any{"count": 1}, &first)
	for _, call := range []struct{ method, path string }{
		{"POST", lcAPI + "/components/" + kafka.ID},
		{"PUT", lcAPI + "/nodes/" + lcNode(t, kafka, 1).ID},
		{"DELETE", lcAPI + "/nodes/" + lcNode(t, kafka, 1).ID + "/services"},
	} {
		e := lcCall(t, c, call.method, call.path, nil, nil)
		if e == nil || e.Status != 409 || !strings.Contains(e.Message, first.Action.ID) {
			t.Errorf("%s %s during a flexup: %v, want 409 naming action %s", call.method, call.path, e, first.Action.ID)
		}
	}
	s.Admin(t, "PUT", "/settings", map[string]any{"boot_latency": mockcn.DefaultBootLatency})
	lcSucceeded(t, harness.WaitAction(t, c, first.Action.ID, 60*time.Second))
	// The lock is gone with the action: the next operation runs.
	lcSucceeded(t, lcStart(t, c, "PUT", lcAPI+"/nodes/"+lcNode(t, kafka, 1).ID+"/services", nil))
}
