package asl

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/workflow"
)

// Start may be called while Run is starting (resuming what the store holds): every
// execution runs, once, driven from one copy of its records.

const startRunMachine = `{"StartAt":"M","States":{
	"M":{"Type":"Map","ItemsPath":"$.items","ItemSelector":{"x.$":"$$.Execution.Name","i.$":"$$.Map.Item.Value"},
		"ItemProcessor":{"StartAt":"Work","States":{"Work":{"Type":"Task","Resource":"arn:test:function:Work","End":true}}},
		"End":true}}}`

// callLog counts task calls by execution name and item.
type callLog struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *callLog) fn() workflow.Func {
	return fn(func(in map[string]any) (any, error) {
		key := fmt.Sprintf("%v/%v", in["x"], in["i"])
		c.mu.Lock()
		c.calls[key]++
		c.mu.Unlock()
		return map[string]any{"i": in["i"]}, nil
	})
}

func (c *callLog) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

// checkOnce fails unless every item of every named execution ran exactly once.
func (c *callLog) checkOnce(t *testing.T, names []string, items int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range names {
		for i := 0; i < items; i++ {
			if got := c.calls[fmt.Sprintf("%s/%d", n, i)]; got != 1 {
				t.Errorf("execution %s item %d ran %d times, want 1", n, i, got)
			}
		}
	}
}

// gatedStore holds Run's resume listing (its first List of every thread) until
// released; with listFirst the listing is taken before the hold, else after it.
type gatedStore struct {
	store.Store
	listFirst bool
	once      sync.Once
	held      chan struct{}
	release   chan struct{}
}

func (g *gatedStore) List(ctx context.Context, kind string, q store.Query) ([]store.Record, string, error) {
	first := false
	if kind == KindThread && q.Index == "" && q.From == "" && q.After == "" {
		g.once.Do(func() { first = true })
	}
	if !first {
		return g.Store.List(ctx, kind, q)
	}
	if g.listFirst {
		recs, next, err := g.Store.List(ctx, kind, q)
		close(g.held)
		<-g.release
		return recs, next, err
	}
	close(g.held)
	<-g.release
	return g.Store.List(ctx, kind, q)
}

func TestStartWhileResuming(t *testing.T) {
	const items = 3
	input := `{"items":[0,1,2]}`
	want := `[{"i":0},{"i":1},{"i":2}]`
	for _, listFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("listing_taken_before_the_start=%v", listFirst), func(t *testing.T) {
			ctx := context.Background()
			st := openBolt(t, filepath.Join(t.TempDir(), "asl.db"))
			defer st.Close()
			g := &gatedStore{Store: st, listFirst: listFirst, held: make(chan struct{}), release: make(chan struct{})}
			log := &callLog{calls: map[string]int{}}
			h := newHarness(t, map[string]*Machine{"m": mustLoad(t, "m", startRunMachine)},
				map[string]workflow.Func{"arn:test:function:Work": log.fn()}, hopts{st: g, noRun: true})
			before := h.start("m", "before", input) // recorded only: Run resumes it
			h.run()
			<-g.held
			// Run is resuming: a Start now records the execution and returns at once;
			// the execution waits for the resume to be over.
			during := h.start("m", "during", input)
			if again := h.start("m", "before", input); again != before {
				t.Fatalf("Start of the recorded execution again: %q, want %q", again, before)
			}
			h.eng.mu.Lock()
			_, inMemory := h.eng.execs[during]
			deferred := append([]string(nil), h.eng.deferred...)
			h.eng.mu.Unlock()
			if inMemory || len(deferred) != 1 || deferred[0] != during || log.total() != 0 {
				t.Fatalf("during the resume: in memory %v, deferred %v, %d calls; want only deferred", inMemory, deferred, log.total())
			}
			close(g.release)
			for _, id := range []string{before, during} {
				x := h.await(id, false)
				if x.Status != workflow.Succeeded {
					t.Fatalf("%s: %s %s %s", id, x.Status, x.Error, x.Cause)
				}
				jsonEq(t, x.Output, want)
			}
			log.checkOnce(t, []string{"before", "during"}, items)
			waitFor(t, "no thread records", func() bool {
				recs, _, err := st.List(ctx, KindThread, store.Query{})
				return err == nil && len(recs) == 0
			})
		})
	}
}

// Many Starts race Run's start, with executions to resume in the store: each runs
// every item exactly once.
func TestStartRacingRun(t *testing.T) {
	const recorded, racing, items = 20, 20, 3
	st := openBolt(t, filepath.Join(t.TempDir(), "asl.db"))
	defer st.Close()
	log := &callLog{calls: map[string]int{}}
	h := newHarness(t, map[string]*Machine{"m": mustLoad(t, "m", startRunMachine)},
		map[string]workflow.Func{"arn:test:function:Work": log.fn()}, hopts{st: st, noRun: true})
	input := `{"items":[0,1,2]}`
	var names []string
	for i := 0; i < recorded; i++ {
		names = append(names, fmt.Sprintf("rec-%d", i))
		h.start("m", names[i], input)
	}
	ids := make([]string, racing)
	errc := make(chan error, racing)
	var wg sync.WaitGroup
	for i := 0; i < racing; i++ {
		names = append(names, fmt.Sprintf("race-%d", i))
		wg.Add(1)
		go func(i int, name string) {
			defer wg.Done()
			id, err := h.eng.Start(context.Background(), "m", name, []byte(input))
			ids[i] = id
			errc <- err
		}(i, names[recorded+i])
	}
	h.run()
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		x, err := h.eng.Wait(ctx, ExecutionARN("m", n))
		cancel()
		if err != nil || x.Status != workflow.Succeeded {
			t.Fatalf("%s: %s %s %s (%v)", n, x.Status, x.Error, x.Cause, err)
		}
		var out []map[string]any
		if err := json.Unmarshal(x.Output, &out); err != nil || len(out) != items {
			t.Fatalf("%s: output %s", n, x.Output)
		}
	}
	log.checkOnce(t, names, items)
	// An execution is durably over a moment before it leaves memory.
	waitFor(t, "no execution or thread left in memory", func() bool {
		h.eng.mu.Lock()
		defer h.eng.mu.Unlock()
		return len(h.eng.execs)+len(h.eng.threads) == 0
	})
}
