package asl_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/straas/straas/shared/asl"
	"github.com/straas/straas/shared/queue/boltq"
	"github.com/straas/straas/shared/store/bolt"
	"github.com/straas/straas/shared/workflow/workflowtest"
)

// The workflow port's conformance suite against the interpreter on the real embedded
// store and queue, as `straas up` runs it.
func TestWorkflowContract(t *testing.T) {
	workflowtest.Run(t, func(t *testing.T, env workflowtest.Env) workflowtest.Setup {
		dir := t.TempDir()
		st, err := bolt.Open(filepath.Join(dir, "store.db"))
		if err != nil {
			t.Fatal(err)
		}
		q, err := boltq.Open(filepath.Join(dir, "queue.db"))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if err := q.Ensure(ctx, env.TaskQueue); err != nil {
			t.Fatal(err)
		}
		// The embedded engine sends to the queue QueueUrl ends in: the bare name will do.
		subst := map[string]string{workflowtest.TaskQueueURL: env.TaskQueue}
		machines := map[string]*asl.Machine{}
		for name, def := range env.Definitions {
			m, err := asl.Load(name, def, subst)
			if err != nil {
				t.Fatal(err)
			}
			machines[name] = m
		}
		eng, err := asl.New(asl.Config{Store: st, Queue: q, Machines: machines})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- eng.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10s of cancel")
			}
			if err := q.Close(); err != nil {
				t.Errorf("close queue: %v", err)
			}
			if err := st.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		})
		return workflowtest.Setup{Engine: eng, Queue: q}
	}, workflowtest.Options{Deadline: 15 * time.Second, Poll: 200 * time.Millisecond})
}
