package batch

import (
	"context"
	"fmt"
	"testing"

	"github.com/straas/straas/shared/asl/asltest"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/queue"
)

// TestOpenSurvivesACrashAtEveryWrite kills the store after each write Open makes, then
// re-runs the stage (as the interpreter does after a restart, with a new token): every
// node must still get its command and the batch must complete — never a batch left
// waiting for targets it has no entries or commands for.
func TestOpenSurvivesACrashAtEveryWrite(t *testing.T) {
	for kill := int64(0); kill < 8; kill++ {
		t.Run(fmt.Sprintf("killed after %d writes", kill), func(t *testing.T) {
			f := newFixture(t, 3)
			ctx := context.Background()
			real := f.svc.DB.S
			k := asltest.NewKillable(real)
			k.KillAfter(kill)
			dead := *f.svc
			dead.DB = db.New(k, f.clock)
			_, _ = dead.Open(ctx, f.spec("first", "install", false)) // may fail anywhere

			// Restart: same store, the stage re-run with a new token.
			for _, n := range f.nodes { // what the dead process sent is still queued; drop it
				msgs, _ := f.q.Receive(ctx, queue.NodeQueue(n.ID), 10, 0)
				for _, m := range msgs {
					_ = f.q.Ack(ctx, queue.NodeQueue(n.ID), m.Receipt)
				}
			}
			sp := f.spec("second", "install", false)
			if _, err := f.svc.Open(ctx, sp); err != nil {
				t.Fatalf("re-open: %v", err)
			}
			for _, n := range f.nodes {
				msgs, err := f.q.Receive(ctx, queue.NodeQueue(n.ID), 10, 0)
				if err != nil || len(msgs) != 1 {
					t.Fatalf("after the restart node %s got %d commands (%v), want 1", n.Name, len(msgs), err)
				}
				if _, err := f.svc.Record(ctx, sp.ID, n.ID, Result{OK: true}); err != nil {
					t.Fatal(err)
				}
			}
			if _, ok := f.wf.success["second"]; !ok {
				t.Fatalf("the re-run stage never completed: %v %v", f.wf.success, f.wf.failure)
			}
		})
	}
}
