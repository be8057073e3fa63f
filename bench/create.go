package main

import (
	"context"
	"fmt"
	"time"

	"github.com/straas/straas/shared/asl"
	"github.com/straas/straas/shared/deps"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/workflow"
)

// createSizes are the topologies of scenario 5, in nodes.
func createSizes(quick bool) []int {
	if quick {
		return []int{10, 100}
	}
	return []int{10, 100, 1000}
}

// runCreate measures scenario 5: topologies of 10, 100 (and 1,000) nodes created through
// the API of the embedded control plane, each by the real creation workflow on the mock
// fleet, one after the other on one system whose CNs fit them all.
func runCreate(ctx context.Context, r *report, _ int, quick bool) error {
	ns := createSizes(quick)
	total := 0
	for _, n := range ns {
		total += n
	}
	cns := total/24 + 4 // 32 small VMs fit a default CN: room to spare
	s, err := startSystem(ctx, deps.Config{CNs: cns, HeartbeatSeconds: 10})
	if err != nil {
		return err
	}
	defer s.stop()
	defer noteLogs(r, "the control plane", s.logs)
	seen := map[string]bool{}
	for _, n := range ns {
		name := fmt.Sprintf("create-%d", n)
		cpu0 := cpuTime()
		start := time.Now()
		t, ref, err := s.c.CreateTopology(ctx, clusterBody(name, "az1", n))
		if err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		accepted := time.Since(start)
		tick, done := s.progress(ctx, fmt.Sprintf("create %d nodes", n), ref.ID)
		a, err := s.waitAction(ctx, ref.ID, 10*time.Minute, tick)
		done()
		if err != nil {
			return err
		}
		if a.Status != model.ActionSucceeded {
			return fmt.Errorf("create %s: %s", name, actionFailure(a))
		}
		// The action's success is recorded a moment before the topology's status.
		var topo model.Topology
		if err := waitFor(ctx, time.Minute, 10*time.Millisecond, func() (bool, error) {
			var err error
			topo, _, err = s.e.DB.Topology(ctx, t.ID)
			return err == nil && topo.Status != model.StatusCreating, err
		}); err != nil {
			return fmt.Errorf("create %s: action succeeded, topology still %s: %w", name, topo.Status, err)
		}
		elapsed := time.Since(start)
		cpu := cpuTime() - cpu0
		if topo.Status != model.StatusActive {
			return fmt.Errorf("create %s: action succeeded but the topology is %s", name, topo.Status)
		}
		if got := s.activeNodes(ctx, t.ID); got != n {
			return fmt.Errorf("create %s: %d of %d nodes ACTIVE", name, got, n)
		}
		// The action succeeds in the workflow's last task; its execution ends a
		// transition or two later.
		if err := waitFor(ctx, 30*time.Second, 10*time.Millisecond, func() (bool, error) {
			x, err := s.e.Engine.Describe(ctx, a.Execution)
			return err == nil && x.Status != workflow.Running, err
		}); err != nil {
			return fmt.Errorf("execution of %s: %w", name, err)
		}
		maxEvents, execs, err := newExecutionEvents(ctx, s, seen)
		if err != nil {
			return err
		}
		r.add("5", n, "time to ACTIVE", elapsed.Seconds(), "s")
		r.add("5", n, "nodes per second", float64(n)/elapsed.Seconds(), "nodes/s")
		r.add("5", n, "POST accepted", float64(accepted.Microseconds())/1000, "ms")
		r.add("5", n, "history events per execution (max)", float64(maxEvents), "events")
		r.add("5", n, "executions", float64(execs), "")
		r.add("5", n, "CPU", cpu.Seconds(), "s")
	}
	r.setup("5", "`straas up` in-process (deps.New + Run: API, mock cloud with %d CNs of 32 cores, interpreter, conductor, checker; agents heartbeat every 10 s); "+
		"POST /straas/v1.0/topologies of a 3-node ZooKeeper plus a Kafka of size-3 brokers depending on it (flavor small), timed until the action "+
		"SUCCEEDED with every node ACTIVE; sizes run one after the other. History events: Step Functions Standard's count of the largest "+
		"execution the create ran (asl.Engine.Events), child executions included", cns)
	return nil
}

// newExecutionEvents looks at the executions that succeeded since the last call and
// returns the largest history among them and how many there were.
func newExecutionEvents(ctx context.Context, s *system, seen map[string]bool) (int, int, error) {
	most, n := 0, 0
	q := asl.ListQuery{Status: workflow.Succeeded, Limit: 500}
	for {
		xs, next, err := s.e.Engine.List(ctx, q)
		if err != nil {
			return 0, 0, err
		}
		for _, x := range xs {
			if seen[x.ID] {
				continue
			}
			seen[x.ID] = true
			c, err := s.e.Engine.Events(ctx, x.ID)
			if err != nil {
				return 0, 0, err
			}
			n++
			most = max(most, c.Total())
		}
		if next == "" {
			return most, n, nil
		}
		q.After = next
	}
}
