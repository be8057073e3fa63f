package mockcn_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/straas/straas/agent/agenttest"
	"github.com/straas/straas/mockcn"
	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/queue"
)

// bootResult is what booting a fleet measured.
type bootResult struct {
	elapsed  time.Duration // from the first create to the last node's first heartbeat
	heapPerV float64       // live heap per VM (cloud, CNs, agents, queues), after GC
	sysPerV  float64       // memory obtained from the OS per VM
}

// bootFleet creates n servers with agents on n/5 CNs and waits until every node has said
// hello and sent its first heartbeat.
func bootFleet(tb testing.TB, n int) bootResult {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q := agenttest.NewMemQueue(nil)
	if err := q.Ensure(ctx, queue.Status); err != nil {
		tb.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := q.Ensure(ctx, queue.NodeQueue(fmt.Sprintf("n%d", i))); err != nil {
			tb.Fatal(err)
		}
	}
	cloud, err := mockcn.New(mockcn.Config{Root: tb.TempDir(), AZs: []string{"az1"}, CNsPerAZ: max(n/5, 1), RacksPerAZ: 20, Queue: q, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cloud.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// The consumer stands in for the conductor: it drains the status queue.
	var mu sync.Mutex
	beat := map[string]bool{}
	all := make(chan struct{})
	go func() {
		for ctx.Err() == nil {
			msgs, err := q.Receive(ctx, queue.Status, queue.MaxBatch, 100*time.Millisecond)
			if err != nil {
				return
			}
			receipts := make([]string, 0, len(msgs))
			mu.Lock()
			for _, m := range msgs {
				receipts = append(receipts, m.Receipt)
				if e, err := agentproto.Decode(m.Body); err == nil && e.Type == agentproto.TypeHeartbeat && !beat[e.Node] {
					beat[e.Node] = true
					if len(beat) == n {
						close(all)
					}
				}
			}
			mu.Unlock()
			q.Ack(ctx, queue.Status, receipts...)
		}
	}()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	for i := 0; i < n; i++ {
		node := fmt.Sprintf("n%d", i)
		if _, err := cloud.CreateServer(mockcn.ServerSpec{Name: node, Project: "demo", Flavor: "small", UserData: mockcn.NewUserData(node, "v1").JSON()}); err != nil {
			tb.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(120 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		tb.Fatalf("only %d of %d nodes heartbeated in 120s", len(beat), n)
	}
	elapsed := time.Since(start)
	if s := cloud.Stats(); s.Status[mockcn.StatusActive] != n || s.Agents.Agents != n {
		tb.Fatalf("stats = %+v", s)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(cloud)
	return bootResult{
		elapsed:  elapsed,
		heapPerV: float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n),
		sysPerV:  float64(int64(after.Sys)-int64(before.Sys)) / float64(n),
	}
}

// TestFleetFootprint is the test-sized check of the scale figures: a fleet of VMs with
// agents stays under 100 KB per node and boots quickly.
func TestFleetFootprint(t *testing.T) {
	const n = 500
	r := bootFleet(t, n)
	t.Logf("%d VMs: first heartbeats after %v; %.0f heap bytes/VM, %.0f sys bytes/VM", n, r.elapsed, r.heapPerV, r.sysPerV)
	if r.heapPerV > 100<<10*raceFactor {
		t.Fatalf("%.0f heap bytes per VM, want <= %d", r.heapPerV, 100<<10*raceFactor)
	}
	if r.elapsed > 30*time.Second {
		t.Fatalf("%d nodes took %v to heartbeat", n, r.elapsed)
	}
}

// BenchmarkFleetBoot boots MOCKCN_BENCH_VMS (default 2000) VMs with agents on a fifth as
// many CNs and reports the memory per VM and the boot-to-first-heartbeat rate.
func BenchmarkFleetBoot(b *testing.B) {
	n := 2000
	if s := os.Getenv("MOCKCN_BENCH_VMS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			b.Fatalf("MOCKCN_BENCH_VMS=%q", s)
		}
		n = v
	}
	var total bootResult
	for i := 0; i < b.N; i++ {
		r := bootFleet(b, n)
		total.elapsed += r.elapsed
		total.heapPerV += r.heapPerV
		total.sysPerV += r.sysPerV
	}
	runs := float64(b.N)
	b.ReportMetric(total.heapPerV/runs, "heap-B/vm")
	b.ReportMetric(total.sysPerV/runs, "sys-B/vm")
	b.ReportMetric(float64(n)*runs/total.elapsed.Seconds(), "nodes-heartbeating/s")
	b.ReportMetric(total.elapsed.Seconds()/runs, "s/boot")
}
