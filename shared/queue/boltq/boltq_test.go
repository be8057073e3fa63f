package boltq_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"

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

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func mustEnsure(t testing.TB, q *boltq.Queue, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := q.Ensure(ctx(t), n); err != nil {
			t.Fatal(err)
		}
	}
}

func mustSend(t testing.TB, q *boltq.Queue, name string, bodies ...string) {
	t.Helper()
	var bs [][]byte
	for _, b := range bodies {
		bs = append(bs, []byte(b))
	}
	if err := q.Send(ctx(t), name, bs...); err != nil {
		t.Fatal(err)
	}
}

func receive(t testing.TB, q *boltq.Queue, name string, max int) []queue.Message {
	t.Helper()
	msgs, err := q.Receive(ctx(t), name, max, 0)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func bodies(msgs []queue.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Body))
	}
	return out
}

func receipts(msgs []queue.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Receipt)
	}
	return out
}

func TestRestartKeepsUnackedMessages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queues.db")
	q, err := boltq.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mustEnsure(t, q, "a", "b")
	mustSend(t, q, "a", "acked", "inflight", "waiting")
	mustSend(t, q, "b", "other")
	got := receive(t, q, "a", 2)
	if !slices.Equal(bodies(got), []string{"acked", "inflight"}) {
		t.Fatalf("got %q", bodies(got))
	}
	if err := q.Ack(ctx(t), "a", got[0].Receipt); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, m := range got {
		ids[m.ID] = true
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = openAt(t, path)
	// The in-flight message is visible again at once, counted from zero; order is kept.
	got = receive(t, q, "a", 10)
	if !slices.Equal(bodies(got), []string{"inflight", "waiting"}) || got[0].Receives != 1 {
		t.Fatalf("after restart: got %+v", got)
	}
	if got := receive(t, q, "b", 10); !slices.Equal(bodies(got), []string{"other"}) {
		t.Fatalf("queue b after restart: got %q", bodies(got))
	}
	// Message IDs are not reused after a restart.
	mustSend(t, q, "a", "new")
	for _, m := range receive(t, q, "a", 10) {
		if ids[m.ID] && string(m.Body) == "new" {
			t.Fatalf("new message reuses id %s", m.ID)
		}
	}
	if err := q.Send(ctx(t), "missing", []byte("x")); !errs.Is(err, errs.NotFound) {
		t.Fatalf("queues are remembered exactly: got %v", err)
	}
}

func openAt(t testing.TB, path string, opts ...boltq.Option) *boltq.Queue {
	t.Helper()
	q, err := boltq.Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func TestRemovedQueueStaysRemovedAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "queues.db")
	q, err := boltq.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	mustEnsure(t, q, "gone", "kept")
	mustSend(t, q, "gone", "x")
	mustSend(t, q, "kept", "y")
	if err := q.Remove(ctx(t), "gone"); err != nil {
		t.Fatal(err)
	}
	q.Close()
	q = openAt(t, path)
	for _, n := range []string{"gone", queue.DeadLetter("gone")} {
		if err := q.Send(ctx(t), n, []byte("x")); !errs.Is(err, errs.NotFound) {
			t.Fatalf("Send to %s after Remove and restart: got %v", n, err)
		}
	}
	mustEnsure(t, q, "gone")
	if got := receive(t, q, "gone", 10); len(got) != 0 {
		t.Fatalf("a re-created queue holds old messages: %q", bodies(got))
	}
	if got := receive(t, q, "kept", 10); !slices.Equal(bodies(got), []string{"y"}) {
		t.Fatalf("kept: got %q", bodies(got))
	}
}

