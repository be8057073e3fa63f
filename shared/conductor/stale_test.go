package conductor

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/asl/asltest"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/checker"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/jobs"
	"github.com/straas/straas/shared/model"
)

// TestSilenceAndReturn: the checker flags a node silent past StaleAfter UNREACHABLE,
// remembering its status; its next heartbeat gives that status back (RESTART_REQUIRED
// stays RESTART_REQUIRED: the restart it waits for has not happened).
func TestSilenceAndReturn(t *testing.T) {
	for _, status := range []string{model.NodeActive, model.NodeRestartRequired} {
		t.Run(status, func(t *testing.T) {
			ctx := context.Background()
			fc := clock.NewFake(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
			d := db.New(asltest.NewMemStore(), fc)
			bs := &batch.Service{DB: d, Log: slog.Default()}
			c := &Conductor{DB: d, Batches: bs, Log: slog.Default(), StaleAfter: 30 * time.Second}
			ck := &checker.Checker{DB: d, Batches: bs, Launcher: &jobs.Launcher{DB: d, Log: slog.Default()}, Log: slog.Default(),
				Clock: fc, StaleAfter: 30 * time.Second}
			n := model.Node{ID: "n1", Name: "t-zk-1", TopologyID: "t", ComponentID: "c", Tenant: "p", Status: status, InstalledVersion: "3.4.6"}
			if err := d.PutNode(ctx, &n); err != nil {
				t.Fatal(err)
			}
			hb := func(seq uint64) {
				t.Helper()
				body, _ := agentproto.Encode(agentproto.Envelope{Type: agentproto.TypeHeartbeat, Node: "n1", At: fc.Now(),
					Heartbeat: &agentproto.Heartbeat{Seq: seq}})
				if err := c.Handle(ctx, body); err != nil {
					t.Fatal(err)
				}
			}
			hb(1)
			fc.Advance(10 * time.Second)
			if r, err := ck.TickReport(ctx); err != nil || r.Stale != 0 {
				t.Fatalf("10 s after a heartbeat: stale %d (%v), want 0", r.Stale, err)
			}
			fc.Advance(31 * time.Second)
			if r, err := ck.TickReport(ctx); err != nil || r.Stale != 1 {
				t.Fatalf("41 s after a heartbeat: stale %d (%v), want 1", r.Stale, err)
			}
			got, _, _ := d.Node(ctx, "n1")
			if got.Status != model.NodeUnreachable || got.PrevStatus != status {
				t.Fatalf("silent node: status %s prev %q, want UNREACHABLE prev %s", got.Status, got.PrevStatus, status)
			}
			if r, _ := ck.TickReport(ctx); r.Stale != 0 {
				t.Errorf("flagged twice: the stale scan should skip flagged leases")
			}
			hb(2)
			got, _, _ = d.Node(ctx, "n1")
			if got.Status != status || got.PrevStatus != "" || got.Error != "" {
				t.Errorf("after it reported again: status %s prev %q error %q, want %s", got.Status, got.PrevStatus, got.Error, status)
			}
		})
	}
}
