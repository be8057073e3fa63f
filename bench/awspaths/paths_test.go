// Package awspaths is scenario 8 of the bench (go run ./bench): the same store and
// queue port calls through the AWS adapters (DynamoDB, SQS) on the local endpoint of
// test/awsendpoint (moto) and through the embedded adapters (bbolt), timed side by side.
// The bench runs it as
//
//	STRAAS_BENCH_OUT=/tmp/x.json go test ./bench/awspaths -run '^$' -bench Paths -benchtime 1x
//
// and reads the file. Without -bench the package has nothing to run and starts nothing.
package awspaths

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/boltq"
	"github.com/straas/straas/shared/queue/sqsq"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/bolt"
	"github.com/straas/straas/shared/store/dynamo"
	"github.com/straas/straas/test/awsendpoint"
)

// Environment read by BenchmarkPaths.
const (
	EnvOut   = "STRAAS_BENCH_OUT"   // where the measurements go (JSON)
	EnvQuick = "STRAAS_BENCH_QUICK" // "1": fewer calls
)

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run()) // nothing to measure: no endpoint needed
	}
	os.Exit(awsendpoint.Main(m))
}

// Measurement is one port call timed on one adapter at one concurrency.
type Measurement struct {
	Op          string  `json:"op"`
	Adapter     string  `json:"adapter"` // embedded or aws
	Concurrency int     `json:"concurrency"`
	Calls       int     `json:"calls"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	PerSecond   float64 `json:"per_second"`
}

// Report is what the benchmark writes.
type Report struct {
	Endpoint     string        `json:"endpoint"`
	Moto         bool          `json:"moto"`
	Measurements []Measurement `json:"measurements"`
}

func BenchmarkPaths(b *testing.B) {
	out := os.Getenv(EnvOut)
	calls := 200
	if os.Getenv(EnvQuick) == "1" {
		calls = 40
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cfg := awsendpoint.Config(b)
	table := awsendpoint.Name("straas-bench")
	if err := dynamo.CreateTable(ctx, cfg, table); err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := dynamo.DeleteTable(context.Background(), cfg, table); err != nil {
			b.Errorf("delete table: %v", err)
		}
	}()
	dir := b.TempDir()
	bs, err := bolt.Open(filepath.Join(dir, "store.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer bs.Close()
	bq, err := boltq.Open(filepath.Join(dir, "queue.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer bq.Close()
	sq := sqsq.New(cfg, sqsq.Options{})
	qname := awsendpoint.Name("straas-bench")
	defer func() {
		if err := sq.Remove(context.Background(), qname); err != nil {
			b.Errorf("remove queue: %v", err)
		}
	}()

	adapters := []struct {
		name string
		s    store.Store
		q    queue.Queue
	}{
		{"embedded", bs, bq},
		{"aws", dynamo.New(cfg, table, dynamo.Options{}), sq},
	}
	rep := Report{Endpoint: awsendpoint.Endpoint(), Moto: awsendpoint.Moto()}
	for _, conc := range []int{1, 8} {
		for _, a := range adapters {
			ms, err := measure(ctx, a.name, a.s, a.q, qname, conc, calls)
			if err != nil {
				b.Fatalf("%s at concurrency %d: %v", a.name, conc, err)
			}
			rep.Measurements = append(rep.Measurements, ms...)
		}
	}
	raw, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		b.Fatal(err)
	}
	if out == "" {
		b.Logf("%s", raw)
		return
	}
	if err := os.WriteFile(out, raw, 0o644); err != nil {
		b.Fatal(err)
	}
}

// measure times each port call calls times, spread over conc goroutines.
func measure(ctx context.Context, adapter string, s store.Store, q queue.Queue, qname string, conc, calls int) ([]Measurement, error) {
	if err := q.Ensure(ctx, qname); err != nil {
		return nil, err
	}
	prefix := fmt.Sprintf("c%d", conc)
	// A partition of 20 records for list, and one record per caller for get/update.
	for i := 0; i < 20; i++ {
		r, err := store.Encode("bench", fmt.Sprintf("%s-list-%02d", prefix, i), map[string]any{"i": i, "pad": "x"})
		if err != nil {
			return nil, err
		}
		r.Index = map[string]store.IndexKey{store.IdxParent: {Part: prefix + "-parent", Sort: fmt.Sprintf("%02d", i)}}
		if err := s.Write(ctx, store.Put(r, store.Any)); err != nil {
			return nil, err
		}
	}
	rec := func(id string, v int) store.Record {
		r, _ := store.Encode("bench", id, map[string]any{"node_id": id, "seq": v, "services": map[string]string{"zookeeper": "running"}})
		return r
	}
	for w := 0; w < conc; w++ {
		if err := s.Write(ctx, store.Put(rec(fmt.Sprintf("%s-rec-%d", prefix, w), 0), store.Any)); err != nil {
			return nil, err
		}
	}
	ops := []struct {
		name string
		call func(w, i int) error
	}{
		{"store put", func(w, i int) error {
			return s.Write(ctx, store.Put(rec(fmt.Sprintf("%s-put-%d-%d", prefix, w, i), i), store.Any))
		}},
		{"store get", func(w, i int) error {
			_, err := s.Get(ctx, "bench", fmt.Sprintf("%s-rec-%d", prefix, w))
			return err
		}},
		{"store update (conditional)", func(w, i int) error {
			_, err := store.Update(ctx, s, "bench", fmt.Sprintf("%s-rec-%d", prefix, w), func(r *store.Record) error {
				r.Data = rec(r.ID, i).Data
				return nil
			})
			return err
		}},
		{"store list (20 by index)", func(w, i int) error {
			recs, _, err := s.List(ctx, "bench", store.Query{Index: store.IdxParent, Part: prefix + "-parent", Limit: 20})
			if err == nil && len(recs) != 20 {
				err = fmt.Errorf("list returned %d records, want 20", len(recs))
			}
			return err
		}},
		{"queue send", func(w, i int) error {
			return q.Send(ctx, qname, []byte(fmt.Sprintf(`{"v":1,"type":"heartbeat","node":"n%d","seq":%d}`, w, i)))
		}},
		{"queue receive+ack", func(w, i int) error {
			msgs, err := q.Receive(ctx, qname, 1, 0)
			if err != nil || len(msgs) == 0 {
				return err // the sends above left calls messages: an empty receive is rare and fine
			}
			return q.Ack(ctx, qname, msgs[0].Receipt)
		}},
	}
	var out []Measurement
	for _, op := range ops {
		m, err := timeCalls(op.call, conc, calls)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op.name, err)
		}
		m.Op, m.Adapter, m.Concurrency = op.name, adapter, conc
		out = append(out, m)
	}
	return out, nil
}

func timeCalls(call func(w, i int) error, conc, calls int) (Measurement, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var first error
	per := max(calls/conc, 1)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				t0 := time.Now()
				err := call(w, i)
				d := time.Since(t0)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				lat = append(lat, d)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil {
		return Measurement{}, first
	}
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))]) / float64(time.Millisecond) }
	return Measurement{Calls: len(lat), P50ms: q(0.5), P99ms: q(0.99), PerSecond: float64(len(lat)) / elapsed.Seconds()}, nil
}
