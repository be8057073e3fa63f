// Package boltq is the embedded adapter of the queue port: durable queues in one bbolt
// file, written through a group committer so that concurrent sends and acks share one
// fsync.
//
// What is durable: every message sent, until it is acknowledged (or its queue removed).
// What is not: visibility timeouts and receive counts, kept in memory; after a restart
// every unacknowledged message is visible again, counted from zero. That is
// at-least-once delivery, as the port promises.
//
// Receive with a wait parks on a per-queue channel that a send closes, so it returns the
// moment a message arrives. For in-process consumers of many queues (the mock fleet's
// agents) a Dispatcher serves any number of queues from a fixed pool of workers; see
// NewDispatcher.
//
// Names follow SQS's rules (1-80 letters, digits, '-' and '_'), and bodies its limit
// (256 KiB, not empty), so that what works here works on SQS.
package boltq

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/store/bolt/groupcommit"
)

var _ queue.Queue = (*Queue)(nil)

// Limits, SQS's.
const (
	MaxNameLen = 80
	MaxBody    = 256 << 10
)

var (
	bucketQueues = []byte("queues") // name -> "main" | "dlq"
	bucketMsgs   = []byte("msgs")   // name 0x00 seq(8, big endian) -> body
)

// Queue is the embedded queue service: all queues of one file. Its reaper goroutine
// (visibility timeouts) and group committer run from Open until Close.
type Queue struct {
	db          *bbolt.DB
	gc          *groupcommit.Committer
	clock       clock.Clock
	log         *slog.Logger
	visibility  time.Duration
	maxReceives int

	mu     sync.RWMutex
	queues map[string]*q
	// ensureMu: Remove holds it; Ensure, Send and dead-lettering share it, so that no
	// queue is removed (and made again) between a commit and its effect in memory.
	ensureMu sync.RWMutex

	reaper     reaper
	stop       chan struct{}
	reaperDone chan struct{}
	closed     atomic.Bool
	closeOnce  sync.Once
	closeErr   error
}

type config struct {
	clock       clock.Clock
	log         *slog.Logger
	visibility  time.Duration
	maxReceives int
	timeout     time.Duration
}

// Option configures Open.
type Option func(*config)

// WithVisibility sets the visibility timeout of every queue (default
// queue.DefaultVisibility).
func WithVisibility(d time.Duration) Option { return func(c *config) { c.visibility = d } }

// WithMaxReceives sets after how many receives an unacknowledged message moves to the
// dead-letter queue (default queue.DefaultMaxReceives).
func WithMaxReceives(n int) Option { return func(c *config) { c.maxReceives = n } }

// WithClock sets the clock of visibility timeouts and waits (default: the wall clock).
func WithClock(c clock.Clock) Option { return func(o *config) { o.clock = c } }

// WithLogger sets where failures with no caller to report to are logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithLockTimeout bounds the wait for another process's lock on the file (default 5s).
func WithLockTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// Open opens (creating if needed) the queue file at path and loads its messages.
func Open(path string, opts ...Option) (*Queue, error) {
	cfg := config{clock: clock.Real{}, log: slog.Default(), visibility: queue.DefaultVisibility,
		maxReceives: queue.DefaultMaxReceives, timeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.visibility <= 0 || cfg.maxReceives <= 0 {
		return nil, errs.E(errs.Invalid, "open queues", "visibility and max receives must be positive")
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:         cfg.timeout,
		NoFreelistSync:  true,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: 256 << 20,
		NoStatistics:    true,
	})
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, "open queues "+path, err)
	}
	s := &Queue{
		db: db, clock: cfg.clock, log: cfg.log, visibility: cfg.visibility, maxReceives: cfg.maxReceives,
		queues: map[string]*q{}, stop: make(chan struct{}), reaperDone: make(chan struct{}),
	}
	s.reaper.wake = make(chan struct{}, 1)
	if err := s.load(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open queues %s: %w", path, err)
	}
	s.gc = groupcommit.New(db)
	go s.runReaper()
	return s, nil
}

