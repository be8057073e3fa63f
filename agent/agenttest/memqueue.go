// Package agenttest holds test doubles for agents and their hosts: an in-memory
// queue.Queue that pushes notifications like the embedded queue, and helpers to read
// what agents said on the status queue.
package agenttest

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
)

// MemQueue is an in-memory queue.Queue with visibility timeouts (on the given clock) and
// push notifications (Subscribe). It is for tests: nothing is durable.
type MemQueue struct {
	clock      clock.Clock
	visibility time.Duration

	mu     sync.Mutex
	queues map[string]*memQ
	subs   map[string]map[uint64]func()
	next   uint64

	failSend atomic.Pointer[error]
	sends    atomic.Int64
}

type memQ struct {
	msgs    []*memMsg
	changed chan struct{}
}

type memMsg struct {
	id        string
	body      []byte
	receipt   string
	visibleAt time.Time
	receives  int
}

// NewMemQueue returns an empty queue; c may be nil for the wall clock.
func NewMemQueue(c clock.Clock) *MemQueue {
	if c == nil {
		c = clock.Real{}
	}
	return &MemQueue{clock: c, visibility: queue.DefaultVisibility, queues: map[string]*memQ{}, subs: map[string]map[uint64]func(){}}
}

// SetVisibility changes the visibility timeout of received messages.
func (q *MemQueue) SetVisibility(d time.Duration) {
	q.mu.Lock()
	q.visibility = d
	q.mu.Unlock()
}

// FailSends makes every Send fail with err until called with nil.
func (q *MemQueue) FailSends(err error) {
	if err == nil {
		q.failSend.Store(nil)
		return
	}
	q.failSend.Store(&err)
}

// Sends counts Send calls.
func (q *MemQueue) Sends() int64 { return q.sends.Load() }

var _ queue.Queue = (*MemQueue)(nil)

func (q *MemQueue) Ensure(ctx context.Context, name string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, n := range []string{name, queue.DeadLetter(name)} {
		if q.queues[n] == nil {
			q.queues[n] = &memQ{changed: make(chan struct{})}
		}
	}
	return nil
}

func (q *MemQueue) Remove(ctx context.Context, name string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, n := range []string{name, queue.DeadLetter(name)} {
		if mq := q.queues[n]; mq != nil {
			close(mq.changed)
			delete(q.queues, n)
		}
	}
	return nil
}

func (q *MemQueue) Send(ctx context.Context, name string, bodies ...[]byte) error {
	q.sends.Add(1)
	if p := q.failSend.Load(); p != nil {
		return *p
	}
	q.mu.Lock()
	mq := q.queues[name]
	if mq == nil {
		q.mu.Unlock()
		return errs.NotFoundf("queue %s not found", name)
	}
	now := q.clock.Now()
	for _, b := range bodies {
		q.next++
		mq.msgs = append(mq.msgs, &memMsg{id: "m" + strconv.FormatUint(q.next, 10), body: append([]byte(nil), b...), visibleAt: now})
	}
	close(mq.changed)
	mq.changed = make(chan struct{})
	var fns []func()
	for _, fn := range q.subs[name] {
		fns = append(fns, fn)
	}
	q.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
	return nil
}

func (q *MemQueue) Receive(ctx context.Context, name string, max int, wait time.Duration) ([]queue.Message, error) {
	var deadline <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	for {
		q.mu.Lock()
		mq := q.queues[name]
		if mq == nil {
			q.mu.Unlock()
			return nil, errs.NotFoundf("queue %s not found", name)
		}
		now := q.clock.Now()
		var out []queue.Message
		keep := mq.msgs[:0]
		dlq := q.queues[queue.DeadLetter(name)]
		for _, m := range mq.msgs {
			if len(out) >= max || m.visibleAt.After(now) {
				keep = append(keep, m)
				continue
			}
			if m.receives >= queue.DefaultMaxReceives && dlq != nil {
				// Received too often without an ack: off to the dead-letter queue.
				m.receives, m.receipt = 0, ""
				dlq.msgs = append(dlq.msgs, m)
				continue
			}
			keep = append(keep, m)
			q.next++
			m.receipt = "r" + strconv.FormatUint(q.next, 10)
			m.receives++
			m.visibleAt = now.Add(q.visibility)
			out = append(out, queue.Message{ID: m.id, Body: m.body, Receipt: m.receipt, Receives: m.receives})
		}
		for i := len(keep); i < len(mq.msgs); i++ {
			mq.msgs[i] = nil
		}
		mq.msgs = keep
		changed := mq.changed
		q.mu.Unlock()
		if len(out) > 0 || wait <= 0 {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			return nil, nil
		case <-changed:
		}
	}
}

