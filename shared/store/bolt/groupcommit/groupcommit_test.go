package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/straas/straas/shared/errs"
)

func openDB(t *testing.T) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "gc.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	return db
}

func put(key string) Func {
	return func(tx *bbolt.Tx) error { return tx.Bucket([]byte("b")).Put([]byte(key), []byte("v")) }
}

func has(t *testing.T, db *bbolt.DB, key string) bool {
	t.Helper()
	var ok bool
	_ = db.View(func(tx *bbolt.Tx) error { ok = tx.Bucket([]byte("b")).Get([]byte(key)) != nil; return nil })
	return ok
}

// waitPending polls until n submissions are queued behind the running batch.
func waitPending(t *testing.T, c *Committer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := len(c.pending)
		c.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d submissions pending, want %d", got, n)
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
}

func TestOneBadSubmissionFailsAlone(t *testing.T) {
	db := openDB(t)
	c := New(db)
	defer c.Close()
	ctx := context.Background()

	// Hold the committer inside a first batch so the next submissions share one.
	release, inside := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock() // before Close (defers run last-in first-out), even if the test fails
	first := make(chan error, 1)
	go func() {
		first <- c.Do(ctx, func(*bbolt.Tx) error { close(inside); <-release; return nil }, put("first"))
	}()
	<-inside

	errCheck, errApply := errors.New("check says no"), errors.New("apply failed halfway")
	tests := []struct {
		name         string
		check, apply Func
		want         error // nil: success
		key          string
		stored       bool
	}{
		{"ok-1", nil, put("ok-1"), nil, "ok-1", true},
		{"check fails", func(*bbolt.Tx) error { return errCheck }, put("checked"), errCheck, "checked", false},
		{"apply fails after a put", nil, func(tx *bbolt.Tx) error {
			if err := put("half")(tx); err != nil {
				return err
			}
			return errApply
		}, errApply, "half", false},
		{"apply panics after a put", nil, func(tx *bbolt.Tx) error {
			_ = put("panicked")(tx)
			panic("boom")
		}, errors.New("panic"), "panicked", false},
		{"ok-2", nil, put("ok-2"), nil, "ok-2", true},
	}
	results := make([]chan error, len(tests))
	for i, tc := range tests {
		results[i] = make(chan error, 1)
		go func() { results[i] <- c.Do(ctx, tc.check, tc.apply) }()
		waitPending(t, c, i+1) // keep submission order
	}
	unblock()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, tc := range tests {
		err := <-results[i]
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != nil && err == nil:
			t.Errorf("%s: succeeded, want %v", tc.name, tc.want)
		case tc.want != nil && tc.name != "apply panics after a put" && !errors.Is(err, tc.want):
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		if got := has(t, db, tc.key); got != tc.stored {
			t.Errorf("%s: key stored %v, want %v", tc.name, got, tc.stored)
		}
	}
	if st := c.Stats(); st.Batches != 2 || st.Requests != 6 {
		t.Errorf("stats %+v, want 6 requests in 2 transactions", st)
	}
	// The committer survived the panic.
	if err := c.Do(ctx, nil, put("after")); err != nil || !has(t, db, "after") {
		t.Fatalf("after a panic: %v", err)
	}
}

func TestNothingToCommitSkipsTheTransaction(t *testing.T) {
	c := New(openDB(t))
	defer c.Close()
	no := errors.New("no")
	if err := c.Do(context.Background(), func(*bbolt.Tx) error { return no }, put("x")); !errors.Is(err, no) {
		t.Fatalf("got %v", err)
	}
	if st := c.Stats(); st.Batches != 0 {
		t.Fatalf("a batch whose every check failed committed: %+v", st)
	}
}

func TestCloseDrainsThenRefuses(t *testing.T) {
	db := openDB(t)
	c := New(db)
	ctx := context.Background()
	var wg sync.WaitGroup
	errc := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Do(ctx, nil, put(fmt.Sprint(i))); err != nil && !errors.Is(err, ErrClosed) {
				errc <- err
			}
		}()
	}
	c.Close()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	err := c.Do(ctx, nil, put("late"))
	if !errs.Is(err, errs.Unavailable) || !errors.Is(err, ErrClosed) {
		t.Fatalf("Do after Close: got %v, want unavailable", err)
	}
	if err := c.Submit(nil, put("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Submit after Close: got %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	db := openDB(t)
	c := New(db)
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Do(ctx, nil, put("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	if has(t, db, "x") {
		t.Fatal("a cancelled submission was applied")
	}
}
