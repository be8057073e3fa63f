package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/checker"
	"github.com/straas/straas/shared/conductor"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/jobs"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/boltq"
	"github.com/straas/straas/shared/store/bolt"
)

// ingestNodes is how many nodes heartbeat in scenario 3 (quick: 4,000); the offered
// rate sets their interval (10,000 nodes at 5,000/s beat every 2 s).
func ingestNodes(quick bool) int {
	if quick {
		return 4000
	}
	return 10000
}

// runIngest measures scenario 3 at an offered rate (heartbeats/s): heartbeats of
// ingestNodes nodes, as agents encode them, are sent to the embedded status queue at that
// rate; the real conductor (as `straas up` runs it) stores a lease per heartbeat and the
// checker runs with a stale threshold of three intervals, so any flag is a false one.
func runIngest(ctx context.Context, r *report, rate int, quick bool) error {
	window := 15 * time.Second
	if quick {
		window = 3 * time.Second
	}
	nodes := ingestNodes(quick)
	interval := time.Duration(float64(nodes) / float64(rate) * float64(time.Second))
	staleAfter := 3 * interval

	dir, cleanup, err := tempDir("ingest")
	if err != nil {
		return err
	}
	defer cleanup()
	log, logs := quietLogger()
	defer noteLogs(r, fmt.Sprintf("ingest at %d/s", rate), logs)
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

	var stored, stale atomic.Int64
	var staleNodes sync.Map
	ws := &watchStore{Store: st, onLease: func(node string, heartbeat, isStale bool) {
		if isStale {
			if _, dup := staleNodes.LoadOrStore(node, true); !dup {
				stale.Add(1)
			}
			return
		}
		stored.Add(1)
	}}
	d := db.New(ws, nil)
	ids, err := benchNodes(ctx, d, "ingest", nodes)
	if err != nil {
		return fmt.Errorf("node records: %w", err)
	}
	if err := q.Ensure(ctx, queue.Status); err != nil {
		return err
	}

	sendToStored, recvToAck := &latencies{}, &latencies{}
	bs := &batch.Service{DB: d, Queue: q, Log: log}
	cond := &conductor.Conductor{DB: d, Batches: bs, Queue: newTimedQueue(q, recvToAck), Log: log,
		Metrics: &ingestMetrics{lat: sendToStored}, StaleAfter: staleAfter}
	chk := &checker.Checker{DB: d, Batches: bs, Launcher: &jobs.Launcher{DB: d, Log: log}, Log: log,
		StaleAfter: staleAfter, Interval: time.Second}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, fn := range []func(context.Context) error{cond.Run, chk.Run} {
		wg.Add(1)
		go func() { defer wg.Done(); _ = fn(rctx) }()
	}
	defer func() { cancel(); wg.Wait() }()

	// The generator sends what is due every 5 ms, round-robin over the nodes, in sends of
	// up to 100 bodies as the fleet's senders batch them.
	gen := &hbGen{ids: ids, seq: make([]uint64, len(ids))}
	var sent atomic.Int64
	genCtx, stopGen := context.WithCancel(rctx)
	genDone := make(chan error, 1)
	go func() { genDone <- gen.run(genCtx, q, rate, &sent) }()

	warm := interval + time.Second
	total := warm + window
	b := bar(int(total/time.Second), fmt.Sprintf("ingest at %d/s: seconds", rate))
	finished := make(chan struct{})
	t0 := time.Now()
	stopBar := follow(ctx, b, func() int { return int(time.Since(t0) / time.Second) }, finished)

	// Warm-up: every node heartbeats once, so the conductor knows them all.
	select {
	case <-time.After(warm):
	case <-ctx.Done():
		stopBar()
		stopGen()
		return ctx.Err()
	}
	sendToStored.reset()
	recvToAck.reset()
	sent0, stored0, cpu0, w0 := sent.Load(), stored.Load(), cpuTime(), time.Now()
	select {
	case <-time.After(window):
	case <-ctx.Done():
	}
	w := time.Since(w0)
	sentW, storedW, cpuW := sent.Load()-sent0, stored.Load()-stored0, cpuTime()-cpu0
	p50, p99 := sendToStored.ms(0.5), sendToStored.ms(0.99)
	r50, r99 := recvToAck.ms(0.5), recvToAck.ms(0.99)
	stopGen()
	if err := <-genDone; err != nil && ctx.Err() == nil {
		stopBar()
		return fmt.Errorf("generator: %w", err)
	}
	close(finished)
	stopBar()

	// What was sent and not yet stored when the window closed is the backlog.
	drain0 := time.Now()
	want := sent.Load()
	_ = waitFor(ctx, 60*time.Second, 20*time.Millisecond, func() (bool, error) { return stored.Load() >= want, nil })
	drain := time.Since(drain0)

	r.setup("3", "%d nodes' heartbeats (as agents encode them: seq, services, metrics) sent to the embedded status queue at the offered rate "+
		"(size = heartbeats/s; each node every %d/rate s) for a %v window after a warm-up cycle; the real conductor (32 workers, a lease "+
		"written per heartbeat, as in `straas up`) on the embedded store; the checker ticking every second with stale = 3 intervals. "+
		"Send-to-stored: the agent's timestamp to the lease written; receive-to-ack: the conductor's receive to its ack (after the write)",
		nodes, nodes, window)
	r.add("3", rate, "offered", float64(sentW)/w.Seconds(), "/s")
	r.add("3", rate, "stored", float64(storedW)/w.Seconds(), "/s")
	r.add("3", rate, "send-to-stored p50", p50, "ms")
	r.add("3", rate, "send-to-stored p99", p99, "ms")
	r.add("3", rate, "receive-to-ack p50", r50, "ms")
	r.add("3", rate, "receive-to-ack p99", r99, "ms")
	r.add("3", rate, "false stale flags", float64(stale.Load()), "nodes")
	r.add("3", rate, "backlog drain", drain.Seconds(), "s")
	if storedW > 0 {
		per := float64(cpuW.Microseconds()) / float64(storedW)
		r.add("3", rate, "CPU per heartbeat", per, "µs")
		// What the machine's cores could ingest if this process had them to itself (the
		// bench machine is shared; the CPU per heartbeat holds still when it is busy).
		r.add("3", rate, fmt.Sprintf("CPU-bound ceiling on %d CPUs", runtime.NumCPU()), float64(runtime.NumCPU())*1e6/per, "/s")
	}
	return nil
}

