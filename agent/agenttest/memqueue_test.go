package agenttest_test

import (
	"testing"
	"time"

	"github.com/straas/straas/agent/agenttest"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/queuetest"
)

// The test double keeps the port's contract, so agents tested on it behave on the real
// adapters too.
func TestMemQueueConformance(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Queue {
		q := agenttest.NewMemQueue(nil)
		q.SetVisibility(200 * time.Millisecond)
		return q
	}, queuetest.Options{Visibility: 200 * time.Millisecond, Poll: 100 * time.Millisecond, Settle: time.Second})
}
