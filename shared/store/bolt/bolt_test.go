package bolt_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"

	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/bolt"
	"github.com/straas/straas/shared/store/storetest"
)

func openTemp(t testing.TB, opts ...bolt.Option) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r := store.Record{Kind: "k", ID: "a", Data: []byte(`{"a":1}`),
		Index: map[string]store.IndexKey{store.IdxTenant: {Part: "t", Sort: "1"}}}
	if err := s.Write(ctx(t), store.Put(r, store.Absent)); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx(t), store.Put(r, store.Present)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	got, err := s.Get(ctx(t), "k", "a")
	if err != nil || got.Version != 2 || string(got.Data) != `{"a":1}` {
		t.Fatalf("after reopen: got %+v, %v", got, err)
	}
	recs, _, err := s.List(ctx(t), "k", store.Query{Index: store.IdxTenant, Part: "t"})
	if err != nil || len(recs) != 1 {
		t.Fatalf("index after reopen: got %d records, %v", len(recs), err)
	}
}

func openAt(t *testing.T, path string, opts ...bolt.Option) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSecondOpenFailsWhileLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	openAt(t, path)
	s, err := bolt.Open(path, bolt.WithLockTimeout(50*time.Millisecond))
	if err == nil {
		s.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if !errs.Is(err, errs.Unavailable) {
		t.Fatalf("got %v, want kind unavailable", err)
	}
}