func TestVisibilityWithFakeClock(t *testing.T) {
	clk := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	q := openTemp(t, boltq.WithClock(clk), boltq.WithVisibility(time.Minute), boltq.WithMaxReceives(2))
	mustEnsure(t, q, "v")
	mustSend(t, q, "v", "m")
	first := receive(t, q, "v", 1)
	if len(first) != 1 {
		t.Fatal("no message")
	}
	// A receiver waiting an hour (of fake time) is woken by the reaper when the
	// visibility timeout passes, not by its own timer.
	done := make(chan []queue.Message, 1)
	go func() {
		msgs, err := q.Receive(ctx(t), "v", 1, time.Hour)
		if err != nil {
			t.Error(err)
		}
		done <- msgs
	}()
	waitFor(t, func() bool { return clk.Waiters() >= 2 }) // the reaper's timer and the receiver's
	clk.Advance(59 * time.Second)
	select {
	case m := <-done:
		t.Fatalf("redelivered before the timeout: %+v", m)
	default:
	}
	clk.Advance(time.Second)
	var again []queue.Message
	select {
	case again = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting receiver was not woken when the message became visible")
	}
	if len(again) != 1 || again[0].Receives != 2 || again[0].ID != first[0].ID {
		t.Fatalf("got %+v", again)
	}
	// Second timeout with max receives 2: to the dead-letter queue, by the reaper alone.
	clk.Advance(time.Minute)
	waitFor(t, func() bool {
		msgs, err := q.Receive(ctx(t), queue.DeadLetter("v"), 1, 0)
		return err == nil && len(msgs) == 1 && string(msgs[0].Body) == "m"
	})
	if got := receive(t, q, "v", 10); len(got) != 0 {
		t.Fatalf("dead-lettered message still in its queue: %+v", got)
	}
}

// waitFor polls cond with a deadline.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAckOfTimedOutMessageBeforeRedelivery(t *testing.T) {
	clk := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	q := openTemp(t, boltq.WithClock(clk), boltq.WithVisibility(time.Minute))
	mustEnsure(t, q, "a")
	mustSend(t, q, "a", "m")
	got := receive(t, q, "a", 1)
	clk.Advance(2 * time.Minute)
	// Its receipt is still the latest: the ack counts.
	if err := q.Ack(ctx(t), "a", got[0].Receipt); err != nil {
		t.Fatal(err)
	}
	if again := receive(t, q, "a", 1); len(again) != 0 {
		t.Fatalf("acked message delivered again: %+v", again)
	}
}

