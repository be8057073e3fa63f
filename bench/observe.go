package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/store"
)

// watchStore passes everything through to the store and reports each lease it stored:
// the node, whether the lease came from a heartbeat (not a hello, whose lease has seq 0)
// and whether the checker flagged it stale. It looks at the JSON bytes rather than
// decoding them, to cost the measured process little.
type watchStore struct {
	store.Store
	onLease func(node string, heartbeat, stale bool)
}

var (
	helloSeq  = []byte(`"seq":0,`)
	staleFlag = []byte(`"stale":true`)
)

func (w *watchStore) Write(ctx context.Context, ops ...store.Op) error {
	if err := w.Store.Write(ctx, ops...); err != nil {
		return err
	}
	if w.onLease == nil {
		return nil
	}
	for _, op := range ops {
		if !op.Delete && op.Record.Kind == db.KindLease {
			d := op.Record.Data
			w.onLease(op.Record.ID, !bytes.Contains(d, helloSeq), bytes.Contains(d, staleFlag))
		}
	}
	return nil
}

// timedQueue records, for the conductor's queue, how long each message took from its
// receive to its acknowledgement (which follows its lease being stored).
type timedQueue struct {
	queue.Queue
	lat *latencies

	mu sync.Mutex
	at map[string]time.Time // receipt -> received
}

func newTimedQueue(q queue.Queue, lat *latencies) *timedQueue {
	return &timedQueue{Queue: q, lat: lat, at: map[string]time.Time{}}
}

func (t *timedQueue) Receive(ctx context.Context, name string, max int, wait time.Duration) ([]queue.Message, error) {
	msgs, err := t.Queue.Receive(ctx, name, max, wait)
	if len(msgs) > 0 {
		now := time.Now()
		t.mu.Lock()
		for _, m := range msgs {
			t.at[m.Receipt] = now
		}
		t.mu.Unlock()
	}
	return msgs, err
}

func (t *timedQueue) Ack(ctx context.Context, name string, receipts ...string) error {
	err := t.Queue.Ack(ctx, name, receipts...)
	now := time.Now()
	t.mu.Lock()
	for _, r := range receipts {
		if at, ok := t.at[r]; ok {
			delete(t.at, r)
			t.lat.add(now.Sub(at))
		}
	}
	t.mu.Unlock()
	return err
}

// ingestMetrics is the conductor's metrics sink: send-to-stored latency of heartbeats.
type ingestMetrics struct {
	lat    *latencies
	writes func()
}

func (m *ingestMetrics) Message(string) {}
func (m *ingestMetrics) LeaseWrite() {
	if m.writes != nil {
		m.writes()
	}
}
func (m *ingestMetrics) IngestLatency(d time.Duration) {
	if m.lat != nil {
		m.lat.add(d)
	}
}

// benchNodes writes n node records of one component (ids <prefix>-00001, ...) with
// concurrent writers, so that the conductor knows the nodes.
func benchNodes(ctx context.Context, d *db.DB, prefix string, n int) ([]string, error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%05d", prefix, i+1)
	}
	now := d.Now()
	err := parallel(ctx, 64, n, func(i int) error {
		node := &model.Node{ID: ids[i], Name: ids[i], TopologyID: prefix + "-topology", ComponentID: prefix + "-component",
			Tenant: "admin", Role: "zookeeper", Index: i + 1, Status: model.NodeActive, AvailabilityZone: "az1",
			Flavor: "small", CreatedAt: now, UpdatedAt: now}
		r, err := db.NodeRecord(node)
		if err != nil {
			return err
		}
		return d.S.Write(ctx, store.Put(r, store.Any))
	})
	return ids, err
}

// parallel runs fn(0..n-1) on w goroutines; the first error stops the rest.
func parallel(ctx context.Context, w, n int, fn func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var first error
	next := make(chan int)
	var wg sync.WaitGroup
	for k := 0; k < w; k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// quietLogger returns a logger that only counts warnings (see logCounter).
func quietLogger() (*slog.Logger, *logCounter) {
	h := newLogCounter()
	return slog.New(h), h
}

// tempDir makes a scratch directory for a job and returns its remover.
func tempDir(name string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "straas-bench-"+name+"-")
	if err != nil {
		return "", nil, err
	}
	return dir, func() { _ = os.RemoveAll(dir) }, nil
}