func TestExpiryWithFakeClockAndSweep(t *testing.T) {
	clk := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s := openTemp(t, bolt.WithClock(clk), bolt.WithSweepEvery(0))
	c := ctx(t)
	for i, d := range []time.Duration{time.Minute, 2 * time.Minute, 0} {
		r := store.Record{Kind: "lease", ID: fmt.Sprint("n", i), Data: []byte(`{}`),
			Index: map[string]store.IndexKey{store.IdxDue: {Part: "lease", Sort: fmt.Sprint(i)}}}
		if d > 0 {
			r.Expires = clk.Now().Add(d)
		}
		if err := s.Write(c, store.Put(r, store.Absent)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Sweep(c); err != nil || n != 0 {
		t.Fatalf("Sweep before anything is due: %d, %v", n, err)
	}
	clk.Advance(time.Minute) // n0 expires exactly now: invisible
	if _, err := s.Get(c, "lease", "n0"); !errs.Is(err, errs.NotFound) {
		t.Fatalf("Get of a record expiring now: %v", err)
	}
	if _, err := s.Get(c, "lease", "n1"); err != nil {
		t.Fatalf("Get of a live record: %v", err)
	}
	// Renew n1 past its old expiry: the sweep must not take it.
	r1, _ := s.Get(c, "lease", "n1")
	r1.Expires = clk.Now().Add(time.Hour)
	if err := s.Write(c, store.Put(r1, store.AtVersion)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Minute)
	if n, err := s.Sweep(c); err != nil || n != 1 {
		t.Fatalf("Sweep: removed %d, %v; want 1", n, err)
	}
	if n, err := s.Sweep(c); err != nil || n != 0 {
		t.Fatalf("second Sweep: removed %d, %v; want 0", n, err)
	}
	recs, _, err := s.List(c, "lease", store.Query{Index: store.IdxDue, Part: "lease"})
	if err != nil || len(recs) != 2 || recs[0].ID != "n1" || recs[1].ID != "n2" {
		t.Fatalf("List after sweep: %v %v", recs, err)
	}
	// A record swept away can be created again from scratch.
	if err := s.Write(c, store.Put(store.Record{Kind: "lease", ID: "n0", Data: []byte(`{}`)}, store.Absent)); err != nil {
		t.Fatal(err)
	}
}

func TestAutomaticSweepRidesAlongWithWrites(t *testing.T) {
	clk := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s := openTemp(t, bolt.WithClock(clk), bolt.WithSweepEvery(time.Minute))
	c := ctx(t)
	for i := 0; i < 50; i++ {
		r := store.Record{Kind: "k", ID: fmt.Sprint(i), Data: []byte(`{}`), Expires: clk.Now().Add(time.Second)}
		if err := s.Write(c, store.Put(r, store.Any)); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(2 * time.Minute)
	// This write finds a sweep due and queues it before returning.
	if err := s.Write(c, store.Put(store.Record{Kind: "k", ID: "trigger", Data: []byte(`{}`)}, store.Any)); err != nil {
		t.Fatal(err)
	}
	// Ours is queued after it, so it finds nothing left.
	if n, err := s.Sweep(c); err != nil || n != 0 {
		t.Fatalf("Sweep after the automatic one: removed %d, %v; want 0", n, err)
	}
}

func TestGroupCommitSharesTransactions(t *testing.T) {
	s := openTemp(t)
	c := ctx(t)
	const workers, each = 64, 20
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := store.Record{Kind: "k", ID: fmt.Sprintf("%d-%d", w, i), Data: []byte(`{}`)}
				if err := s.Write(c, store.Put(r, store.Absent)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	if st.Requests != workers*each || st.Batches >= st.Requests/2 {
		t.Fatalf("got %d writes in %d transactions, want %d writes in far fewer", st.Requests, st.Batches, workers*each)
	}
}

func TestRacingCreatesOneWins(t *testing.T) {
	s := openTemp(t)
	c := ctx(t)
	const n = 32
	var wg sync.WaitGroup
	var won, lost atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Write(c,
				store.Put(store.Record{Kind: "k", ID: fmt.Sprint("own-", i), Data: []byte(`{}`)}, store.Absent),
				store.Put(store.Record{Kind: "k", ID: "contended", Data: []byte(fmt.Sprint(i))}, store.Absent))
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, store.ErrCondition):
				lost.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 || lost.Load() != n-1 {
		t.Fatalf("won %d lost %d, want 1 and %d", won.Load(), lost.Load(), n-1)
	}
	recs, _, err := s.List(c, "k", store.Query{From: "own-", To: "own."})
	if err != nil || len(recs) != 1 {
		t.Fatalf("the losers' own records were written: %d, %v", len(recs), err)
	}
}

func TestEscapedKeysKeepOrder(t *testing.T) {
	s := openTemp(t)
	c := ctx(t)
	// NUL bytes inside parts, sorts and ids must neither break order nor let one
	// partition leak into another.
	sorts := []string{"", "\x00", "\x00\x00", "\x00\x01", "\x00\xff", "a", "a\x00", "a\x00b", "ab", "\xff"}
	for i, so := range sorts {
		for _, part := range []string{"p", "p\x00", "p\x00x"} {
			r := store.Record{Kind: "k", ID: fmt.Sprintf("%s|%d", part, i), Data: []byte(`{}`),
				Index: map[string]store.IndexKey{store.IdxParent: {Part: part, Sort: so}}}
			if err := s.Write(c, store.Put(r, store.Absent)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, part := range []string{"p", "p\x00", "p\x00x"} {
		var got []string
		q := store.Query{Index: store.IdxParent, Part: part, Limit: 3}
		for {
			recs, next, err := s.List(c, "k", q)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				if r.Index[store.IdxParent].Part != part {
					t.Fatalf("partition %q lists %q", part, r.ID)
				}
				got = append(got, r.Index[store.IdxParent].Sort)
			}
			if next == "" {
				break
			}
			q.After = next
		}
		if !slices.Equal(got, sorts) {
			t.Fatalf("partition %q: got sorts %q, want %q", part, got, sorts)
		}
		recs, _, err := s.List(c, "k", store.Query{Index: store.IdxParent, Part: part, From: "\x00", To: "a"})
		if err != nil || len(recs) != 4 {
			t.Fatalf("partition %q From NUL To a: got %d records, %v; want 4", part, len(recs), err)
		}
	}
}

func TestRejects(t *testing.T) {
	s := openTemp(t)
	c := ctx(t)
	long := strings.Repeat("x", bolt.MaxKeyLen+1)
	tests := []struct {
		name string
		op   store.Op
		kind errs.Kind
	}{
		{"data over the limit", store.Put(store.Record{Kind: "k", ID: "a", Data: make([]byte, bolt.MaxDataLen+1)}, store.Any), errs.TooLarge},
		{"long id", store.Put(store.Record{Kind: "k", ID: long, Data: []byte(`{}`)}, store.Any), errs.Invalid},
		{"long sort", store.Put(store.Record{Kind: "k", ID: "a", Data: []byte(`{}`),
			Index: map[string]store.IndexKey{store.IdxDue: {Part: "p", Sort: long}}}, store.Any), errs.Invalid},
		{"unknown condition", store.Op{Record: store.Record{Kind: "k", ID: "a"}, Cond: 9}, errs.Invalid},
		{"unknown index", store.Put(store.Record{Kind: "k", ID: "a",
			Index: map[string]store.IndexKey{"nope": {Part: "p"}}}, store.Any), errs.Invalid},
	}
	for _, tc := range tests {
		if err := s.Write(c, tc.op); !errs.Is(err, tc.kind) {
			t.Errorf("%s: got %v, want kind %v", tc.name, err, tc.kind)
		}
	}
	if _, _, err := s.List(c, "k", store.Query{After: "!!not base64"}); !errs.Is(err, errs.Invalid) {
		t.Errorf("bad marker: got %v, want invalid", err)
	}
	if _, _, err := s.List(c, "k", store.Query{Index: store.IdxTenant}); !errs.Is(err, errs.Invalid) {
		t.Errorf("index without part: got %v, want invalid", err)
	}
	cancelled, cancel := context.WithCancel(c)
	cancel()
	if err := s.Write(cancelled, store.Put(store.Record{Kind: "k", ID: "a", Data: []byte(`{}`)}, store.Any)); err == nil {
		t.Error("Write with a cancelled context succeeded")
	}
}

func TestClosed(t *testing.T) {
	s, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	c := ctx(t)
	if err := s.Write(c, store.Put(store.Record{Kind: "k", ID: "a"}, store.Any)); !errs.Is(err, errs.Unavailable) {
		t.Errorf("Write after Close: got %v, want unavailable", err)
	}
	if _, err := s.Get(c, "k", "a"); !errs.Is(err, errs.Unavailable) {
		t.Errorf("Get after Close: got %v, want unavailable", err)
	}
	if _, _, err := s.List(c, "k", store.Query{}); !errs.Is(err, errs.Unavailable) {
		t.Errorf("List after Close: got %v, want unavailable", err)
	}
}
