package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/agent/dummy"
	"github.com/straas/straas/mockcn"
	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/test/harness"
)

// Helpers of the lifecycle suites (lifecycle_*_test.go): topologies, calls, actions and
// what the mock nodes keep on disk.

const lcAPI = "/straas/v1.0"

// lcTopology is a topology body: zk zookeeper nodes, kafka brokers (0: none), and a storm
// component with one nimbus and sup supervisors (sup < 0: none).
func lcTopology(name string, zk, kafka, sup int) []byte {
	comps := []map[string]any{{"name": "zk", "type": "zookeeper", "version": "3.4.6", "size": zk}}
	if kafka > 0 {
		comps = append(comps, map[string]any{"name": "kafka", "type": "kafka", "version": "0.10.2.1", "size": kafka, "depends_on": []string{"zk"}})
	}
	if sup >= 0 {
		comps = append(comps, map[string]any{"name": "strm", "type": "storm", "version": "0.10", "size": 1 + sup, "depends_on": []string{"zk"},
			"submodules": []map[string]any{{"role": "nimbus", "size": 1}, {"role": "supervisor", "size": sup}}})
	}
	b, _ := json.Marshal(map[string]any{"name": name, "availability_zone": "az1", "components": comps})
	return b
}

// lcCreate creates a topology and requires it ACTIVE.
func lcCreate(t *testing.T, c *client.Client, body []byte) client.Topology {
	t.Helper()
	topo, a := create(t, c, body, 90*time.Second)
	if a.Status != "SUCCEEDED" {
		t.Fatalf("creation %s: %+v", a.Status, a.Error)
	}
	return topo
}

// lcTopo reads a topology again.
func lcTopo(t *testing.T, c *client.Client, id string) client.Topology {
	t.Helper()
	topo, err := c.Topology(context.Background(), id)
	if err != nil {
		t.Fatalf("show topology %s: %v", id, err)
	}
	return topo
}

// lcComp finds a component by name.
func lcComp(t *testing.T, topo client.Topology, name string) client.Component {
	t.Helper()
	for _, comp := range topo.Components {
		if comp.Name == name {
			return comp
		}
	}
	t.Fatalf("topology %s has no component %s", topo.Name, name)
	return client.Component{}
}

// lcNode finds a node of a component by index.
func lcNode(t *testing.T, comp client.Component, index int) client.Node {
	t.Helper()
	for _, n := range comp.Nodes {
		if n.Index == index {
			return n
		}
	}
	t.Fatalf("component %s has no node %d", comp.Name, index)
	return client.Node{}
}

// lcCall does a request; a non-2xx answer is returned as the error, not a failure.
func lcCall(t *testing.T, c *client.Client, method, path string, body, out any) *client.Error {
	t.Helper()
	_, err := c.Do(context.Background(), method, path, body, out)
	if err == nil {
		return nil
	}
	ce, ok := err.(*client.Error)
	if !ok {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return ce
}

// lcMust does a request that must succeed.
func lcMust(t *testing.T, c *client.Client, method, path string, body, out any) {
	t.Helper()
	if e := lcCall(t, c, method, path, body, out); e != nil {
		t.Fatalf("%s %s: %v", method, path, e)
	}
}

// lcAccepted is the answer of a call that starts an action.
type lcAccepted struct {
	Action client.ActionRef `json:"action"`
}

// lcStart does a call that starts an action, and waits for the action to end.
func lcStart(t *testing.T, c *client.Client, method, path string, body any) client.Action {
	t.Helper()
	var out lcAccepted
	lcMust(t, c, method, path, body, &out)
	if out.Action.ID == "" {
		t.Fatalf("%s %s: no action in the answer", method, path)
	}
	return harness.WaitAction(t, c, out.Action.ID, 90*time.Second)
}

// lcSucceeded requires an action to have succeeded, showing its stages otherwise.
func lcSucceeded(t *testing.T, a client.Action) {
	t.Helper()
	if a.Status != "SUCCEEDED" {
		t.Fatalf("action %s (%s) %s: %+v\n%s", a.ID, a.Kind, a.Status, a.Error, lcStages(a))
	}
}

// lcStages renders an action's stages for failure messages.
func lcStages(a client.Action) string {
	var b strings.Builder
	for _, s := range a.Stages {
		fmt.Fprintf(&b, "  %-8s %-34s %-9s %s\n", s.Component, s.Name, s.Status, s.Detail)
	}
	return b.String()
}

// lcStage finds an action's stage of a component by name.
func lcStage(a client.Action, comp, name string) (client.Stage, bool) {
	for _, s := range a.Stages {
		if s.Name == name && (comp == "" || s.Component == comp) {
			return s, true
		}
	}
	return client.Stage{}, false
}

// lcVM is the mock cloud's view of a server.
func lcVM(t *testing.T, s *harness.Straas, serverID string) mockcn.VM {
	t.Helper()
	var out struct {
		VM mockcn.VM `json:"vm"`
	}
	if err := json.Unmarshal(s.Admin(t, "GET", "/vms/"+serverID, nil), &out); err != nil {
		t.Fatal(err)
	}
	return out.VM
}

// lcVMDir is where a mock server keeps its disk (mockcn/doc.go).
func lcVMDir(t *testing.T, s *harness.Straas, serverID string) string {
	t.Helper()
	vm := lcVM(t, s, serverID)
	return filepath.Join(s.DataDir, "cloud", "servers", vm.CN, "vms", vm.ID)
}

// lcSitePP reads the site.pp a node's agent wrote for its role.
func lcSitePP(t *testing.T, s *harness.Straas, n client.Node) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(lcVMDir(t, s, n.ServerID), "puppet", "manifests", n.Role, "site.pp"))
	if err != nil {
		t.Fatalf("site.pp of node %s: %v", n.Name, err)
	}
	return string(b)
}

// lcState reads a mock node's state.json.
func lcState(t *testing.T, s *harness.Straas, n client.Node) dummy.State {
	t.Helper()
	var st dummy.State
	b, err := os.ReadFile(filepath.Join(lcVMDir(t, s, n.ServerID), "state.json"))
	if err != nil {
		t.Fatalf("state of node %s: %v", n.Name, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// lcKnobs gives one mock node its own fault knobs (nil: back to the fleet's).
func lcKnobs(t *testing.T, s *harness.Straas, n client.Node, k *dummy.Knobs) {
	t.Helper()
	body := map[string]any{"knobs": k}
	if k == nil {
		body = map[string]any{"clear_knobs": true}
	}
	s.Admin(t, "PUT", "/vms/"+n.ServerID+"/agent", body)
}

// lcSection reads an option of a node's configuration as straas recorded it.
func lcSection(n client.Node, section, key string) string {
	if n.Config == nil {
		return ""
	}
	return fmt.Sprint(n.Config.Sections[section][key])
}

// lcIPs lists the first IP of every node.
func lcIPs(nodes []client.Node) []string {
	var out []string
	for _, n := range nodes {
		if len(n.IPs) > 0 {
			out = append(out, n.IPs[0])
		}
	}
	return out
}
