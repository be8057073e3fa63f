package boltq

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/straas/straas/shared/queue"
)

// The in-memory side of one queue. Bodies are on disk and here; visibility state and
// receive counts live here only, so after a restart every unacknowledged message is
// visible again with its count reset (at-least-once either way).

type state uint8

const (
	ready state = iota
	inflight
	gone
)

type message struct {
	seq      uint64
	body     []byte
	receives int
	state    state
}

// flight records one delivery; it is stale once the message was acked or redelivered.
type flight struct {
	m   *message
	gen int // m.receives at delivery
	at  time.Time
}

type q struct {
	name string
	dlq  string // "" for a dead-letter queue itself

	// Guarded by mu.
	mu       sync.Mutex
	msgs     map[uint64]*message // not yet acknowledged
	ready    fifo[*message]      // may hold stale entries (acked, moved): skipped on pop
	nready   int                 // live entries in ready
	flights  fifo[flight]        // ordered by at: the visibility timeout is one for all
	wake     chan struct{}       // closed when messages become ready; nil if nobody waits
	removed  bool
	disp     *Dispatcher
	inDisp   bool // queued in, or being served by, disp
	reapNext int  // index in the reaper's heap, -1 if not scheduled (guarded by the reaper's lock)
}

func newQ(name, dlq string) *q {
	return &q{name: name, dlq: dlq, msgs: map[uint64]*message{}, reapNext: -1}
}

// addLocked makes new messages ready and wakes whoever waits.
func (x *q) addLocked(ms []*message) {
	for _, m := range ms {
		x.msgs[m.seq] = m
		x.ready.push(m)
	}
	x.nready += len(ms)
	x.notifyLocked()
}

func (x *q) notifyLocked() {
	if x.nready == 0 {
		return
	}
	if x.wake != nil {
		close(x.wake)
		x.wake = nil
	}
	if x.disp != nil && !x.inDisp {
		x.inDisp = true
		x.disp.push(x)
	}
}

// waitLocked returns a channel closed when messages next become ready.
func (x *q) waitLocked() <-chan struct{} {
	if x.wake == nil {
		x.wake = make(chan struct{})
	}
	return x.wake
}

// expireLocked makes deliveries whose visibility timeout passed visible again. Messages
// received maxReceives times leave the queue instead and are returned, to be moved to
// the dead-letter queue by the caller (without holding mu). It also drops stale
// deliveries from the front, so flights.front() is the next real deadline.
func (x *q) expireLocked(now time.Time, maxReceives int, hasDLQ bool) (dead []*message) {
	readied := false
	for x.flights.len() > 0 {
		f := x.flights.front()
		live := f.m.state == inflight && f.m.receives == f.gen
		if live && f.at.After(now) {
			break
		}
		x.flights.pop()
		if !live {
			continue
		}
		if hasDLQ && f.m.receives >= maxReceives {
			f.m.state = gone
			delete(x.msgs, f.m.seq)
			dead = append(dead, f.m)
			continue
		}
		f.m.state = ready
		x.ready.push(f.m)
		x.nready++
		readied = true
	}
	if readied {
		x.notifyLocked()
	}
	return dead
}

// nextDeadline returns when the earliest live delivery times out.
func (x *q) nextDeadlineLocked() (time.Time, bool) {
	for x.flights.len() > 0 {
		f := x.flights.front()
		if f.m.state == inflight && f.m.receives == f.gen {
			return f.at, true
		}
		x.flights.pop()
	}
	return time.Time{}, false
}

// takeLocked delivers up to max ready messages.
func (x *q) takeLocked(max int, now time.Time, visibility time.Duration) []queue.Message {
	var out []queue.Message
	at := now.Add(visibility)
	for len(out) < max && x.ready.len() > 0 {
		m := x.ready.pop()
		if m.state != ready {
			continue
		}
		x.nready--
		m.state = inflight
		m.receives++
		x.flights.push(flight{m: m, gen: m.receives, at: at})
		out = append(out, queue.Message{
			ID:       messageID(m.seq),
			Body:     append([]byte(nil), m.body...), // the consumer may keep or change it
			Receipt:  receipt(m.seq, m.receives),
			Receives: m.receives,
		})
	}
	return out
}

// ackLocked forgets the message of a current receipt and returns its seq.
func (x *q) ackLocked(r string) (uint64, bool) {
	seq, gen, ok := parseReceipt(r)
	if !ok {
		return 0, false
	}
	m := x.msgs[seq]
	if m == nil || m.receives != gen || m.state == gone {
		return 0, false // stale, unknown or already acked: harmless
	}
	if m.state == ready {
		x.nready-- // timed out but not yet received again: the receipt is still the latest
	}
	m.state = gone
	m.body = nil // flights may point at it until they are popped
	delete(x.msgs, seq)
	return seq, true
}

func messageID(seq uint64) string { return strconv.FormatUint(seq, 10) }

func receipt(seq uint64, gen int) string {
	return strconv.FormatUint(seq, 10) + "." + strconv.Itoa(gen)
}

func parseReceipt(r string) (uint64, int, bool) {
	s, g, ok := strings.Cut(r, ".")
	if !ok {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(s, 10, 64)
	gen, err2 := strconv.Atoi(g)
	return seq, gen, err1 == nil && err2 == nil
}

// fifo is a slice-backed queue that reuses its space.
type fifo[T any] struct {
	buf  []T
	head int
}

func (f *fifo[T]) len() int { return len(f.buf) - f.head }
func (f *fifo[T]) push(v T) { f.buf = append(f.buf, v) }
func (f *fifo[T]) front() T { return f.buf[f.head] }
func (f *fifo[T]) pop() T {
	var zero T
	v := f.buf[f.head]
	f.buf[f.head] = zero
	f.head++
	switch {
	case f.head == len(f.buf):
		f.buf, f.head = f.buf[:0], 0
	case f.head > 1024 && f.head > len(f.buf)/2:
		n := copy(f.buf, f.buf[f.head:])
		clear(f.buf[n:])
		f.buf, f.head = f.buf[:n], 0
	}
	return v
}
