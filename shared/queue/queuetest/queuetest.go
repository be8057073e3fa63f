// Package queuetest is the conformance suite of the queue port: every adapter (boltq,
// sqs) runs Run against itself.
//
// The suite is adapter-neutral: every subtest uses queue names of its own (random, valid
// SQS names), never sleeps, and derives every deadline from Options, so a backend with
// second-granular visibility timeouts (SQS) runs the same tests as the embedded one. A
// message is expected "never" by receiving for a while and getting nothing; it is
// expected "eventually" by receiving until it shows or a deadline passes.
package queuetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
)

// Options describes how the factory's queues are configured.
type Options struct {
	// Visibility is the visibility timeout of the factory's queues. Required; keep it
	// short (the embedded adapter: 100-300ms; SQS: a second or two).
	Visibility time.Duration
	// MaxReceives is how many receives move a message to the dead-letter queue;
	// 0 means queue.DefaultMaxReceives.
	MaxReceives int
	// Poll is the wait of one Receive call while the suite waits for a message; 0 means
	// one second (SQS long polls in whole seconds).
	Poll time.Duration
	// Settle bounds effects a backend applies asynchronously, such as a removed queue
	// refusing sends; 0 means ten seconds.
	Settle time.Duration
}

func (o Options) withDefaults(t *testing.T) Options {
	if o.Visibility <= 0 {
		t.Fatal("queuetest: Options.Visibility is required")
	}
	if o.MaxReceives == 0 {
		o.MaxReceives = queue.DefaultMaxReceives
	}
	if o.Poll == 0 {
		o.Poll = time.Second
	}
	if o.Settle == 0 {
		o.Settle = 10 * time.Second
	}
	return o
}

// redelivery bounds how long a message may take to come back after its visibility
// timeout: the timeout itself plus generous slack for timers and long polls.
func (o Options) redelivery() time.Duration { return 3*o.Visibility + o.Poll + o.Settle }

// Run runs the whole contract against queues made by newQueue, called once per subtest;
// it should register any cleanup with t.Cleanup.
func Run(t *testing.T, newQueue func(t *testing.T) queue.Queue, opts Options) {
	opts = opts.withDefaults(t)
	tests := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"EnsureIdempotent", testEnsure},
		{"SendMissing", testSendMissing},
		{"SendReceiveAll", testSendReceiveAll},
		{"ReceiveMax", testReceiveMax},
		{"WaitWakesOnSend", testWaitWakes},
		{"WaitTimesOut", testWaitTimesOut},
		{"Visibility", testVisibility},
		{"StaleReceipt", testStaleReceipt},
		{"DeadLetter", testDeadLetter},
		{"Remove", testRemove},
		{"LargeBatch", testLargeBatch},
		{"Isolation", testIsolation},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			tc.fn(t, &suite{q: newQueue(t), o: opts, ctx: ctx})
		})
	}
}

type suite struct {
	q   queue.Queue
	o   Options
	ctx context.Context
}

// name returns a fresh, valid SQS queue name.
func (s *suite) name(t *testing.T) string {
	t.Helper()
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "qt-" + hex.EncodeToString(b[:])
}

// ensure creates a fresh queue and removes it when the test ends.
func (s *suite) ensure(t *testing.T) string {
	t.Helper()
	n := s.name(t)
	if err := s.q.Ensure(s.ctx, n); err != nil {
		t.Fatalf("Ensure %s: %v", n, err)
	}
	t.Cleanup(func() { _ = s.q.Remove(context.Background(), n) })
	return n
}

func (s *suite) send(t *testing.T, name string, bodies ...string) {
	t.Helper()
	bs := make([][]byte, len(bodies))
	for i, b := range bodies {
		bs[i] = []byte(b)
	}
	if err := s.q.Send(s.ctx, name, bs...); err != nil {
		t.Fatalf("Send %s: %v", name, err)
	}
}

func (s *suite) ack(t *testing.T, name string, msgs ...queue.Message) {
	t.Helper()
	rs := make([]string, len(msgs))
	for i, m := range msgs {
		rs[i] = m.Receipt
	}
	if err := s.q.Ack(s.ctx, name, rs...); err != nil {
		t.Fatalf("Ack %s: %v", name, err)
	}
}

