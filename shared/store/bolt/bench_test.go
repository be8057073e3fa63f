package bolt_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/bolt"
)

// report adds throughput and latency percentiles to a benchmark's output.
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

// checkpointData is about what an interpreter checkpoint holds: state, input, token.
var checkpointData = []byte(`{"state":"Install","step":7,"input":{"topology":"t-0123456789","component":"kafka",` +
	`"nodes":["n-1","n-2","n-3"],"token":"abcdefabcdefabcdefabcdefabcdefabcdef"},"context":"` +
	strings.Repeat("x", 600) + `"}`)

var dueSorts = func() []string {
	out := make([]string, 8)
	for i := range out {
		out[i] = fmt.Sprintf("%020d", i)
	}
	return out
}()

// checkpoint is a record the size of a workflow checkpoint, in two indexes; the due
// index moves on every write, as a timer would.
func checkpoint(id string, i int) store.Record {
	return store.Record{
		Kind: "execution", ID: id,
		Index: map[string]store.IndexKey{
			store.IdxParent: {Part: "job-1"},
			store.IdxDue:    {Part: "timer", Sort: dueSorts[i%8]},
		},
		Data: checkpointData,
	}
}

// BenchmarkWriteSerial: one writer, each Write durable before the next (p50 = one commit).
func BenchmarkWriteSerial(b *testing.B) {
	s := openTemp(b)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := s.Write(ctx, store.Put(checkpoint(fmt.Sprint("e", i%1000), i), store.Any)); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	report(b, "writes", lat, time.Since(start))
}

// BenchmarkWriteParallel: 64 writers, each advancing its own execution record with
// AtVersion, as the interpreter checkpoints transitions.
func BenchmarkWriteParallel(b *testing.B) {
	for _, writers := range []int{1, 8, 16, 24, 32, 64, 256} {
		b.Run(fmt.Sprint(writers), func(b *testing.B) {
			s := openTemp(b)
			ctx := context.Background()
			var (
				mu  sync.Mutex
				all []time.Duration
				wg  sync.WaitGroup
			)
			per := max(1, b.N/writers)
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					lat := make([]time.Duration, 0, per)
					id := fmt.Sprint("exec-", w)
					for i := 0; i < per; i++ {
						r := checkpoint(id, i)
						r.Version = int64(i)
						cond := store.AtVersion
						if i == 0 {
							cond = store.Absent
						}
						t0 := time.Now()
						if err := s.Write(ctx, store.Put(r, cond)); err != nil {
							b.Error(err)
							return
						}
						lat = append(lat, time.Since(t0))
					}
					mu.Lock()
					all = append(all, lat...)
					mu.Unlock()
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			report(b, "writes", all, elapsed)
			st := s.Stats()
			if st.Batches > 0 {
				b.ReportMetric(float64(st.Requests)/float64(st.Batches), "writes/commit")
			}
		})
	}
}

func BenchmarkGet(b *testing.B) {
	s := openTemp(b)
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		if err := s.Write(ctx, store.Put(checkpoint(fmt.Sprint("e", i), i), store.Any)); err != nil {
			b.Fatal(err)
		}
	}
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var lat []time.Duration
		for i := 0; pb.Next(); i++ {
			t0 := time.Now()
			if _, err := s.Get(ctx, "execution", fmt.Sprint("e", i%1000)); err != nil {
				b.Error(err)
				return
			}
			lat = append(lat, time.Since(t0))
		}
		mu.Lock()
		all = append(all, lat...)
		mu.Unlock()
	})
	report(b, "gets", all, time.Since(start))
}

// BenchmarkListPage: one page of 100 records from an index of 10,000.
func BenchmarkListPage(b *testing.B) {
	s := openTemp(b)
	ctx := context.Background()
	var ops []store.Op
	for i := 0; i < 10000; i++ {
		r := checkpoint(fmt.Sprintf("e%05d", i), i)
		r.Index[store.IdxTopology] = store.IndexKey{Part: fmt.Sprint("t", i%10), Sort: fmt.Sprintf("%05d", i)}
		ops = append(ops, store.Put(r, store.Any))
		if len(ops) == 100 {
			if err := s.Write(ctx, ops...); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		recs, _, err := s.List(ctx, "execution", store.Query{Index: store.IdxTopology, Part: fmt.Sprint("t", i%10), Limit: 100,
			From: fmt.Sprintf("%05d", (i*37)%9000)})
		if err != nil || len(recs) != 100 {
			b.Fatalf("List: %d records, %v", len(recs), err)
		}
		lat = append(lat, time.Since(t0))
	}
	report(b, "pages", lat, time.Since(start))
}

var _ = bolt.DefaultLimit
