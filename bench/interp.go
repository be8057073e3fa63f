package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/straas/straas/shared/asl"
	"github.com/straas/straas/shared/store/bolt"
	"github.com/straas/straas/shared/workflow"
)

// interpMachines are the workflows of scenario 4: chains of Pass and Task states and a
// Map fanning out 20 tasks. perExec is the transitions one execution makes.
var interpMachines = []struct {
	name, def, input string
	perExec          int
}{
	{"pass_chain_10", `{"StartAt":"S0","States":{` + stateChain(10, func(i int, next string) string {
		return fmt.Sprintf(`{"Type":"Pass","Parameters":{"i":%d,"id.$":"$.id"},%s}`, i, next)
	}) + `}}`, `{"id":"x"}`, 10},
	{"task_chain_5", `{"StartAt":"S0","States":{` + stateChain(5, func(i int, next string) string {
		return fmt.Sprintf(`{"Type":"Task","Resource":"arn:bench:function:Echo","Parameters":{"id.$":"$.id","step":%d},"ResultPath":"$.r",%s}`, i, next)
	}) + `}}`, `{"id":"x"}`, 5},
	{"map_20_tasks", `{"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.items","ItemSelector":{"n.$":"$$.Map.Item.Value"},
		"ItemProcessor":{"StartAt":"D","States":{"D":{"Type":"Task","Resource":"arn:bench:function:Echo","End":true}}},
		"ResultSelector":{"count.$":"States.ArrayLength($)"},"End":true}}}`,
		`{"items":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}`, 22},
}

func stateChain(n int, state func(i int, next string) string) string {
	parts := make([]string, n)
	for i := range parts {
		next := fmt.Sprintf(`"Next":"S%d"`, i+1)
		if i == n-1 {
			next = `"End":true`
		}
		parts[i] = fmt.Sprintf(`"S%d":%s`, i, state(i, next))
	}
	return strings.Join(parts, ",")
}

// runInterpreter measures scenario 4 with inflight executions at once (the size): for
// each machine, clients keep inflight executions running on the real engine over the
// embedded bolt store, every transition checkpointed before the next.
func runInterpreter(ctx context.Context, r *report, inflight int, quick bool) error {
	dur := 4 * time.Second
	if quick {
		dur = 1500 * time.Millisecond
	}
	b := bar(len(interpMachines), fmt.Sprintf("interpreter, %d in flight: machines", inflight))
	defer b.Finish()
	var rows []string
	for _, m := range interpMachines {
		res, err := interpRun(ctx, m.name, m.def, m.input, inflight, dur)
		if err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		metric := func(s string) string { return m.name + " " + s }
		r.add("4", inflight, metric("transitions"), res.rate, "/s")
		r.add("4", inflight, metric("p50"), res.p50, "ms")
		r.add("4", inflight, metric("p99"), res.p99, "ms")
		r.add("4", inflight, metric("CPU"), res.cpuPer, "µs/transition")
		r.add("4", inflight, metric(fmt.Sprintf("CPU-bound ceiling on %d CPUs", runtime.NumCPU())), float64(runtime.NumCPU())*1e6/res.cpuPer, "/s")
		if res.perFsync > 0 {
			rows = append(rows, fmt.Sprintf("%s %.1f", m.name, res.perFsync))
		}
		_ = b.Add(1)
	}
	r.setup("4", "the real interpreter (asl.Engine) on the embedded bolt store, every transition checkpointed (group commit); "+
		"size = executions in flight, each client starting the next as one ends, for %v per machine: pass_chain_10 (10 Pass states), "+
		"task_chain_5 (5 Task states calling an in-process function), map_20_tasks (a Map of 20 Task iterations). "+
		"Per-transition time: from the start of a step to its checkpoint being durable. Go benchmarks: go test ./shared/asl -run '^$' -bench Transitions", dur)
	if len(rows) > 0 {
		r.note("in flight %d, store writes per fsync: %s", inflight, strings.Join(rows, ", "))
	}
	return nil
}

type interpResult struct {
	rate, p50, p99, cpuPer, perFsync float64
}

func interpRun(ctx context.Context, name, def, input string, inflight int, dur time.Duration) (interpResult, error) {
	dir, cleanup, err := tempDir("interp")
	if err != nil {
		return interpResult{}, err
	}
	defer cleanup()
	st, err := bolt.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		return interpResult{}, err
	}
	defer st.Close()
	m, err := asl.Load(name, []byte(def), nil)
	if err != nil {
		return interpResult{}, err
	}
	log, _ := quietLogger()
	var transitions atomic.Int64
	lat := &latencies{}
	var measuring atomic.Bool
	var ended sync.Map // execution id -> chan string
	endOf := func(id string) chan string {
		c, _ := ended.LoadOrStore(id, make(chan string, 1))
		return c.(chan string)
	}
	echo := func(_ context.Context, in json.RawMessage) (json.RawMessage, error) { return in, nil }
	eng, err := asl.New(asl.Config{Store: st, Machines: map[string]*asl.Machine{name: m},
		Functions: map[string]workflow.Func{"arn:bench:function:Echo": echo}, Logger: log, Workers: max(64, 2*inflight),
		OnTransition: func(tr asl.Transition) {
			if measuring.Load() {
				transitions.Add(1)
				lat.add(tr.Took)
			}
			if tr.Ended != "" {
				endOf(tr.Execution) <- tr.Ended
			}
		}})
	if err != nil {
		return interpResult{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	engDone := make(chan error, 1)
	go func() { engDone <- eng.Run(rctx) }()
	defer func() { cancel(); <-engDone }()

	var seq, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < inflight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id, err := eng.Start(rctx, name, fmt.Sprintf("e%d", seq.Add(1)), []byte(input))
				if err != nil {
					failed.Add(1)
					return
				}
				select {
				case status := <-endOf(id):
					if status != workflow.Succeeded {
						failed.Add(1)
					}
				case <-rctx.Done():
					return
				}
				ended.Delete(id)
			}
		}()
	}
	// A short warm-up, then the window.
	time.Sleep(300 * time.Millisecond)
	s0 := st.Stats()
	measuring.Store(true)
	cpu0, t0 := cpuTime(), time.Now()
	select {
	case <-time.After(dur):
	case <-ctx.Done():
	}
	measuring.Store(false)
	elapsed, cpu := time.Since(t0), cpuTime()-cpu0
	s1 := st.Stats()
	close(stop)
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return interpResult{}, fmt.Errorf("%d executions failed", f)
	}
	n := transitions.Load()
	if n == 0 {
		return interpResult{}, fmt.Errorf("no transition in %v", elapsed)
	}
	res := interpResult{rate: float64(n) / elapsed.Seconds(), p50: lat.ms(0.5), p99: lat.ms(0.99),
		cpuPer: float64(cpu.Microseconds()) / float64(n)}
	if b := s1.Batches - s0.Batches; b > 0 {
		res.perFsync = float64(s1.Requests-s0.Requests) / float64(b)
	}
	return res, nil
}