func (s *suite) receive(t *testing.T, name string, max int, wait time.Duration) []queue.Message {
	t.Helper()
	msgs, err := s.q.Receive(s.ctx, name, max, wait)
	if err != nil {
		t.Fatalf("Receive %s: %v", name, err)
	}
	if len(msgs) > max {
		t.Fatalf("Receive %s max %d: got %d messages", name, max, len(msgs))
	}
	for _, m := range msgs {
		if m.ID == "" || m.Receipt == "" || m.Receives < 1 {
			t.Fatalf("Receive %s: malformed message %+v", name, m)
		}
	}
	return msgs
}

// receiveN receives until n distinct messages arrived (not acking them), or fails.
func (s *suite) receiveN(t *testing.T, name string, n int, within time.Duration) []queue.Message {
	t.Helper()
	deadline := time.Now().Add(within)
	var out []queue.Message
	seen := map[string]bool{}
	for len(out) < n {
		if time.Now().After(deadline) {
			t.Fatalf("Receive %s: got %d messages in %v, want %d", name, len(out), within, n)
		}
		for _, m := range s.receive(t, name, min(n-len(out), queue.MaxBatch), s.o.Poll) {
			if !seen[m.ID] {
				seen[m.ID] = true
				out = append(out, m)
			}
		}
	}
	return out
}

// receiveNone receives for d and fails on any message.
func (s *suite) receiveNone(t *testing.T, name string, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for {
		left := time.Until(end)
		if left <= 0 {
			return
		}
		if msgs := s.receive(t, name, queue.MaxBatch, min(left, s.o.Poll)); len(msgs) > 0 {
			t.Fatalf("Receive %s: got %q, want nothing", name, bodies(msgs))
		}
	}
}

func bodies(msgs []queue.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m.Body)
	}
	return out
}

func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(`{"%s":%d}`, prefix, i)
	}
	return out
}