func (q *MemQueue) Ack(ctx context.Context, name string, receipts ...string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	mq := q.queues[name]
	if mq == nil {
		return nil
	}
	for _, r := range receipts {
		for i, m := range mq.msgs {
			if m.receipt == r {
				mq.msgs = append(mq.msgs[:i], mq.msgs[i+1:]...)
				break
			}
		}
	}
	return nil
}

// Subscribe calls fn (which must not block) after every Send to name.
func (q *MemQueue) Subscribe(name string, fn func()) (cancel func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.next++
	id := q.next
	if q.subs[name] == nil {
		q.subs[name] = map[uint64]func(){}
	}
	q.subs[name][id] = fn
	return func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		delete(q.subs[name], id)
		if len(q.subs[name]) == 0 {
			delete(q.subs, name)
		}
	}
}

// Subscribers counts the subscriptions to name.
func (q *MemQueue) Subscribers(name string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.subs[name])
}

// Len counts the messages on name, visible or not.
func (q *MemQueue) Len(name string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if mq := q.queues[name]; mq != nil {
		return len(mq.msgs)
	}
	return 0
}

// NoPush hides a queue's Subscribe, so that hosts fall back to polling.
type NoPush struct{ queue.Queue }

// Drain receives and acknowledges every visible message on name and decodes them.
// Undecodable messages are returned as errors.
func Drain(ctx context.Context, q queue.Queue, name string) ([]agentproto.Envelope, error) {
	var out []agentproto.Envelope
	for {
		msgs, err := q.Receive(ctx, name, queue.MaxBatch, 0)
		if err != nil {
			return out, err
		}
		if len(msgs) == 0 {
			return out, nil
		}
		receipts := make([]string, len(msgs))
		for i, m := range msgs {
			receipts[i] = m.Receipt
			e, err := agentproto.Decode(m.Body)
			if err != nil {
				return out, err
			}
			out = append(out, e)
		}
		if err := q.Ack(ctx, name, receipts...); err != nil {
			return out, err
		}
	}
}

// Collector accumulates what agents send on a status queue, for tests to wait on.
type Collector struct {
	Q    queue.Queue
	Name string // default queue.Status

	mu   sync.Mutex
	seen []agentproto.Envelope
}

// Poll drains the queue into the collector and returns everything collected so far.
func (c *Collector) Poll(ctx context.Context) ([]agentproto.Envelope, error) {
	name := c.Name
	if name == "" {
		name = queue.Status
	}
	got, err := Drain(ctx, c.Q, name)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, got...)
	return append([]agentproto.Envelope(nil), c.seen...), err
}

// WaitFor polls until pred holds for what was collected, or the timeout passes; it
// returns the collected messages and whether pred held.
func (c *Collector) WaitFor(ctx context.Context, timeout time.Duration, pred func([]agentproto.Envelope) bool) ([]agentproto.Envelope, bool) {
	end := time.Now().Add(timeout)
	for {
		got, err := c.Poll(ctx)
		if err == nil && pred(got) {
			return got, true
		}
		if time.Now().After(end) || ctx.Err() != nil {
			return got, false
		}
		time.Sleep(2 * time.Millisecond) // a polling interval, not synchronisation
	}
}

// Count counts envelopes of a type (and, for events, a name).
func Count(envs []agentproto.Envelope, typ string) int {
	n := 0
	for _, e := range envs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// Results returns the results in envs, in order.
func Results(envs []agentproto.Envelope) []agentproto.Result {
	var out []agentproto.Result
	for _, e := range envs {
		if e.Type == agentproto.TypeResult {
			out = append(out, *e.Result)
		}
	}
	return out
}

// Command encodes a command envelope for node.
func Command(t testing.TB, node string, c agentproto.Command) []byte {
	t.Helper()
	b, err := agentproto.Encode(agentproto.Envelope{Type: agentproto.TypeCommand, Node: node, At: time.Now().UTC(), Command: &c})
	if err != nil {
		t.Fatalf("encode command: %v", err)
	}
	return b
}
