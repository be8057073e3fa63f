package boltq_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/boltq"
)

func report(b *testing.B, unit string, lat []time.Duration, elapsed time.Duration) {
	b.Helper()
	if len(lat) == 0 || elapsed <= 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), unit+"/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// heartbeat is a status message stamped with its send time.
func heartbeat(node int) []byte {
	b := make([]byte, 8, 200)
	binary.BigEndian.PutUint64(b, uint64(time.Now().UnixNano()))
	return fmt.Appendf(b, `{"v":1,"type":"heartbeat","node":"n-%d","service":"running","metrics":{"cpu":0.31,"mem":0.52,"disk":0.12}}`, node)
}

func sentAt(body []byte) time.Time { return time.Unix(0, int64(binary.BigEndian.Uint64(body))) }

// statusRun drives the status queue: senders goroutines send one heartbeat per Send
// (rate > 0: paced to rate messages/s in total, else as fast as they can), consumers
// receive batches and ack them. It returns send-to-receive latencies and the elapsed time
// until every message was received.
func statusRun(b *testing.B, senders, consumers int, rate float64) ([]time.Duration, time.Duration) {
	q := openTemp(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mustEnsure(b, q, queue.Status)
	var (
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, b.N)
		received atomic.Int64
		wg       sync.WaitGroup
	)
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < consumers; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for received.Load() < int64(b.N) {
				msgs, err := q.Receive(ctx, queue.Status, queue.MaxBatch, 20*time.Millisecond)
				if err != nil {
					b.Error(err)
					return
				}
				now := time.Now()
				mu.Lock()
				for _, m := range msgs {
					lat = append(lat, now.Sub(sentAt(m.Body)))
				}
				mu.Unlock()
				received.Add(int64(len(msgs)))
				if len(msgs) > 0 {
					if err := q.Ack(ctx, queue.Status, receipts(msgs)...); err != nil {
						b.Error(err)
						return
					}
				}
			}
		}()
	}
	var sent atomic.Int64
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := sent.Add(1)
				if i > int64(b.N) {
					return
				}
				if rate > 0 { // pacing an open load, not synchronisation
					time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
				}
				if err := q.Send(ctx, queue.Status, heartbeat(s)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return lat, time.Since(start)
}

// BenchmarkStatusQueue: heartbeat ingest as fast as it goes (msgs/s, from first send to
// last receive); latencies are not reported since a saturated queue's backlog is all
// they would measure.
func BenchmarkStatusQueue(b *testing.B) {
	for _, c := range []struct{ senders, consumers int }{{64, 4}, {256, 8}} {
		b.Run(fmt.Sprintf("senders=%d/consumers=%d", c.senders, c.consumers), func(b *testing.B) {
			lat, elapsed := statusRun(b, c.senders, c.consumers, 0)
			b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "msgs/s")
		})
	}
}

// BenchmarkStatusQueuePaced: 5,000 heartbeats/s offered by 256 agents, 4 consumers:
// send-to-receive latency at the DESIGN's ingest figure.
func BenchmarkStatusQueuePaced(b *testing.B) {
	lat, elapsed := statusRun(b, 256, 4, 5000)
	report(b, "msgs", lat, elapsed)
}

// BenchmarkDispatch10k: 10,000 node queues served by one Dispatcher of 8 workers;
// commands are sent round-robin by 64 goroutines and acked by the handler.
func BenchmarkDispatch10k(b *testing.B) {
	const nodes = 10000
	q := openTemp(b)
	names := make([]string, nodes)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for i := range names {
		names[i] = queue.NodeQueue(fmt.Sprintf("%05d", i))
		wg.Add(1)
		sem <- struct{}{}
		go func() { defer wg.Done(); defer func() { <-sem }(); mustEnsure(b, q, names[i]) }()
	}
	wg.Wait()
	var (
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, b.N)
		done = make(chan struct{})
		n    atomic.Int64
	)
	d := q.NewDispatcher(func(ctx context.Context, name string, msgs []queue.Message) {
		now := time.Now()
		mu.Lock()
		for _, m := range msgs {
			lat = append(lat, now.Sub(sentAt(m.Body)))
		}
		mu.Unlock()
		if err := q.Ack(ctx, name, receipts(msgs)...); err != nil {
			b.Error(err)
		}
		if n.Add(int64(len(msgs))) == int64(b.N) {
			close(done)
		}
	}, boltq.DispatchOptions{Workers: 8})
	if err := d.Add(names...); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()
	defer func() { cancel(); <-ran }()

	b.ResetTimer()
	start := time.Now()
	var sent atomic.Int64
	for s := 0; s < 64; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := sent.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := q.Send(ctx, names[int(i)%nodes], heartbeat(int(i))); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(time.Minute):
		b.Fatalf("handled %d of %d", n.Load(), b.N)
	}
	b.ReportMetric(float64(len(lat))/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkRoundTrip: one message at a time through send, receive, ack (two commits).
func BenchmarkRoundTrip(b *testing.B) {
	q := openTemp(b)
	ctx := context.Background()
	mustEnsure(b, q, "rt")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := q.Send(ctx, "rt", heartbeat(i)); err != nil {
			b.Fatal(err)
		}
		msgs, err := q.Receive(ctx, "rt", 1, time.Second)
		if err != nil || len(msgs) != 1 {
			b.Fatalf("receive: %d, %v", len(msgs), err)
		}
		if err := q.Ack(ctx, "rt", msgs[0].Receipt); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	report(b, "roundtrips", lat, time.Since(start))
}

// BenchmarkEnsure10k: creating 10,000 node queues (with their dead-letter queues) from
// 64 goroutines, and the heap they hold once made.
func BenchmarkEnsure10k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		q := openTemp(b)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < 64; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					n := next.Add(1)
					if n > 10000 {
						return
					}
					mustEnsure(b, q, queue.NodeQueue(fmt.Sprint(n)))
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(10000/elapsed.Seconds(), "queues/s")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/10000, "heap-B/queue")
	}
}
