package boltq

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
)

// Handler receives messages of one queue and acknowledges (Queue.Ack) those it handled;
// the others come back after the visibility timeout, as with Receive.
type Handler func(ctx context.Context, name string, msgs []queue.Message)

// DispatchOptions configures a Dispatcher.
type DispatchOptions struct {
	Workers int // goroutines calling the handler; default 4
	Max     int // messages per call, at most queue.MaxBatch (the default)
}

// Dispatcher is the push-style consumer for in-process users of many queues: instead of
// one goroutine blocked in Receive per queue (10,000 mock agents, 10,000 goroutines), the
// queues added to a Dispatcher are served by a fixed pool of workers. A queue with ready
// messages is put in line once; a worker takes it, receives up to Max messages and calls
// the handler; the queue goes back in line only if more are ready. So one queue is
// handled by one worker at a time, in order, and an idle queue costs nothing.
//
//	d := q.NewDispatcher(func(ctx context.Context, name string, msgs []queue.Message) {
//		for _, m := range msgs { handle(m) }
//		q.Ack(ctx, name, receipts(msgs)...)
//	}, boltq.DispatchOptions{Workers: 8})
//	d.Add(queue.NodeQueue(id))       // as nodes appear
//	go d.Run(ctx)                     // owned by the caller's Run; stop it before Close
type Dispatcher struct {
	s       *Queue
	h       Handler
	workers int
	max     int

	mu      sync.Mutex
	line    fifo[*q]
	signal  chan struct{} // cap 1: something is in line
	running atomic.Bool
}

// NewDispatcher returns a dispatcher calling h; it serves nothing until Add and Run.
func (s *Queue) NewDispatcher(h Handler, opts DispatchOptions) *Dispatcher {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.Max <= 0 || opts.Max > queue.MaxBatch {
		opts.Max = queue.MaxBatch
	}
	return &Dispatcher{s: s, h: h, workers: opts.Workers, max: opts.Max, signal: make(chan struct{}, 1)}
}

// Add subscribes queues. A queue belongs to at most one dispatcher (errs.Conflict
// otherwise); a missing queue is errs.NotFound, and the queues before it stay added.
func (d *Dispatcher) Add(names ...string) error {
	for _, name := range names {
		x, err := d.s.get("dispatch", name)
		if err != nil {
			return err
		}
		x.mu.Lock()
		switch {
		case x.disp == d:
		case x.disp != nil:
			x.mu.Unlock()
			return errs.Conflictf("dispatch: queue %s belongs to another dispatcher", name)
		default:
			x.disp = d
			if x.nready > 0 {
				x.inDisp = true
				d.push(x)
			}
		}
		x.mu.Unlock()
	}
	return nil
}

// Drop unsubscribes queues; a call of the handler under way finishes.
func (d *Dispatcher) Drop(names ...string) {
	for _, name := range names {
		x := d.s.lookup(name)
		if x == nil {
			continue
		}
		x.mu.Lock()
		if x.disp == d {
			x.disp = nil
		}
		x.mu.Unlock()
	}
}

// push puts x in line (called with x.mu held).
func (d *Dispatcher) push(x *q) {
	d.mu.Lock()
	d.line.push(x)
	d.mu.Unlock()
	d.wakeOne()
}

func (d *Dispatcher) wakeOne() {
	select {
	case d.signal <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) pop() *q {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.line.len() == 0 {
		return nil
	}
	x := d.line.pop()
	if d.line.len() > 0 {
		d.wakeOne() // pass the baton: another worker takes the next
	}
	return x
}

// Run serves the added queues with the worker pool until ctx ends. One Run at a time.
func (d *Dispatcher) Run(ctx context.Context) error {
	if d.running.Swap(true) {
		return errs.Conflictf("dispatch: already running")
	}
	defer d.running.Store(false)
	var wg sync.WaitGroup
	for i := 0; i < d.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.work(ctx)
		}()
	}
	wg.Wait()
	d.wakeOne() // a later Run finds the line as it was
	return nil
}

func (d *Dispatcher) work(ctx context.Context) {
	for {
		x := d.pop()
		if x == nil {
			select {
			case <-d.signal:
				continue
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			d.push(x) // not served: back in line for the next Run
			return
		}
		d.serve(ctx, x)
	}
}

func (d *Dispatcher) serve(ctx context.Context, x *q) {
	s := d.s
	now := s.clock.Now()
	dlq := s.lookup(x.dlq)
	x.mu.Lock()
	if x.disp != d || x.removed {
		if x.disp == nil || x.removed {
			x.inDisp = false
		} // else it moved to another dispatcher, which put it in its own line
		x.mu.Unlock()
		return
	}
	dead := x.expireLocked(now, s.maxReceives, dlq != nil)
	msgs := x.takeLocked(d.max, now, s.visibility)
	x.mu.Unlock()
	if len(msgs) > 0 {
		s.reaper.schedule(x, now.Add(s.visibility))
	}
	s.moveDead(x, dlq, dead)
	if len(msgs) > 0 {
		d.call(ctx, x.name, msgs)
	}
	x.mu.Lock()
	if x.disp == d && !x.removed && x.nready > 0 {
		d.push(x) // more are ready: back in line, behind the others
	} else if x.disp == d || x.disp == nil || x.removed {
		x.inDisp = false
	}
	x.mu.Unlock()
}

func (d *Dispatcher) call(ctx context.Context, name string, msgs []queue.Message) {
	defer func() {
		if p := recover(); p != nil {
			d.s.log.Error("queue dispatcher: handler panicked; the messages come back after the visibility timeout",
				"queue", name, "panic", p)
		}
	}()
	d.h(ctx, name, msgs)
}
