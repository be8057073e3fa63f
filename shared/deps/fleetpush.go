package deps

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/straas/straas/agent"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/boltq"
)

// FleetPush feeds an in-process mock fleet from the embedded queue's push dispatcher, so
// that an idle agent costs nothing: instead of every agent polling its command queue (300
// agents backing off to 2 s are 150 receives a second), the queue hands new commands to
// the fleet (agent.Fleet.Deliver) from a fixed pool of workers.
//
// The fleet's queue is wrapped: an agent's own receive on its command queue (at boot,
// after a silence, at the fleet's safety poll) subscribes that queue to the dispatcher.
// That is how the queues the control plane creates get served without the fleet being
// told about them. A delivery the fleet refuses (the agent booting, silent or crashed)
// unsubscribes the queue until the agent receives again; the refused messages come back
// after the visibility timeout, as they would from a consumer that died.
//
// When the queue notifies by itself (agent.Subscriber) the fleet uses that and FleetPush
// stays out of the way.
type FleetPush struct {
	q     *boltq.Queue
	d     *boltq.Dispatcher // nil when the queue is a Subscriber
	fleet atomic.Pointer[agent.Fleet]
}

// NewFleetPush prepares the dispatcher (workers: concurrent deliveries; 0 for 4).
func NewFleetPush(q *boltq.Queue, workers int) *FleetPush {
	p := &FleetPush{q: q}
	if _, ok := any(q).(agent.Subscriber); ok {
		return p
	}
	p.d = q.NewDispatcher(p.deliver, boltq.DispatchOptions{Workers: workers})
	return p
}

// Queue is the queue to give the fleet (mockcn.Config.Queue).
func (p *FleetPush) Queue() queue.Queue {
	if p.d == nil {
		return p.q
	}
	return pushQueue{Queue: p.q, p: p}
}

// Configure marks the fleet as fed by pushes: it then polls only at its safety interval.
func (p *FleetPush) Configure(fc *agent.FleetConfig) {
	if p.d != nil {
		fc.Pushed = true
	}
}

// Bind names the fleet deliveries go to (the fleet is built from Queue, so after it).
func (p *FleetPush) Bind(f *agent.Fleet) { p.fleet.Store(f) }

// Run serves the dispatcher until ctx ends; stop it before closing the queue.
func (p *FleetPush) Run(ctx context.Context) error {
	if p.d == nil {
		<-ctx.Done()
		return nil
	}
	return p.d.Run(ctx)
}

func (p *FleetPush) deliver(ctx context.Context, name string, msgs []queue.Message) {
	f := p.fleet.Load()
	if f == nil || !f.Deliver(ctx, name, msgs) {
		// Nobody takes them now: leave the queue to the agent's own receive, which
		// subscribes it again.
		p.d.Drop(name)
	}
}

// pushQueue subscribes the command queues the fleet receives on.
type pushQueue struct {
	*boltq.Queue
	p *FleetPush
}

func (q pushQueue) Receive(ctx context.Context, name string, max int, wait time.Duration) ([]queue.Message, error) {
	// A missing queue (not made yet, or removed) is not subscribed; the receive below
	// reports it to the fleet, which retries.
	_ = q.p.d.Add(name)
	return q.Queue.Receive(ctx, name, max, wait)
}