// load reads queues and messages into memory, dropping messages of queues that no
// longer exist.
func (s *Queue) load() error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		qb, err := tx.CreateBucketIfNotExists(bucketQueues)
		if err != nil {
			return err
		}
		mb, err := tx.CreateBucketIfNotExists(bucketMsgs)
		if err != nil {
			return err
		}
		err = qb.ForEach(func(k, v []byte) error {
			name := string(k)
			dlq := ""
			if string(v) == "main" {
				dlq = queue.DeadLetter(name)
			}
			s.queues[name] = newQ(name, dlq)
			return nil
		})
		if err != nil {
			return err
		}
		var orphans [][]byte
		c := mb.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			name, seq, ok := parseMsgKey(k)
			x := s.queues[name]
			if !ok || x == nil {
				orphans = append(orphans, bytes.Clone(k))
				continue
			}
			m := &message{seq: seq, body: bytes.Clone(v)}
			x.msgs[seq] = m
			x.ready.push(m)
			x.nready++
		}
		for _, k := range orphans {
			if err := mb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close stops the reaper, wakes every waiting Receive (which then fails as unavailable),
// commits what is pending and closes the file.
func (s *Queue) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		<-s.reaperDone
		s.gc.Close()
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

func msgKey(name string, seq uint64) []byte {
	k := make([]byte, len(name)+9)
	copy(k, name)
	binary.BigEndian.PutUint64(k[len(name)+1:], seq)
	return k
}

func parseMsgKey(k []byte) (string, uint64, bool) {
	i := bytes.IndexByte(k, 0)
	if i < 0 || len(k) != i+9 {
		return "", 0, false
	}
	return string(k[:i]), binary.BigEndian.Uint64(k[i+1:]), true
}

func validName(op, name string) error {
	if name == "" || len(name) > MaxNameLen {
		return errs.Invalidf("queue", "%s: queue name must have 1 to %d characters", op, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return errs.Invalidf("queue", "%s: queue name %q may hold only letters, digits, '-' and '_'", op, name)
		}
	}
	return nil
}

func (s *Queue) lookup(name string) *q {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.queues[name]
}

// get returns the named queue, or a not_found (or invalid, unavailable) error.
func (s *Queue) get(op, name string) (*q, error) {
	if s.closed.Load() {
		return nil, errs.E(errs.Unavailable, op, "queues closed")
	}
	if err := validName(op, name); err != nil {
		return nil, err
	}
	x := s.lookup(name)
	if x == nil {
		return nil, errs.NotFoundf("%s: queue %s does not exist", op, name)
	}
	return x, nil
}

func (s *Queue) do(ctx context.Context, op string, check, apply groupcommit.Func) error {
	if s.closed.Load() {
		return errs.E(errs.Unavailable, op, "queues closed")
	}
	if err := s.gc.Do(ctx, check, apply); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// queueExists is a check that name was not removed meanwhile.
func queueExists(op, name string) groupcommit.Func {
	return func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketQueues).Get([]byte(name)) == nil {
			return errs.NotFoundf("%s: queue %s does not exist", op, name)
		}
		return nil
	}
}