func TestRejects(t *testing.T) {
	q := openTemp(t)
	c := ctx(t)
	mustEnsure(t, q, "ok")
	long := strings.Repeat("n", boltq.MaxNameLen+1)
	tests := []struct {
		name string
		err  error
		kind errs.Kind
	}{
		{"ensure bad name", q.Ensure(c, "bad name"), errs.Invalid},
		{"ensure long name", q.Ensure(c, long), errs.Invalid},
		{"ensure name whose DLQ is too long", q.Ensure(c, long[:boltq.MaxNameLen-2]), errs.Invalid},
		{"ensure empty", q.Ensure(c, ""), errs.Invalid},
		{"send bad name", q.Send(c, "a/b", []byte("x")), errs.Invalid},
		{"send empty body", q.Send(c, "ok", []byte("x"), nil), errs.Invalid},
		{"send too large", q.Send(c, "ok", make([]byte, boltq.MaxBody+1)), errs.TooLarge},
		{"receive missing", func() error { _, err := q.Receive(c, "missing", 1, 0); return err }(), errs.NotFound},
		{"receive max 0", func() error { _, err := q.Receive(c, "ok", 0, 0); return err }(), errs.Invalid},
		{"ack missing queue", q.Ack(c, "missing", "1.1"), errs.NotFound},
	}
	for _, tc := range tests {
		if !errs.Is(tc.err, tc.kind) {
			t.Errorf("%s: got %v, want kind %v", tc.name, tc.err, tc.kind)
		}
	}
	// A failed send sends nothing, not even its valid part.
	if got := receive(t, q, "ok", 10); len(got) != 0 {
		t.Fatalf("rejected sends left %q", bodies(got))
	}
	for _, r := range []string{"", "garbage", "1.x", "99.1", "-1.1"} {
		if err := q.Ack(c, "ok", r); err != nil {
			t.Errorf("Ack %q: %v", r, err)
		}
	}
	mustSend(t, q, "ok", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l")
	if got := receive(t, q, "ok", 100); len(got) != queue.MaxBatch {
		t.Fatalf("Receive max 100: got %d, want at most MaxBatch (%d), as SQS", len(got), queue.MaxBatch)
	}
}

func TestCloseAndRemoveWakeReceivers(t *testing.T) {
	q, err := boltq.Open(filepath.Join(t.TempDir(), "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	mustEnsure(t, q, "r", "c")
	errc := make(chan error, 2)
	for _, n := range []string{"r", "c"} {
		go func() {
			_, err := q.Receive(ctx(t), n, 1, time.Hour)
			errc <- err
		}()
	}
	if err := q.Remove(ctx(t), "r"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errs.Is(err, errs.NotFound) {
			t.Fatalf("receiver of a removed queue: got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Remove did not wake the receiver")
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errs.Is(err, errs.Unavailable) {
			t.Fatalf("receiver at Close: got %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not wake the receiver")
	}
	if err := q.Send(ctx(t), "c", []byte("x")); !errs.Is(err, errs.Unavailable) {
		t.Fatalf("Send after Close: got %v", err)
	}
}

func TestDispatcher(t *testing.T) {
	q := openTemp(t, boltq.WithVisibility(testVisibility))
	const queues = 500
	var names []string
	for i := 0; i < queues; i++ {
		names = append(names, queue.NodeQueue(fmt.Sprint(i)))
	}
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Add(1)
		go func() { defer wg.Done(); mustEnsure(t, q, n) }()
	}
	wg.Wait()

	var (
		mu      sync.Mutex
		got     = map[string][]string{}
		busy    = map[string]bool{}
		dropped = map[string]int{} // un-acked first deliveries
		overlap bool
	)
	d := q.NewDispatcher(func(ctx context.Context, name string, msgs []queue.Message) {
		mu.Lock()
		if busy[name] {
			overlap = true
		}
		busy[name] = true
		var ack []string
		for _, m := range msgs {
			// Queue 0 leaves its first message un-acked: it must come back.
			if name == names[0] && string(m.Body) == "first" && dropped[name] == 0 {
				dropped[name]++
				continue
			}
			got[name] = append(got[name], string(m.Body))
			ack = append(ack, m.Receipt)
		}
		mu.Unlock()
		// The test may end (cancelling ctx) between seeing a message and its ack.
		if err := q.Ack(ctx, name, ack...); err != nil && ctx.Err() == nil {
			t.Error(err)
		}
		mu.Lock()
		busy[name] = false
		mu.Unlock()
	}, boltq.DispatchOptions{Workers: 4})
	// Messages sent before Add and before Run are delivered too.
	mustSend(t, q, names[1], "first")
	if err := d.Add(names...); err != nil {
		t.Fatal(err)
	}
	if err := d.Add("missing"); !errs.Is(err, errs.NotFound) {
		t.Fatalf("Add of a missing queue: got %v", err)
	}
	other := q.NewDispatcher(func(context.Context, string, []queue.Message) {}, boltq.DispatchOptions{})
	if err := other.Add(names[0]); !errs.Is(err, errs.Conflict) {
		t.Fatalf("Add to a second dispatcher: got %v", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(runCtx) }()
	defer func() { stop(); <-ran }()

	for i, n := range names {
		if i == 1 {
			mustSend(t, q, n, "second")
			continue
		}
		mustSend(t, q, n, "first", "second")
	}
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range names {
			if len(got[n]) < 2 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	for _, n := range names {
		if !sameSet(got[n], []string{"first", "second"}) {
			t.Errorf("%s: got %q", n, got[n])
		}
	}
	if overlap {
		t.Error("one queue was handled by two workers at once")
	}
	mu.Unlock()

	// Dropped queues are no longer served.
	d.Drop(names[2])
	mustSend(t, q, names[2], "after-drop")
	mustSend(t, q, names[3], "still-served")
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got[names[3]]) == 3 })
	if msgs := receive(t, q, names[2], 10); !slices.Equal(bodies(msgs), []string{"after-drop"}) {
		t.Fatalf("dropped queue: got %q, want the message left for Receive", bodies(msgs))
	}
	if err := d.Run(runCtx); !errs.Is(err, errs.Conflict) {
		t.Fatalf("second Run: got %v", err)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
