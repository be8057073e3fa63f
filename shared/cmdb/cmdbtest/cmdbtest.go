// Package cmdbtest is the conformance suite every cmdb.CMDB adapter passes.
package cmdbtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/straas/straas/shared/cmdb"
	"github.com/straas/straas/shared/errs"
)

// Model returns a model of topology id with one component of n nodes.
func Model(id string, n int) cmdb.Model {
	m := cmdb.Model{TopologyID: id, Name: "t-" + id, AvailabilityZone: "az1", Tenant: "p1", Owner: "u1", Status: "ACTIVE",
		SyncedAt: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	c := cmdb.Component{ID: "comp-" + id, Name: "zk", Type: "zookeeper", Version: "3.4.6", Status: "ACTIVE", DependsOn: []string{}}
	for i := 1; i <= n; i++ {
		c.Nodes = append(c.Nodes, cmdb.Node{ID: fmt.Sprintf("%s-%d", c.ID, i), Name: fmt.Sprintf("t-zk-%d", i), Role: "zookeeper",
			Index: i, Status: "ACTIVE", IPs: []string{fmt.Sprintf("10.0.0.%d", i)}})
	}
	m.Components = []cmdb.Component{c}
	return m
}

// Run checks the adapter newCMDB returns (a fresh, empty one per call).
func Run(t *testing.T, newCMDB func(t *testing.T) cmdb.CMDB) {
	ctx := context.Background()
	kind := func(err error) errs.Kind { return errs.KindOf(err) }
	tests := []struct {
		name string
		run  func(t *testing.T, c cmdb.CMDB)
	}{
		{"create then get returns the model", func(t *testing.T, c cmdb.CMDB) {
			m := Model("t1", 3)
			if err := c.Create(ctx, m); err != nil {
				t.Fatal(err)
			}
			got, err := c.Get(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(m) {
				t.Errorf("got %+v, want %+v", got, m)
			}
		}},
		{"create twice is a conflict", func(t *testing.T, c cmdb.CMDB) {
			if err := c.Create(ctx, Model("t1", 1)); err != nil {
				t.Fatal(err)
			}
			if err := c.Create(ctx, Model("t1", 2)); kind(err) != errs.Conflict {
				t.Errorf("second create: got %v (%v), want a conflict", err, kind(err))
			}
		}},
		{"get, update and delete of a missing model are not found", func(t *testing.T, c cmdb.CMDB) {
			if _, err := c.Get(ctx, "nope"); kind(err) != errs.NotFound {
				t.Errorf("get: got %v, want not found", err)
			}
			if err := c.Update(ctx, Model("nope", 1)); kind(err) != errs.NotFound {
				t.Errorf("update: got %v, want not found", err)
			}
			if err := c.Delete(ctx, "nope"); kind(err) != errs.NotFound {
				t.Errorf("delete: got %v, want not found", err)
			}
		}},
		{"update replaces the model", func(t *testing.T, c cmdb.CMDB) {
			if err := c.Create(ctx, Model("t1", 1)); err != nil {
				t.Fatal(err)
			}
			m := Model("t1", 4)
			m.Status = "UPDATING"
			if err := c.Update(ctx, m); err != nil {
				t.Fatal(err)
			}
			got, err := c.Get(ctx, "t1")
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Components[0].Nodes) != 4 || got.Status != "UPDATING" {
				t.Errorf("got %d nodes, status %s; want 4, UPDATING", len(got.Components[0].Nodes), got.Status)
			}
		}},
		{"delete removes only that model", func(t *testing.T, c cmdb.CMDB) {
			for _, id := range []string{"t1", "t2"} {
				if err := c.Create(ctx, Model(id, 1)); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Delete(ctx, "t1"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Get(ctx, "t1"); kind(err) != errs.NotFound {
				t.Errorf("deleted model: got %v, want not found", err)
			}
			if _, err := c.Get(ctx, "t2"); err != nil {
				t.Errorf("other model: %v", err)
			}
		}},
		{"a model without a topology id is invalid", func(t *testing.T, c cmdb.CMDB) {
			if err := c.Create(ctx, cmdb.Model{Name: "x"}); kind(err) != errs.Invalid {
				t.Errorf("got %v, want invalid", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newCMDB(t)) })
	}
}
