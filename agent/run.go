package agent

import (
	"context"
	"time"

	"github.com/straas/straas/shared/errs"
)

// StandalonePollWait is how long a standalone agent long-polls its command queue.
const StandalonePollWait = 20 * time.Second

// Run runs the agent on its own (a real host) until ctx ends: it is a Fleet of one over
// Config.Queue, long-polling its command queue unless the queue pushes.
func (a *Agent) Run(ctx context.Context) error {
	if a.q == nil {
		return errs.Invalidf("queue", "a standalone agent needs a queue")
	}
	f, err := NewFleet(FleetConfig{
		Queue:       a.q,
		Clock:       a.clock,
		Logger:      a.log,
		Workers:     2,
		Pollers:     1,
		Senders:     1,
		MaxBlocking: a.maxInflight,
		PollWait:    StandalonePollWait,
	})
	if err != nil {
		return err
	}
	if err := f.Add(a); err != nil {
		return err
	}
	return f.Run(ctx)
}
