package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/mockcn"
	restapi "github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/test/harness"
)

// Helpers of the policy and operational-state suites (policy_*_test.go, opstate_*_test.go).

// plPolicy creates a policy from a spec and returns its id.
func plPolicy(t *testing.T, c *client.Client, name, spec string) string {
	t.Helper()
	var out restapi.PolicyResponse
	lcMust(t, c, "POST", lcAPI+"/policies", map[string]any{"name": name, "spec": json.RawMessage(spec)}, &out)
	if out.Policy.ID == "" || out.Policy.Revision != 1 {
		t.Fatalf("created policy %+v", out.Policy)
	}
	return out.Policy.ID
}

// plAttach attaches a policy to a component.
func plAttach(t *testing.T, c *client.Client, compID, policyID string) {
	t.Helper()
	var out restapi.BindingResponse
	lcMust(t, c, "POST", lcAPI+"/components/"+compID+"/policies", map[string]any{"policy_id": policyID}, &out)
	if !out.Binding.Enabled || out.Binding.PolicyID != policyID {
		t.Fatalf("binding %+v", out.Binding)
	}
}

// plHealth is a health policy that notices silence in 3 s and recovers with actions.
func plHealth(actions ...string) string {
	b, _ := json.Marshal(actions)
	return fmt.Sprintf(`{"type":"straas.policy.health","version":"1.0","properties":{"detection":{"interval":1,"count":3},`+
		`"recovery":{"actions":%s,"grace_period":2,"step_timeout":60}}}`, b)
}

// plSetOp sets an operational state.
func plSetOp(t *testing.T, c *client.Client, level, id string, body map[string]any) restapi.OpStateSet {
	t.Helper()
	var out restapi.OpStateSet
	lcMust(t, c, "PUT", fmt.Sprintf("%s/%s/%s/operational_state", lcAPI, opPathOf(level), id), body, &out)
	return out
}

// plOp reads an operational state.
func plOp(t *testing.T, c *client.Client, level, id string) restapi.OpStateView {
	t.Helper()
	var out restapi.OpStateResponse
	lcMust(t, c, "GET", fmt.Sprintf("%s/%s/%s/operational_state", lcAPI, opPathOf(level), id), nil, &out)
	return out.OperationalState
}

func opPathOf(level string) string {
	return map[string]string{"topology": "topologies", "component": "components", "node": "nodes"}[level]
}

// plEvents lists events matching a query (every page).
func plEvents(t *testing.T, c *client.Client, q url.Values) []model.Event {
	t.Helper()
	var all []model.Event
	for {
		var out restapi.EventList
		lcMust(t, c, "GET", lcAPI+"/events?"+q.Encode(), nil, &out)
		all = append(all, out.Events...)
		if out.NextMarker == "" {
			return all
		}
		q.Set("marker", out.NextMarker)
	}
}

// plWaitEvent waits for an event of a type about a topology (and node, if set).
func plWaitEvent(t *testing.T, c *client.Client, topoID, typ, nodeID string, within time.Duration) model.Event {
	t.Helper()
	var found model.Event
	harness.Eventually(t, within, "event "+typ+" "+nodeID, func() bool {
		q := url.Values{"topology_id": {topoID}, "type": {typ}}
		if nodeID != "" {
			q.Set("node_id", nodeID)
		}
		evs := plEvents(t, c, q)
		if len(evs) == 0 {
			return false
		}
		found = evs[len(evs)-1]
		return true
	})
	return found
}

// plActions lists the actions of a topology of some kinds.
func plActions(t *testing.T, c *client.Client, topoID, kinds string) []model.Action {
	t.Helper()
	var out restapi.ActionList
	lcMust(t, c, "GET", lcAPI+"/actions?"+url.Values{"topology_id": {topoID}, "kind": {kinds}, "limit": {"1000"}}.Encode(), nil, &out)
	return out.Actions
}

// plVM finds the mock cloud's VM of a node (by server id).
func plVM(t *testing.T, s *harness.Straas, serverID string) mockcn.VM {
	t.Helper()
	return lcVM(t, s, serverID)
}

// plSilence silences (or not) the agent of a node's VM: no heartbeats, no commands.
func plSilence(t *testing.T, s *harness.Straas, serverID string, on bool) {
	t.Helper()
	s.Admin(t, "PUT", "/vms/"+serverID+"/agent", map[string]any{"silent": on})
}

// plNodeByID finds a node in a topology.
func plNodeByID(t *testing.T, topo client.Topology, id string) client.Node {
	t.Helper()
	for _, comp := range topo.Components {
		for _, n := range comp.Nodes {
			if n.ID == id {
				return n
			}
		}
	}
	t.Fatalf("topology %s has no node %s", topo.Name, id)
	return client.Node{}
}

// plSize counts a component's nodes that are not being deleted.
func plSize(comp client.Component) int {
	n := 0
	for _, x := range comp.Nodes {
		if x.Status != model.NodeDeleting {
			n++
		}
	}
	return n
}

// plErr requires a refusal with a status, whose message says want.
func plErr(t *testing.T, e *client.Error, status int, want string) {
	t.Helper()
	if e == nil {
		t.Fatalf("got success, want %d (%s)", status, want)
	}
	if e.Status != status || !strings.Contains(e.Message, want) {
		t.Fatalf("got %d %q, want %d saying %q", e.Status, e.Message, status, want)
	}
}
