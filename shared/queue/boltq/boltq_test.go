package boltq_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/boltq"
	"github.com/straas/straas/shared/queue/queuetest"
)

const testVisibility = 200 * time.Millisecond

func openTemp(t testing.TB, opts ...boltq.Option) *boltq.Queue {
	t.Helper()
	q, err := boltq.Open(filepath.Join(t.TempDir(), "queues.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := q.Close(); err != nil {
			t.Error(err)
		}
	})
	return q
}

func TestContract(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Queue {
		return openTemp(t, boltq.WithVisibility(testVisibility))
	}, queuetest.Options{Visibility: testVisibility, Poll: 500 * time.Millisecond, Settle: time.Second})
}
