package asl

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/straas/straas/shared/store/bolt"
	"github.com/straas/straas/shared/workflow"
)

// Benchmarks of durable transitions on the real bolt store: many executions run at
// once so that the store's group commit turns concurrency into throughput. Reported:
// transitions/s, p50 and p99 of one transition (from the start of a step to its
// checkpoint being durable), and store writes per fsync.
//
//	go test ./shared/asl -run '^$' -bench Transitions -benchtime 40000x

var benchMachines = []struct {
	name, def, input string
	perExec          int // transitions one execution makes
}{
	{
		name: "pass_chain_10",
		def: `{"StartAt":"S0","States":{` + chain(10, func(i int, next string) string {
			return fmt.Sprintf(`{"Type":"Pass","Parameters":{"i":%d,"id.$":"$.id"},%s}`, i, next)
		}) + `}}`,
		input: `{"id":"x"}`, perExec: 10,
	},
	{
		name: "task_chain_5",
		def: `{"StartAt":"S0","States":{` + chain(5, func(i int, next string) string {
			return fmt.Sprintf(`{"Type":"Task","Resource":"arn:test:function:Echo","Parameters":{"id.$":"$.id","step":%d},"ResultPath":"$.r",%s}`, i, next)
		}) + `}}`,
		input: `{"id":"x"}`, perExec: 5,
	},
	{
		name: "map_20_tasks",
		def: `{"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.items","ItemSelector":{"n.$":"$$.Map.Item.Value"},
			"ItemProcessor":{"StartAt":"D","States":{"D":{"Type":"Task","Resource":"arn:test:function:Double","End":true}}},
			"ResultSelector":{"count.$":"States.ArrayLength($)"},"End":true}}}`,
		input: `{"items":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}`, perExec: 2 + 20,
	},
}

func chain(n int, state func(i int, next string) string) string {
	var s string
	for i := 0; i < n; i++ {
		next := fmt.Sprintf(`"Next":"S%d"`, i+1)
		if i == n-1 {
			next = `"End":true`
		}
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf(`"S%d":%s`, i, state(i, next))
	}
	return s
}

func BenchmarkTransitions(b *testing.B) {
	for _, m := range benchMachines {
		for _, inflight := range []int{1, 16, 64, 256} {
			b.Run(fmt.Sprintf("%s/inflight_%d", m.name, inflight), func(b *testing.B) {
				benchTransitions(b, m.def, m.input, m.perExec, inflight)
			})
		}
	}
}

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	slices.Sort(l.d)
	return l.d[int(q*float64(len(l.d)-1))]
}

func benchTransitions(b *testing.B, def, input string, perExec, inflight int) {
	st, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	m, err := Load("bench", []byte(def), nil)
	if err != nil {
		b.Fatal(err)
	}
	nExec := max(1, b.N/perExec)
	var transitions atomic.Int64
	lat := &latencies{d: make([]time.Duration, 0, nExec*perExec)}
	var ended sync.Map // execution id -> chan string (its final status)
	waitEnd := func(id string) chan string {
		c, _ := ended.LoadOrStore(id, make(chan string, 1))
		return c.(chan string)
	}
	var failed atomic.Int64
	eng, err := New(Config{
		Store: st, Machines: map[string]*Machine{"bench": m}, Functions: testFuncs(), Logger: quietLogger(),
		Workers: max(64, 2*inflight),
		OnTransition: func(tr Transition) {
			transitions.Add(1)
			lat.add(tr.Took)
			if tr.Ended != "" {
				waitEnd(tr.Execution) <- tr.Ended
			}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	in, _ := json.Marshal(json.RawMessage(input))
	before := st.Stats()
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	// inflight clients, each starting an execution and waiting for its end, as API
	// callers would.
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < inflight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(nExec) {
					return
				}
				id, err := eng.Start(ctx, "bench", fmt.Sprintf("b%d", i), in)
				if err != nil {
					b.Error(err)
					return
				}
				if status := <-waitEnd(id); status != workflow.Succeeded {
					failed.Add(1)
				}
				ended.Delete(id)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d executions failed", failed.Load())
	}
	after := st.Stats()
	n := transitions.Load()
	if n < int64(nExec*perExec) {
		b.Fatalf("%d transitions, want %d", n, nExec*perExec)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "transitions/s")
	b.ReportMetric(float64(lat.quantile(0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat.quantile(0.99).Microseconds())/1000, "p99-ms")
	if batches := after.Batches - before.Batches; batches > 0 {
		b.ReportMetric(float64(after.Requests-before.Requests)/float64(batches), "writes/fsync")
	}
	// CPU per transition holds still when other processes share the machine.
	b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/transition")
	b.ReportMetric(0, "ns/op") // per-op time means nothing here: see transitions/s
}

// cpuTime is the CPU time (user+system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