// Ensure creates the queue and its dead-letter queue if they do not exist.
func (s *Queue) Ensure(ctx context.Context, name string) error {
	const op = "ensure queue"
	if err := validName(op, name); err != nil {
		return err
	}
	dlq := queue.DeadLetter(name)
	if err := validName(op, dlq); err != nil {
		return err
	}
	if s.lookup(name) != nil && s.lookup(dlq) != nil {
		return nil
	}
	// Shared with other Ensures (idempotent, and so group-committed together) and
	// Sends; exclusive of Remove.
	s.ensureMu.RLock()
	defer s.ensureMu.RUnlock()
	err := s.do(ctx, op, nil, func(tx *bbolt.Tx) error {
		qb := tx.Bucket(bucketQueues)
		for _, kv := range [][2]string{{name, "main"}, {dlq, "dlq"}} {
			if qb.Get([]byte(kv[0])) == nil {
				if err := qb.Put([]byte(kv[0]), []byte(kv[1])); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queues[name] == nil {
		s.queues[name] = newQ(name, dlq)
	}
	if s.queues[dlq] == nil {
		s.queues[dlq] = newQ(dlq, "")
	}
	return nil
}

// Remove deletes the queue, its dead-letter queue and their messages. Waiting receivers
// return; removing a missing queue is not an error.
func (s *Queue) Remove(ctx context.Context, name string) error {
	const op = "remove queue"
	if err := validName(op, name); err != nil {
		return err
	}
	s.ensureMu.Lock()
	defer s.ensureMu.Unlock()
	names := []string{name}
	if x := s.lookup(name); x == nil || x.dlq != "" {
		names = append(names, queue.DeadLetter(name)) // a main queue takes its DLQ along
	}
	err := s.do(ctx, op, nil, func(tx *bbolt.Tx) error {
		qb, mb := tx.Bucket(bucketQueues), tx.Bucket(bucketMsgs)
		for _, n := range names {
			if err := qb.Delete([]byte(n)); err != nil {
				return err
			}
			prefix := append([]byte(n), 0)
			var keys [][]byte
			c := mb.Cursor()
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				keys = append(keys, bytes.Clone(k))
			}
			for _, k := range keys {
				if err := mb.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range names {
		s.mu.Lock()
		x := s.queues[n]
		delete(s.queues, n)
		s.mu.Unlock()
		if x == nil {
			continue
		}
		s.reaper.unschedule(x)
		x.mu.Lock()
		x.removed = true
		x.msgs, x.ready, x.flights, x.nready = map[uint64]*message{}, fifo[*message]{}, fifo[flight]{}, 0
		if x.wake != nil {
			close(x.wake)
			x.wake = nil
		}
		x.mu.Unlock()
	}
	return nil
}

// Send enqueues bodies durably; it returns once they are on disk.
func (s *Queue) Send(ctx context.Context, name string, bodies ...[]byte) error {
	const op = "send"
	x, err := s.get(op, name)
	if err != nil {
		return err
	}
	if len(bodies) == 0 {
		return nil
	}
	for i, b := range bodies {
		switch {
		case len(b) == 0:
			return errs.Invalidf(fmt.Sprintf("bodies[%d]", i), "%s to %s: empty message", op, name)
		case len(b) > MaxBody:
			return &errs.Error{Kind: errs.TooLarge, Op: op + " to " + name,
				Msg: fmt.Sprintf("message of %d bytes is over the limit of %d", len(b), MaxBody)}
		}
	}
	ms := make([]*message, len(bodies))
	for i, b := range bodies {
		ms[i] = &message{body: bytes.Clone(b)}
	}
	s.ensureMu.RLock()
	defer s.ensureMu.RUnlock()
	err = s.do(ctx, op+" to "+name, queueExists(op, name), func(tx *bbolt.Tx) error {
		mb := tx.Bucket(bucketMsgs)
		for _, m := range ms {
			seq, err := mb.NextSequence() // rolled back with the transaction, if it is
			if err != nil {
				return err
			}
			m.seq = seq
			if err := mb.Put(msgKey(name, seq), m.body); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	x.mu.Lock()
	if !x.removed { // else Remove, committed after us, deleted them from disk too
		x.addLocked(ms)
	}
	x.mu.Unlock()
	return nil
}

// Receive returns up to max (at most queue.MaxBatch) messages, waiting up to wait for
// the first. It returns no messages and no error when none arrived in time.
func (s *Queue) Receive(ctx context.Context, name string, max int, wait time.Duration) ([]queue.Message, error) {
	const op = "receive"
	x, err := s.get(op, name)
	if err != nil {
		return nil, err
	}
	if max <= 0 {
		return nil, errs.Invalidf("max", "%s from %s: max must be positive", op, name)
	}
	max = min(max, queue.MaxBatch)
	var deadline time.Time
	for {
		now := s.clock.Now()
		if deadline.IsZero() {
			deadline = now.Add(wait)
		}
		msgs, wake, err := s.take(x, max, now)
		if err != nil || len(msgs) > 0 {
			return msgs, err
		}
		left := deadline.Sub(now)
		if left <= 0 {
			return []queue.Message{}, nil
		}
		select {
		case <-wake:
		case <-s.clock.After(left):
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.stop:
			return nil, errs.E(errs.Unavailable, op, "queues closed")
		}
	}
}

// take delivers what is ready in x, or returns a channel to wait on.
func (s *Queue) take(x *q, max int, now time.Time) ([]queue.Message, <-chan struct{}, error) {
	dlq := s.lookup(x.dlq)
	x.mu.Lock()
	if x.removed {
		x.mu.Unlock()
		return nil, nil, errs.NotFoundf("receive: queue %s was removed", x.name)
	}
	dead := x.expireLocked(now, s.maxReceives, dlq != nil)
	msgs := x.takeLocked(max, now, s.visibility)
	var wake <-chan struct{}
	if len(msgs) == 0 {
		wake = x.waitLocked()
	}
	x.mu.Unlock()
	if len(msgs) > 0 {
		s.reaper.schedule(x, now.Add(s.visibility))
	}
	s.moveDead(x, dlq, dead)
	return msgs, wake, nil
}

// expire is the reaper's visit to a queue whose earliest delivery timed out.
func (s *Queue) expire(x *q, now time.Time) {
	dlq := s.lookup(x.dlq)
	x.mu.Lock()
	if x.removed {
		x.mu.Unlock()
		return
	}
	dead := x.expireLocked(now, s.maxReceives, dlq != nil)
	next, ok := x.nextDeadlineLocked()
	x.mu.Unlock()
	if ok {
		s.reaper.schedule(x, next)
	}
	s.moveDead(x, dlq, dead)
}

// moveDead moves messages received too often from x to its dead-letter queue, durably
// first. If that fails they return to x, to be tried again after their next delivery.
func (s *Queue) moveDead(x, dlq *q, dead []*message) {
	if len(dead) == 0 {
		return
	}
	s.ensureMu.RLock()
	defer s.ensureMu.RUnlock()
	moved := make([]*message, len(dead))
	for i, m := range dead {
		moved[i] = &message{body: m.body}
	}
	err := s.do(context.Background(), "dead-letter from "+x.name, queueExists("dead-letter", dlq.name), func(tx *bbolt.Tx) error {
		mb := tx.Bucket(bucketMsgs)
		for i, m := range dead {
			if err := mb.Delete(msgKey(x.name, m.seq)); err != nil {
				return err
			}
			seq, err := mb.NextSequence()
			if err != nil {
				return err
			}
			moved[i].seq = seq
			if err := mb.Put(msgKey(dlq.name, seq), m.body); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, groupcommit.ErrClosed) {
			s.log.Error("queue: moving messages to the dead-letter queue failed; they stay", "queue", x.name, "count", len(dead), "err", err)
		}
		x.mu.Lock()
		if !x.removed {
			for _, m := range dead {
				m.state = ready
			}
			x.addLocked(dead)
		}
		x.mu.Unlock()
		return
	}
	dlq.mu.Lock()
	if !dlq.removed {
		dlq.addLocked(moved)
	}
	dlq.mu.Unlock()
}

// Ack deletes received messages. Stale, unknown and repeated receipts are ignored.
func (s *Queue) Ack(ctx context.Context, name string, receipts ...string) error {
	const op = "ack"
	x, err := s.get(op, name)
	if err != nil {
		return err
	}
	var keys [][]byte
	x.mu.Lock()
	for _, r := range receipts {
		if seq, ok := x.ackLocked(r); ok {
			keys = append(keys, msgKey(name, seq))
		}
	}
	x.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	// Forgotten in memory first: if the delete fails, the message is back after a
	// restart, which at-least-once allows.
	return s.do(ctx, op+" on "+name, nil, func(tx *bbolt.Tx) error {
		mb := tx.Bucket(bucketMsgs)
		for _, k := range keys {
			if err := mb.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Stats are counters of the group committer: Requests (sends, acks, ...) committed in
// Batches transactions.
type Stats = groupcommit.Stats

// Stats returns the committer's counters.
func (s *Queue) Stats() Stats { return s.gc.Stats() }
