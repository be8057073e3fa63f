package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/straas/straas/test/harness"
)

// TestCrashDuringInstall kills straas (SIGKILL) while nodes are installing, starts it
// again on the same data directory, and checks that the topology still becomes ACTIVE
// with exactly one server per node: none duplicated, none orphaned.
func TestCrashDuringInstall(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	// Slow installs down so that the kill lands inside the install stage.
	s.Admin(t, "PUT", "/settings", map[string]any{"knobs": map[string]any{"durations": map[string]string{"install": "3s"}}})
	c := s.Client(t, "demo")
	ctx := context.Background()
	topo, ref, err := c.CreateTopology(ctx, readExample(t, "zk-kafka-storm.json"))
	if err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 60*time.Second, "install stage running", func() bool {
		a, err := c.Action(ctx, ref.ID)
		if err != nil {
			return false
		}
		for _, st := range a.Stages {
			if st.Name == "install" && st.Status == "RUNNING" {
				return true
			}
		}
		return false
	})
	s.Kill()
	s.StartAgain()
	s.Admin(t, "PUT", "/settings", map[string]any{"knobs": map[string]any{"durations": map[string]string{"install": "50ms"}}})

	c = s.Client(t, "demo")
	a := harness.WaitAction(t, c, ref.ID, 120*time.Second)
	if a.Status != "SUCCEEDED" {
		t.Fatalf("creation after restart %s: %+v", a.Status, a.Error)
	}
	got, err := c.Topology(ctx, topo.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "ACTIVE" {
		t.Fatalf("topology %s after restart", got.Status)
	}
	servers, err := s.Nova(t).ListServers(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, sv := range servers {
		names[sv.Name]++
	}
	nodes := 0
	for _, comp := range got.Components {
		for _, n := range comp.Nodes {
			nodes++
			if names[n.Name] != 1 {
				t.Errorf("node %s has %d servers in Nova, want 1", n.Name, names[n.Name])
			}
		}
	}
	if nodes != 9 || len(servers) != 9 {
		t.Errorf("%d nodes and %d servers, want 9 and 9", nodes, len(servers))
	}
}