func sameSet(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

// --- subtests -------------------------------------------------------------------------

func testEnsure(t *testing.T, s *suite) {
	n := s.ensure(t)
	if err := s.q.Ensure(s.ctx, n); err != nil {
		t.Fatalf("second Ensure: %v", err)
	}
	s.send(t, n, "kept")
	if err := s.q.Ensure(s.ctx, n); err != nil {
		t.Fatalf("Ensure of a queue holding a message: %v", err)
	}
	msgs := s.receiveN(t, n, 1, s.o.redelivery())
	if string(msgs[0].Body) != "kept" {
		t.Fatalf("got %q, want the message sent before the second Ensure", msgs[0].Body)
	}
	s.ack(t, n, msgs...)
	// Ensure made the dead-letter queue too.
	if _, err := s.q.Receive(s.ctx, queue.DeadLetter(n), 1, 0); err != nil {
		t.Fatalf("Receive from the dead-letter queue: %v", err)
	}
}

func testSendMissing(t *testing.T, s *suite) {
	n := s.name(t)
	err := s.q.Send(s.ctx, n, []byte("x"))
	if !errs.Is(err, errs.NotFound) {
		t.Fatalf("Send to a missing queue: got %v (kind %v), want not_found", err, errs.KindOf(err))
	}
}

func testSendReceiveAll(t *testing.T, s *suite) {
	n := s.ensure(t)
	want := numbered("m", 30)
	for i := 0; i < len(want); i += 10 {
		s.send(t, n, want[i:i+10]...)
	}
	msgs := s.receiveN(t, n, len(want), s.o.redelivery())
	for _, m := range msgs {
		if m.Receives != 1 {
			t.Errorf("%s: Receives %d on first delivery, want 1", m.Body, m.Receives)
		}
	}
	if got := bodies(msgs); !sameSet(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := 0; i < len(msgs); i += queue.MaxBatch {
		s.ack(t, n, msgs[i:min(i+queue.MaxBatch, len(msgs))]...)
	}
	s.receiveNone(t, n, s.o.Visibility+s.o.Visibility/2)
}

func testReceiveMax(t *testing.T, s *suite) {
	n := s.ensure(t)
	s.send(t, n, numbered("m", 7)...)
	got := s.receive(t, n, 3, s.o.Poll)
	if len(got) == 0 {
		got = s.receiveN(t, n, 1, s.o.redelivery())
	}
	if len(got) > 3 {
		t.Fatalf("max 3: got %d", len(got))
	}
	one := s.receive(t, n, 1, s.o.Poll)
	if len(one) > 1 {
		t.Fatalf("max 1: got %d", len(one))
	}
	got = append(got, one...)
	got = append(got, s.receiveN(t, n, 7-len(got), s.o.redelivery())...)
	if b := bodies(got); !sameSet(b, numbered("m", 7)) {
		t.Fatalf("got %q", b)
	}
	s.ack(t, n, got...)
}

func testWaitWakes(t *testing.T, s *suite) {
	n := s.ensure(t)
	const wait = 10 * time.Second
	type result struct {
		msgs []queue.Message
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		msgs, err := s.q.Receive(s.ctx, n, 1, wait)
		done <- result{msgs, err, time.Since(start)}
	}()
	s.send(t, n, "wake")
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.msgs) != 1 || string(r.msgs[0].Body) != "wake" {
		t.Fatalf("got %q, want [wake]", bodies(r.msgs))
	}
	if r.took > wait/2 {
		t.Fatalf("Receive returned after %v: it did not wake when the message arrived", r.took)
	}
	s.ack(t, n, r.msgs...)
}

func testWaitTimesOut(t *testing.T, s *suite) {
	n := s.ensure(t)
	tests := []struct {
		wait time.Duration
	}{{0}, {time.Second}}
	for _, tc := range tests {
		start := time.Now()
		msgs, err := s.q.Receive(s.ctx, n, 5, tc.wait)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("wait %v: %v", tc.wait, err)
		}
		if len(msgs) != 0 {
			t.Fatalf("wait %v: got %q, want no message", tc.wait, bodies(msgs))
		}
		if took < tc.wait-50*time.Millisecond {
			t.Fatalf("wait %v: returned after %v", tc.wait, took)
		}
		if took > tc.wait+5*time.Second {
			t.Fatalf("wait %v: returned only after %v", tc.wait, took)
		}
	}
	// A cancelled context ends a long wait early.
	ctx, cancel := context.WithTimeout(s.ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	msgs, _ := s.q.Receive(ctx, n, 1, 20*time.Second)
	if took := time.Since(start); took > 5*time.Second || len(msgs) != 0 {
		t.Fatalf("cancelled Receive: got %d messages after %v", len(msgs), took)
	}
}

func testVisibility(t *testing.T, s *suite) {
	n := s.ensure(t)
	s.send(t, n, "v")
	first := s.receiveN(t, n, 1, s.o.redelivery())[0]
	got := time.Now()
	if first.Receives != 1 {
		t.Fatalf("first delivery: Receives %d, want 1", first.Receives)
	}
	// Un-acked, it stays invisible for the visibility timeout...
	s.receiveNone(t, n, s.o.Visibility/2)
	// ...then comes back, counted.
	again := s.receiveN(t, n, 1, s.o.redelivery())[0]
	if since := time.Since(got); since < s.o.Visibility*8/10 {
		t.Fatalf("redelivered after %v, before the visibility timeout %v", since, s.o.Visibility)
	}
	if again.ID != first.ID || string(again.Body) != "v" {
		t.Fatalf("redelivered %+v, want message %s", again, first.ID)
	}
	if again.Receives != 2 {
		t.Fatalf("redelivery: Receives %d, want 2", again.Receives)
	}
	if again.Receipt == first.Receipt {
		t.Fatal("redelivery reused the receipt")
	}
	s.ack(t, n, again)
	s.receiveNone(t, n, 2*s.o.Visibility)
}

func testStaleReceipt(t *testing.T, s *suite) {
	n := s.ensure(t)
	s.send(t, n, "s")
	first := s.receiveN(t, n, 1, s.o.redelivery())[0]
	second := s.receiveN(t, n, 1, s.o.redelivery())[0] // after the visibility timeout
	if second.ID != first.ID {
		t.Fatalf("got %s, want the redelivered %s", second.ID, first.ID)
	}
	s.ack(t, n, first)  // stale: harmless
	s.ack(t, n, second) // current
	s.ack(t, n, second) // again: harmless
	s.ack(t, n, first)  // stale, of a deleted message: harmless
	if err := s.q.Ack(s.ctx, n); err != nil {
		t.Fatalf("Ack of nothing: %v", err)
	}
	s.receiveNone(t, n, 2*s.o.Visibility)
}

func testDeadLetter(t *testing.T, s *suite) {
	n := s.ensure(t)
	s.send(t, n, "poison")
	var id string
	for i := 1; i <= s.o.MaxReceives; i++ {
		m := s.receiveN(t, n, 1, s.o.redelivery())[0]
		if m.Receives != i || string(m.Body) != "poison" || (id != "" && m.ID != id) {
			t.Fatalf("receive %d: got %+v", i, m)
		}
		id = m.ID
	}
	// Received MaxReceives times without an ack: it leaves the queue for its dead-letter
	// queue (SQS moves it on the next receive attempt, which receiveNone makes).
	s.receiveNone(t, n, 2*s.o.Visibility+s.o.Poll)
	dl := s.receiveN(t, queue.DeadLetter(n), 1, s.o.redelivery())
	if string(dl[0].Body) != "poison" {
		t.Fatalf("dead-letter queue: got %q", dl[0].Body)
	}
	s.ack(t, queue.DeadLetter(n), dl...)
	s.receiveNone(t, queue.DeadLetter(n), 2*s.o.Visibility)
	// An acked message never goes there.
	s.send(t, n, "good")
	s.ack(t, n, s.receiveN(t, n, 1, s.o.redelivery())...)
	s.receiveNone(t, queue.DeadLetter(n), 2*s.o.Visibility)
}

func testRemove(t *testing.T, s *suite) {
	n := s.name(t)
	if err := s.q.Ensure(s.ctx, n); err != nil {
		t.Fatal(err)
	}
	s.send(t, n, "a", "b", "c")
	if err := s.q.Remove(s.ctx, n); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	deadline := time.Now().Add(s.o.Settle)
	for {
		err := s.q.Send(s.ctx, n, []byte("late"))
		if errs.Is(err, errs.NotFound) {
			break
		}
		if err != nil {
			t.Fatalf("Send after Remove: got %v, want not_found", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Send after Remove still succeeds after %v", s.o.Settle)
		}
		select {
		case <-s.ctx.Done():
			t.Fatal(s.ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := s.q.Remove(s.ctx, n); err != nil {
		t.Fatalf("Remove of a removed queue: %v", err)
	}
	if err := s.q.Remove(s.ctx, s.name(t)); err != nil {
		t.Fatalf("Remove of a queue that never was: %v", err)
	}
}

func testLargeBatch(t *testing.T, s *suite) {
	n := s.ensure(t)
	want := numbered("b", 3*queue.MaxBatch+5)
	s.send(t, n, want...)
	msgs := s.receiveN(t, n, len(want), s.o.redelivery())
	if got := bodies(msgs); !sameSet(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	s.ack(t, n, msgs...) // one Ack call over MaxBatch receipts
	s.receiveNone(t, n, s.o.Visibility+s.o.Visibility/2)
}

func testIsolation(t *testing.T, s *suite) {
	a, b := s.ensure(t), s.ensure(t)
	s.send(t, a, "for-a")
	s.receiveNone(t, b, s.o.Poll)
	msgs := s.receiveN(t, a, 1, s.o.redelivery())
	if string(msgs[0].Body) != "for-a" {
		t.Fatalf("got %q", msgs[0].Body)
	}
	// A receipt of queue a acked on queue b does nothing there, and no error.
	_ = s.q.Ack(s.ctx, b, msgs[0].Receipt)
	s.ack(t, a, msgs...)
}

func testConcurrent(t *testing.T, s *suite) {
	n := s.ensure(t)
	const producers, each, consumers = 4, 50, 4
	var want []string
	for p := 0; p < producers; p++ {
		want = append(want, numbered(fmt.Sprintf("p%d", p), each)...)
	}
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Minute)
	defer cancel()
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		wg   sync.WaitGroup
		errc = make(chan error, producers+consumers)
	)
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, b := range numbered(fmt.Sprintf("p%d", p), each) {
				if err := s.q.Send(ctx, n, []byte(b)); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for c := 0; c < consumers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				done := len(seen) == len(want)
				mu.Unlock()
				if done || ctx.Err() != nil {
					return
				}
				msgs, err := s.q.Receive(ctx, n, queue.MaxBatch, s.o.Poll)
				if err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
				var rs []string
				mu.Lock()
				for _, m := range msgs {
					seen[string(m.Body)] = true // at least once: duplicates fold
					rs = append(rs, m.Receipt)
				}
				mu.Unlock()
				if err := s.q.Ack(ctx, n, rs...); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	var got []string
	for b := range seen {
		got = append(got, b)
	}
	if !sameSet(got, want) {
		t.Fatalf("got %d distinct messages, want %d", len(got), len(want))
	}
}
