package main

import (
	"context"
	"fmt"
	"time"

	"github.com/straas/straas/shared/deps"
	"github.com/straas/straas/shared/model"
)

// runIdle measures scenario 9 with n nodes: `straas up` in-process with an ACTIVE
// topology of n nodes heartbeating every 10 s and nothing else to do; the process's CPU
// over a window, and how often the fleet receives on command queues (push-fed agents
// should not poll).
func runIdle(ctx context.Context, r *report, n int, quick bool) error {
	window := 20 * time.Second
	if quick {
		window = 4 * time.Second
	}
	s, err := startSystem(ctx, deps.Config{CNs: n/24 + 4, HeartbeatSeconds: 10})
	if err != nil {
		return err
	}
	defer s.stop()
	defer noteLogs(r, "the control plane", s.logs)
	_, ref, err := s.c.CreateTopology(ctx, clusterBody("idle", "az1", n))
	if err != nil {
		return err
	}
	tick, clear := s.progress(ctx, fmt.Sprintf("idle: creating %d nodes", n), ref.ID)
	a, err := s.waitAction(ctx, ref.ID, 10*time.Minute, tick)
	clear()
	if err != nil {
		return err
	}
	if a.Status != model.ActionSucceeded {
		return fmt.Errorf("create: %s", actionFailure(a))
	}
	// Let the creation's tail (acks, last heartbeats) pass.
	time.Sleep(3 * time.Second)
	st0 := s.e.Cloud.Stats().Agents
	q0, s0 := s.e.Queue.Stats(), s.e.Store.Stats()
	cpu0, t0 := cpuTime(), time.Now()
	b := bar(int(window/time.Second), "idle: measuring, seconds")
	done := make(chan struct{})
	stop := follow(ctx, b, func() int { return int(time.Since(t0) / time.Second) }, done)
	select {
	case <-time.After(window):
	case <-ctx.Done():
	}
	close(done)
	stop()
	elapsed, cpu := time.Since(t0), cpuTime()-cpu0
	st1 := s.e.Cloud.Stats().Agents
	q1, s1 := s.e.Queue.Stats(), s.e.Store.Stats()
	r.setup("9", "`straas up` in-process (deps.New + Run) with one ACTIVE topology of size nodes (3 ZooKeeper + Kafka brokers), "+
		"agents heartbeating every 10 s, nothing else running; CPU of the whole process over %v", window)
	r.add("9", n, "CPU", 100*cpu.Seconds()/elapsed.Seconds(), "% of a core")
	r.add("9", n, "CPU per node", float64(cpu.Microseconds())/elapsed.Seconds()/float64(n), "µs/s")
	r.add("9", n, "heartbeats", float64(st1.Heartbeats-st0.Heartbeats)/elapsed.Seconds(), "/s")
	r.add("9", n, "command-queue receives", float64(st1.Receives-st0.Receives)/elapsed.Seconds(), "/s")
	// Where idle CPU goes: every commit of the embedded files is a write and fdatasync.
	r.add("9", n, "queue commits", float64(q1.Batches-q0.Batches)/elapsed.Seconds(), "/s")
	r.add("9", n, "store commits", float64(s1.Batches-s0.Batches)/elapsed.Seconds(), "/s")
	if hb := st1.Heartbeats - st0.Heartbeats; hb > 0 {
		r.add("9", n, "CPU per heartbeat", float64(cpu.Microseconds())/float64(hb), "µs")
	}
	return nil
}
