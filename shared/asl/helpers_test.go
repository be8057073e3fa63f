package asl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/straas/straas/shared/asl/asltest"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/workflow"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// harness runs one engine on a store with a fake clock.
type harness struct {
	t      *testing.T
	st     store.Store
	clk    *clock.Fake
	eng    *Engine
	cancel context.CancelFunc
	done   chan error
}

type hopts struct {
	st      store.Store
	clk     *clock.Fake
	workers int
	onTrans func(Transition)
	noRun   bool
	queue   queue.Queue
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

func mustLoad(t testing.TB, name, def string) *Machine {
	t.Helper()
	m, err := Load(name, []byte(def), map[string]string{})
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return m
}

func newHarness(t *testing.T, machines map[string]*Machine, funcs map[string]workflow.Func, o hopts) *harness {
	t.Helper()
	if o.st == nil {
		o.st = asltest.NewMemStore()
	}
	if o.clk == nil {
		o.clk = clock.NewFake(t0)
	}
	eng, err := New(Config{Store: o.st, Machines: machines, Functions: funcs, Clock: o.clk, Logger: quietLogger(), Workers: o.workers, OnTransition: o.onTrans, Queue: o.queue})
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	h := &harness{t: t, st: o.st, clk: o.clk, eng: eng}
	if !o.noRun {
		h.run()
	}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) run() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.eng.Run(ctx) }()
}

// stop ends Run and waits for it (a "process exit").
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatalf("Run did not return within 10s of cancel")
	}
	h.cancel = nil
}

func (h *harness) start(machine, name, input string) string {
	h.t.Helper()
	id, err := h.eng.Start(context.Background(), machine, name, []byte(input))
	if err != nil {
		h.t.Fatalf("start %s: %v", machine, err)
	}
	return id
}

// await polls until the execution is over. With autoAdvance, it moves the fake clock
// a second at a time whenever some timer is armed (for Wait states and retries).
func (h *harness) await(id string, autoAdvance bool) workflow.Execution {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		x, err := h.eng.Describe(context.Background(), id)
		if err != nil {
			h.t.Fatalf("describe: %v", err)
		}
		if x.Status != workflow.Running {
			return x
		}
		if autoAdvance && h.clk.Waiters() > 0 {
			h.clk.Advance(time.Second)
		}
		time.Sleep(time.Millisecond)
	}
	h.t.Fatalf("execution %s still running after 15s", id)
	return workflow.Execution{}
}

// waitFor polls cond with a deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func jsonEq(t testing.TB, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("output %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %q is not JSON: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("output:\n got %s\nwant %s", gb, wb)
	}
}

// golden compares v (as indented JSON) with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("golden file %s missing (run with -update): %v", p, err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from golden file:\n got %s\nwant %s", p, got, want)
	}
}

// fn adapts a Go function of decoded JSON to a workflow.Func.
func fn(f func(in map[string]any) (any, error)) workflow.Func {
	return func(ctx context.Context, raw json.RawMessage) (json.RawMessage, error) {
		var in map[string]any
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &in); err != nil {
				return nil, err
			}
		}
		out, err := f(in)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	}
}

// Named errors, as stage functions declare them.
type NodeGone struct{ Msg string }

func (e *NodeGone) Error() string { return e.Msg }
func (*NodeGone) StatesError()    {}

var errPlain = errors.New("plain failure")
