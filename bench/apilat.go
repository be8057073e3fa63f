package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/deps"
	"github.com/straas/straas/shared/model"
)

const apiClients = 50

// runAPI measures scenario 7 with t topologies in the store (the size): 50 concurrent
// clients, each with its own keep-alive connection, call list, then show, then create
// for a while; latency is from request to response.
func runAPI(ctx context.Context, r *report, t int, quick bool) error {
	dur := 5 * time.Second
	if quick {
		dur = 1500 * time.Millisecond
	}
	s, err := startSystem(ctx, deps.Config{CNs: (t+apiClients*8)/24 + 4, HeartbeatSeconds: 10})
	if err != nil {
		return err
	}
	defer s.stop()
	defer noteLogs(r, "the control plane", s.logs)

	// The store's contents: t one-node topologies, created through the API.
	// A creation that does not finish in two minutes is left behind (and reported): the
	// figure is the API's latency, which the rest of the store serves as well.
	ids := make([]string, t)
	b := bar(t, fmt.Sprintf("api: creating %d topologies", t))
	var made atomic.Int64
	var stuckMu sync.Mutex
	var stuck []string
	err = parallel(ctx, 16, t, func(i int) error {
		tp, ref, err := s.c.CreateTopology(ctx, singleBody(fmt.Sprintf("api-%04d", i), "az1", 1))
		if err != nil {
			return err
		}
		a, err := s.waitAction(ctx, ref.ID, 2*time.Minute, nil)
		if err != nil && ctx.Err() == nil {
			stuckMu.Lock()
			stuck = append(stuck, err.Error())
			stuckMu.Unlock()
			return nil
		}
		if err != nil {
			return err
		}
		if a.Status != model.ActionSucceeded {
			return fmt.Errorf("create %s: %s", tp.Name, actionFailure(a))
		}
		ids[i] = tp.ID
		_ = b.Set(int(made.Add(1)))
		return nil
	})
	_ = b.Finish()
	if err != nil {
		return fmt.Errorf("populate: %w", err)
	}
	if len(stuck) > 0 {
		r.add("7", t, "creations stuck", float64(len(stuck)), "")
		r.note("with %d topologies: %d of the creations did not finish in 2 min, e.g. %s", t, len(stuck), stuck[0])
		if len(stuck) == t {
			return fmt.Errorf("no creation finished")
		}
		live := ids[:0]
		for _, id := range ids {
			if id != "" {
				live = append(live, id)
			}
		}
		ids = live
	}

	var seq atomic.Int64
	ops := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"list", func(ctx context.Context) error {
			_, err := s.c.Raw(ctx, "GET", api.Prefix+"/topologies", nil)
			return err
		}},
		{"show", func(ctx context.Context) error {
			_, err := s.c.Raw(ctx, "GET", api.Prefix+"/topologies/"+ids[rand.IntN(len(ids))], nil)
			return err
		}},
		{"create", func(ctx context.Context) error {
			_, _, err := s.c.CreateTopology(ctx, singleBody(fmt.Sprintf("api-new-%05d", seq.Add(1)), "az1", 1))
			return err
		}},
	}
	for _, op := range ops {
		lat := &latencies{}
		var failed atomic.Int64
		var firstErr atomic.Value
		deadline := time.Now().Add(dur)
		limit := int64(-1)
		if op.name == "create" {
			limit = apiClients * 8 // each create boots a VM: keep the cloud's size bounded
		}
		var count atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for c := 0; c < apiClients; c++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) && ctx.Err() == nil {
					if limit >= 0 && count.Add(1) > limit {
						return
					}
					t0 := time.Now()
					if err := op.call(ctx); err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						continue
					}
					lat.add(time.Since(t0))
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		r.add("7", t, op.name+" p50", lat.ms(0.5), "ms")
		r.add("7", t, op.name+" p99", lat.ms(0.99), "ms")
		r.add("7", t, op.name+" rate", float64(lat.len())/elapsed.Seconds(), "req/s")
		if f := failed.Load(); f > 0 {
			r.add("7", t, op.name+" errors", float64(f), "")
			r.note("%s with %d topologies: %d errors, first: %v", op.name, t, f, firstErr.Load())
		}
	}
	r.setup("7", "`straas up` in-process with size = topologies in the store (one node each, created through the API first); "+
		"%d concurrent clients with keep-alive connections, an admin token; for %v each: GET /topologies (list), "+
		"GET /topologies/{id} (show, random), then POST /topologies (create, 1-node, 202; at most %d)", apiClients, dur, apiClients*8)
	return nil
}
