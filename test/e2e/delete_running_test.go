package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/straas/straas/test/harness"
)

// TestDeleteStopsRunningWork deletes a topology while a flexup of it is installing: the
// flexup is cancelled, the deletion succeeds, and Nova keeps no server of the topology
// (none booted behind deletion's back).
func TestDeleteStopsRunningWork(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	ctx := context.Background()
	topo, act := create(t, c, []byte(`{"name":"del-run","availability_zone":"az1","components":[
		{"name":"kafka","type":"kafka","version":"0.10.2.1","size":1,"depends_on":"zk"},
		{"name":"zk","type":"zookeeper","version":"3.4.6","size":3}]}`), 90*time.Second)
	if act.Status != "SUCCEEDED" {
		t.Fatalf("creation %s: %+v", act.Status, act.Error)
	}
	var kafkaID string
	for _, comp := range topo.Components {
		if comp.Name == "kafka" {
			kafkaID = comp.ID
		}
	}
	s.Admin(t, "PUT", "/settings", map[string]any{"knobs": map[string]any{"durations": map[string]string{"install": "5s"}}})
	var flex struct {
		Action struct {
			ID string `json:"id"`
		} `json:"action"`
	}
	if _, err := c.Do(ctx, "POST", "/straas/v1.0/components/"+kafkaID, map[string]any{"count": 2}, &flex); err != nil {
		t.Fatalf("flexup: %v", err)
	}
	harness.Eventually(t, 60*time.Second, "flexup installing", func() bool {
		a, err := c.Action(ctx, flex.Action.ID)
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
	ref, err := c.DeleteTopology(ctx, topo.ID)
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if a := harness.WaitAction(t, c, ref.ID, 90*time.Second); a.Status != "SUCCEEDED" {
		t.Fatalf("deletion %s: %+v", a.Status, a.Error)
	}
	if a, err := c.Action(ctx, flex.Action.ID); err != nil || a.Status != "CANCELLED" {
		t.Errorf("flexup after deletion: %v %+v, want CANCELLED", err, a.Status)
	}
	// Let anything the stopped flexup might still do land, then look at Nova.
	nova := s.Nova(t)
	harness.Eventually(t, 20*time.Second, "Nova has no server of the deleted topology", func() bool {
		ss, err := nova.ListServers(ctx, "^del-run-")
		return err == nil && len(ss) == 0
	})
}
