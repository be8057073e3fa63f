package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/test/harness"
)

// TestComponentUpgrade: changing a component's version rolls its nodes one at a time
// through install, configuration (the new version's defaults) and validate. An install
// that fails stops the upgrade on that node; asking for the version again finishes it.
func TestComponentUpgrade(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo, act := create(t, c, zkBody("upg-1", 2), 60*time.Second)
	if act.Status != "SUCCEEDED" {
		t.Fatalf("creation: %s %+v", act.Status, act.Error)
	}
	zk := componentNamed(t, c, topo.ID, "zk")
	upgrade := v1 + "/components/" + zk.ID

	// The second node cannot install 3.5.9.
	s.Admin(t, "PUT", "/vms/"+zk.Nodes[1].ServerID+"/agent",
		map[string]any{"knobs": map[string]any{"fail_install": []map[string]string{{"name": "zookeeper", "version": "3.5.9-1"}}}})
	var up struct {
		Component struct{ Version, Status string }
		Action    struct{ ID string }
		Plan      configPlan
	}
	if st, e := cfgCall(t, c, "PUT", upgrade, map[string]any{"version": "3.5.9"}, &up); st != 202 {
		t.Fatalf("upgrade: %d %v", st, e)
	}
	if up.Component.Version != "3.5.9" || up.Component.Status != "UPDATING" || up.Plan.ToRoll != 2 || up.Plan.Version != "3.5.9" {
		t.Errorf("upgrade answer: %+v", up)
	}
	for _, n := range up.Plan.Nodes {
		if n.Install != "3.5.9" || !n.Restart {
			t.Errorf("plan of node %s: %+v, want an install of 3.5.9 and a restart", n.Name, n)
		}
	}
	a := harness.WaitAction(t, c, up.Action.ID, 60*time.Second)
	if a.Status != "FAILED" || a.Error == nil || a.Error.Stage != "install" || a.Error.Node != zk.Nodes[1].Name ||
		!strings.Contains(a.Error.Cause, "3.5.9-1") {
		t.Fatalf("upgrade with a failing install: %s %+v", a.Status, a.Error)
	}
	if a.Kind != "upgrade_component" {
		t.Errorf("action kind %s", a.Kind)
	}
	zk = componentNamed(t, c, topo.ID, "zk")
	if zk.Version != "3.5.9" || zk.Status != "DEGRADED" {
		t.Errorf("component after the failed upgrade: %s %s", zk.Version, zk.Status)
	}
	if n := zk.Nodes[0]; n.InstalledVersion != "3.5.9" || n.Status != "ACTIVE" {
		t.Errorf("first node: %s, installed %s", n.Status, n.InstalledVersion)
	} else if _, ok := n.Config.Sections["zookeeper"]["admin_server_port"]; !ok {
		t.Errorf("first node lacks 3.5.9's admin_server_port: %v", n.Config.Sections)
	}
	if n := zk.Nodes[1]; n.InstalledVersion != "3.4.6" || !strings.Contains(n.Error, "install") {
		t.Errorf("second node: installed %s, error %q", n.InstalledVersion, n.Error)
	}

	// The same version again finishes the upgrade where it stopped.
	s.Admin(t, "PUT", "/vms/"+zk.Nodes[1].ServerID+"/agent", map[string]any{"clear_knobs": true})
	if st, e := cfgCall(t, c, "PUT", upgrade, map[string]any{"version": "3.5.9"}, &up); st != 202 {
		t.Fatalf("finishing the upgrade: %d %v", st, e)
	}
	if up.Plan.ToRoll != 1 || up.Plan.Nodes[1].Install != "3.5.9" || up.Plan.Nodes[0].Roll {
		t.Errorf("finishing plan: %+v", up.Plan)
	}
	if a := harness.WaitAction(t, c, up.Action.ID, 60*time.Second); a.Status != "SUCCEEDED" {
		t.Fatalf("finishing the upgrade: %s %+v", a.Status, a.Error)
	} else if st, _ := stageOf(a, "config_change/"+zk.Nodes[1].Name); !strings.HasPrefix(st.Detail, "install, pre_configure, configure, restart, validate") {
		t.Errorf("second node's roll: %q", st.Detail)
	}
	zk = componentNamed(t, c, topo.ID, "zk")
	if zk.Status != "ACTIVE" {
		t.Errorf("component after the upgrade: %s", zk.Status)
	}
	for _, n := range zk.Nodes {
		if n.InstalledVersion != "3.5.9" || n.Status != "ACTIVE" || n.Error != "" {
			t.Errorf("node %s: %s, installed %s, error %q", n.Name, n.Status, n.InstalledVersion, n.Error)
		}
	}
}
