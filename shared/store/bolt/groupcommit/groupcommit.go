// Package groupcommit batches write transactions on a bbolt database: many goroutines
// submit work concurrently, one committer goroutine applies everything pending in one
// bbolt transaction and fsyncs once, then answers each submitter. An idle committer
// starts on the first submission at once, so a lone writer pays one fsync and no delay.
//
// Each submission is a pair of functions run inside the shared transaction. check must
// not modify anything: when it fails, only that submission fails. apply modifies; when it
// fails the whole transaction is rolled back and the batch is run again without it, so
// every submission is atomic on its own. Both may therefore run more than once and must
// depend only on the transaction's state.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"go.etcd.io/bbolt"

	"github.com/straas/straas/shared/errs"
)

// ErrClosed is wrapped by the error of a submission made after Close.
var ErrClosed = errors.New("committer closed")

// DefaultMaxBatch bounds the submissions applied in one transaction.
const DefaultMaxBatch = 4096

// Func is one half of a submission.
type Func func(tx *bbolt.Tx) error

// Committer owns the single writer of a bbolt database. Its goroutine runs from New
// until Close.
type Committer struct {
	db       *bbolt.DB
	maxBatch int

	mu      sync.Mutex
	cond    *sync.Cond
	pending []*request
	closed  bool
	done    chan struct{}

	batches  atomic.Uint64
	requests atomic.Uint64
}

type request struct {
	check, apply Func
	err          error
	skipped      bool
	done         chan error // buffered: the committer never blocks on an answer
}

// Option configures a Committer.
type Option func(*Committer)

// WithMaxBatch bounds how many submissions share one transaction.
func WithMaxBatch(n int) Option {
	return func(c *Committer) {
		if n > 0 {
			c.maxBatch = n
		}
	}
}

// New starts a committer on db. The caller keeps ownership of db and closes it after
// Close.
func New(db *bbolt.DB, opts ...Option) *Committer {
	c := &Committer{db: db, maxBatch: DefaultMaxBatch, done: make(chan struct{})}
	for _, o := range opts {
		o(c)
	}
	c.cond = sync.NewCond(&c.mu)
	go c.run()
	return c
}

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan error, 1)} }}

// Do runs check then apply in a shared write transaction and returns once it is durable
// (or failed). Either function may be nil. If ctx ends first Do returns ctx's error, and
// the work may still be committed.
func (c *Committer) Do(ctx context.Context, check, apply Func) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := requestPool.Get().(*request)
	r.check, r.apply = check, apply
	if err := c.enqueue(r); err != nil {
		r.check, r.apply = nil, nil
		requestPool.Put(r)
		return err
	}
	select {
	case err := <-r.done:
		r.check, r.apply, r.err = nil, nil, nil
		requestPool.Put(r)
		return err
	case <-ctx.Done():
		return ctx.Err() // r is abandoned to the committer, which answers into its buffer
	}
}

// Submit queues work without waiting for it; its outcome is dropped. Use it for
// housekeeping (sweeps) that rides along with the next batch.
func (c *Committer) Submit(check, apply Func) error {
	return c.enqueue(&request{check: check, apply: apply, done: make(chan error, 1)})
}

func (c *Committer) enqueue(r *request) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errs.Wrap(errs.Unavailable, "commit", ErrClosed)
	}
	c.pending = append(c.pending, r)
	c.cond.Signal()
	c.mu.Unlock()
	return nil
}

// Close commits what is pending, stops the goroutine and refuses further submissions.
func (c *Committer) Close() {
	c.mu.Lock()
	c.closed = true
	c.cond.Broadcast()
	c.mu.Unlock()
	<-c.done
}

// Stats counts what the committer did: Requests submissions in Batches transactions.
type Stats struct {
	Batches  uint64
	Requests uint64
}

// Stats returns the counters so far.
func (c *Committer) Stats() Stats {
	return Stats{Batches: c.batches.Load(), Requests: c.requests.Load()}
}

func (c *Committer) run() {
	defer close(c.done)
	var spare []*request
	last := 0
	for {
		if last > 1 {
			runtime.Gosched()
		}
		c.mu.Lock()
		for len(c.pending) == 0 && !c.closed {
			c.cond.Wait()
		}
		if len(c.pending) == 0 {
			c.mu.Unlock()
			return
		}
		var batch []*request
		if len(c.pending) <= c.maxBatch {
			batch, c.pending = c.pending, spare[:0]
		} else {
			batch = append(spare[:0], c.pending[:c.maxBatch]...)
			c.pending = append([]*request(nil), c.pending[c.maxBatch:]...)
		}
		c.mu.Unlock()

		c.commit(batch)
		last = len(batch)
		clear(batch)
		spare = batch[:0]
	}
}

// commit applies batch in one transaction and answers every request.
func (c *Committer) commit(batch []*request) {
	c.requests.Add(uint64(len(batch)))
	for len(batch) > 0 {
		tx, err := c.db.Begin(true)
		if err != nil {
			for _, r := range batch {
				r.done <- fmt.Errorf("commit: begin: %w", err)
			}
			return
		}
		bad, applied := -1, 0
		for i, r := range batch {
			r.err, r.skipped = nil, false
			if r.check != nil {
				if err := safely(r.check, tx); err != nil {
					r.err, r.skipped = err, true
					continue
				}
			}
			if r.apply != nil {
				if err := safely(r.apply, tx); err != nil {
					r.err, bad = err, i
					break
				}
			}
			applied++
		}
		if bad >= 0 {
			// Partial changes of the failed request are in tx: drop it all and run the
			// others again without it.
			_ = tx.Rollback()
			batch[bad].done <- batch[bad].err
			batch = append(batch[:bad], batch[bad+1:]...)
			continue
		}
		if applied == 0 {
			_ = tx.Rollback() // nothing to make durable
		} else {
			err = tx.Commit()
			if err != nil {
				err = fmt.Errorf("commit: %w", err)
			}
			c.batches.Add(1)
		}
		for _, r := range batch {
			if r.skipped {
				r.done <- r.err
			} else {
				r.done <- err
			}
		}
		return
	}
}

// safely runs fn, turning a panic into an error so that one bad submission cannot take
// the committer (and every other writer) down.
func safely(fn Func, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("commit: panic in transaction: %v", p)
		}
	}()
	return fn(tx)
}