// hbGen produces heartbeats round-robin over nodes.
type hbGen struct {
	ids  []string
	seq  []uint64
	next int
}

func (g *hbGen) body() ([]byte, error) {
	i := g.next
	g.next = (g.next + 1) % len(g.ids)
	g.seq[i]++
	return agentproto.Encode(agentproto.Envelope{Type: agentproto.TypeHeartbeat, Node: g.ids[i], At: time.Now().UTC(),
		Heartbeat: &agentproto.Heartbeat{Seq: g.seq[i], Services: map[string]string{"zookeeper": "running"},
			Metrics:   map[string]float64{"cpu": 12.5, "mem": 40.1, "disk": 22.0},
			Installed: "3.4.6", ConfigRef: "cfg-1", ScriptsRef: "v1"}})
}

// run produces what is due every 5 ms and hands it to four senders, so that one send
// waiting for its fsync does not hold the others back.
func (g *hbGen) run(ctx context.Context, q queue.Queue, rate int, sent *atomic.Int64) error {
	batches := make(chan [][]byte, 256)
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if err := q.Send(ctx, queue.Status, b...); err != nil {
					if ctx.Err() == nil {
						errc <- err
					}
					return
				}
				sent.Add(int64(len(b)))
			}
		}()
	}
	err := g.produce(ctx, rate, batches)
	close(batches)
	wg.Wait()
	select {
	case e := <-errc:
		return e
	default:
		return err
	}
}

func (g *hbGen) produce(ctx context.Context, rate int, batches chan<- [][]byte) error {
	start := time.Now()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	var made int64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		due := int64(time.Since(start).Seconds()*float64(rate)) - made
		for due > 0 {
			n := min(due, 100)
			bodies := make([][]byte, n)
			for i := range bodies {
				b, err := g.body()
				if err != nil {
					return err
				}
				bodies[i] = b
			}
			select {
			case batches <- bodies:
			case <-ctx.Done():
				return nil
			}
			made += n
			due -= n
		}
	}
}
