package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/straas/straas/agent"
	"github.com/straas/straas/mockcn"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/conductor"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/deps"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/boltq"
	"github.com/straas/straas/shared/store/bolt"
)

// runFleet measures scenarios 1 and 2 at n nodes: the mock cloud with n/5 CNs boots n
// VMs, each running an agent on the dummy backend; the agents talk to the embedded queue
// (push-fed, as in `straas up`) and the real conductor stores their heartbeats in the
// embedded store. Scenario 2 is the time from the first create to the last node's first
// heartbeat being stored; scenario 1 the memory once they all run.
func runFleet(ctx context.Context, r *report, n int, quick bool) error {
	dir, cleanup, err := tempDir("fleet")
	if err != nil {
		return err
	}
	defer cleanup()
	log, logs := quietLogger()
	defer noteLogs(r, fmt.Sprintf("fleet of %d", n), logs)
	st, err := bolt.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	q, err := boltq.Open(filepath.Join(dir, "queue.db"), boltq.WithLogger(log))
	if err != nil {
		return err
	}
	defer q.Close()

	var beat sync.Map // node -> true once a heartbeat's lease is stored
	var beating atomic.Int64
	all := make(chan struct{})
	ws := &watchStore{Store: st, onLease: func(node string, heartbeat, _ bool) {
		if heartbeat {
			if _, dup := beat.LoadOrStore(node, true); !dup && beating.Add(1) == int64(n) {
				close(all)
			}
		}
	}}
	d := db.New(ws, nil)

	// The control plane's part, done before the clock starts: node records and their
	// command queues (the creation workflow makes both before it boots servers).
	ids, err := benchNodes(ctx, d, "fleet", n)
	if err != nil {
		return fmt.Errorf("node records: %w", err)
	}
	if err := q.Ensure(ctx, queue.Status); err != nil {
		return err
	}
	if err := parallel(ctx, 32, n, func(i int) error { return q.Ensure(ctx, queue.NodeQueue(ids[i])) }); err != nil {
		return fmt.Errorf("node queues: %w", err)
	}

	cns := max(n/5, 1)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	rssBefore, _ := rss()

	push := deps.NewFleetPush(q, 0)
	fc := agent.FleetConfig{}
	push.Configure(&fc)
	cloud, err := mockcn.New(mockcn.Config{Root: filepath.Join(dir, "cloud"), AZs: []string{"az1"}, CNsPerAZ: cns, RacksPerAZ: 20,
		Queue: push.Queue(), Fleet: fc, Logger: log})
	if err != nil {
		return err
	}
	push.Bind(cloud.Fleet())
	cond := &conductor.Conductor{DB: d, Batches: &batch.Service{DB: d, Queue: q, Log: log}, Queue: q, Log: log,
		Metrics: &ingestMetrics{}, StaleAfter: 30 * time.Second}

	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, fn := range []func(context.Context) error{cloud.Run, push.Run, cond.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = fn(rctx) }()
	}
	defer func() { cancel(); wg.Wait() }()

	b := bar(n, fmt.Sprintf("fleet: %d nodes to first stored heartbeat", n))
	stop := follow(ctx, b, func() int { return int(beating.Load()) }, all)
	cpu0 := cpuTime()
	start := time.Now()
	for i, id := range ids {
		if _, err := cloud.CreateServer(mockcn.ServerSpec{Name: fmt.Sprintf("fleet-vm-%05d", i+1), Project: "admin", Flavor: "small",
			UserData: mockcn.NewUserData(id, "v1").JSON()}); err != nil {
			stop()
			return fmt.Errorf("create server %d: %w", i, err)
		}
	}
	created := time.Since(start)
	limit := 60*time.Second + time.Duration(n)*10*time.Millisecond
	select {
	case <-all:
	case <-ctx.Done():
		stop()
		return ctx.Err()
	case <-time.After(limit):
		stop()
		return fmt.Errorf("only %d of %d nodes had a heartbeat stored after %v", beating.Load(), n, limit)
	}
	elapsed := time.Since(start)
	bootCPU := cpuTime() - cpu0
	stop()

	// Let the boot's backlog drain, then weigh what stays.
	time.Sleep(3 * time.Second)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	rssAfter, peak := rss()
	s := cloud.Stats()
	if s.Status[mockcn.StatusActive] != n || s.Agents.Agents != n {
		return fmt.Errorf("after boot: %d ACTIVE servers and %d agents, want %d", s.Status[mockcn.StatusActive], s.Agents.Agents, n)
	}

	r.setup("1", "mock cloud in-process with N VMs (flavor small, one agent each, dummy backend, heartbeat every 10 s) on N/5 CNs in 20 racks; "+
		"agents on the embedded queue (push-fed as in `straas up`); the real conductor storing leases in the embedded store. "+
		"Heap: live heap after GC minus before the cloud was built, per VM; RSS: the whole process (store, queue, conductor included)")
	r.setup("2", "same process: N servers created through the mock cloud's Go API (the same path as Nova's POST /servers), "+
		"boot latency 20–80 ms; timed from the first create to the last node's first heartbeat lease written by the conductor")
	heap := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(n)
	r.add("1", n, "heap per node", heap/1024, "KiB")
	r.add("1", n, "RSS per node", float64(rssAfter)/float64(n)/1024, "KiB")
	r.add("1", n, "RSS added per node", float64(rssAfter-rssBefore)/float64(n)/1024, "KiB")
	r.add("1", n, "RSS", float64(rssAfter)/(1<<20), "MiB")
	r.add("1", n, "peak RSS", float64(peak)/(1<<20), "MiB")
	r.add("1", n, "goroutines", float64(runtime.NumGoroutine()), "")
	r.add("1", n, "CNs", float64(cns), "")
	r.add("2", n, "time to all heartbeating", elapsed.Seconds(), "s")
	r.add("2", n, "nodes per second", float64(n)/elapsed.Seconds(), "nodes/s")
	r.add("2", n, "creates (Go API)", created.Seconds(), "s")
	r.add("2", n, "CPU per node booted", float64(bootCPU.Microseconds())/float64(n), "µs")
	return nil
}
