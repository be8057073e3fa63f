package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/shared/deps"
	"github.com/straas/straas/shared/model"
)

// system is the embedded control plane (`straas up`) running in the bench process, with
// an API client logged in as admin.
type system struct {
	e      *deps.Embedded
	c      *client.Client
	logs   *logCounter
	cancel context.CancelFunc
	done   chan error
	clean  func()
}

// startSystem runs deps.New + Run on loopback ports in a scratch directory.
func startSystem(ctx context.Context, cfg deps.Config) (*system, error) {
	dir, clean, err := tempDir("system")
	if err != nil {
		return nil, err
	}
	log, logs := quietLogger()
	cfg.DataDir, cfg.Listen, cfg.CloudListen, cfg.Logger = dir, "127.0.0.1:0", "127.0.0.1:0", log
	e, err := deps.New(ctx, cfg)
	if err != nil {
		clean()
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	s := &system{e: e, logs: logs, cancel: cancel, done: make(chan error, 1), clean: clean}
	go func() { s.done <- e.Run(rctx) }()
	select {
	case <-e.Ready():
	case err := <-s.done:
		cancel()
		clean()
		return nil, fmt.Errorf("embedded control plane: %w", err)
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
	tok, _, err := client.Login(ctx, e.CloudURL+"/identity/v3", "admin", "admin", "admin", "")
	if err != nil {
		s.stop()
		return nil, err
	}
	s.c = client.New(e.APIURL, tok)
	s.c.HTTP = &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxConnsPerHost: 256}}
	return s, nil
}

func (s *system) stop() {
	t0 := time.Now()
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
	}
	if d := time.Since(t0); d > 2*time.Second {
		fmt.Fprintf(os.Stderr, "bench: the control plane took %v to stop\n", d.Round(time.Millisecond))
	}
	s.clean()
}

// clusterBody is a topology of n nodes: a 3-node ZooKeeper and a Kafka of n-3 brokers
// depending on it (n >= 4), all of flavor small.
func clusterBody(name, az string, n int) []byte {
	comps := []map[string]any{
		{"name": "zk", "type": "zookeeper", "version": "3.4.6", "size": 3, "flavor": "small"},
		{"name": "kafka", "type": "kafka", "version": "0.10.2.1", "size": n - 3, "flavor": "small", "depends_on": []string{"zk"}},
	}
	b, _ := json.Marshal(map[string]any{"name": name, "availability_zone": az, "components": comps})
	return b
}

// singleBody is a topology of one n-node ZooKeeper.
func singleBody(name, az string, n int) []byte {
	b, _ := json.Marshal(map[string]any{"name": name, "availability_zone": az, "components": []map[string]any{
		{"name": "zk", "type": "zookeeper", "version": "3.4.6", "size": n, "flavor": "small"}}})
	return b
}

// waitAction polls the action in the store (cheaper and finer than the API) until it
// has finished; progress, if not nil, is called on every poll.
func (s *system) waitAction(ctx context.Context, id string, limit time.Duration, progress func()) (model.Action, error) {
	var a model.Action
	err := waitFor(ctx, limit, 10*time.Millisecond, func() (bool, error) {
		var err error
		a, _, err = s.e.DB.Action(ctx, id)
		if err != nil {
			return false, err
		}
		if progress != nil {
			progress()
		}
		return a.Status != model.ActionPending && a.Status != model.ActionRunning, nil
	})
	if err != nil {
		return a, fmt.Errorf("action %s (%s, %s): %w", id, a.Status, s.stagesOf(ctx, id), err)
	}
	return a, nil
}

// stagesOf says where an action is: its stages that have not succeeded.
func (s *system) stagesOf(ctx context.Context, actionID string) string {
	sts, err := s.e.DB.Stages(ctx, actionID)
	if err != nil {
		return "stages: " + err.Error()
	}
	var parts []string
	for _, st := range sts {
		if st.Status != "SUCCEEDED" {
			p := fmt.Sprintf("%s %s %s", st.Component, st.Name, st.Status)
			if st.NodesTotal > 0 {
				p += fmt.Sprintf(" %d/%d nodes", st.NodesDone, st.NodesTotal)
			}
			if st.Detail != "" {
				p += " (" + st.Detail + ")"
			}
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d stages, all succeeded", len(sts))
	}
	return "stages not done: " + strings.Join(parts, "; ")
}

// progress returns a waitAction callback that shows the action's running stages on a
// spinner (cheap: the action's stage records, polled at most every 250 ms, and only when
// progress is shown at all), and a function that clears it.
func (s *system) progress(ctx context.Context, what, actionID string) (func(), func()) {
	b := bar(-1, what)
	var last time.Time
	tick := func() {
		if !showProgress || time.Since(last) < 250*time.Millisecond {
			return
		}
		last = time.Now()
		sts, err := s.e.DB.Stages(ctx, actionID)
		if err != nil {
			return
		}
		var parts []string
		for _, st := range sts {
			if st.Status == "RUNNING" || st.Status == "WAITING" {
				p := st.Component + " " + st.Name
				if st.NodesTotal > 0 {
					p += fmt.Sprintf(" %d/%d", st.NodesDone, st.NodesTotal)
				}
				parts = append(parts, p)
			}
		}
		b.Describe(what + ": " + strings.Join(parts, ", "))
		_ = b.Add(1)
	}
	return tick, func() { _ = b.Finish() }
}

// activeNodes counts the topology's ACTIVE nodes.
func (s *system) activeNodes(ctx context.Context, topology string) int {
	ns, err := s.e.DB.TopologyNodes(ctx, topology)
	if err != nil {
		return 0
	}
	n := 0
	for _, x := range ns {
		if x.Status == model.NodeActive {
			n++
		}
	}
	return n
}

// events is the largest history, in Step Functions events, of the action's executions
// (its own and any child executions it started).
func (s *system) events(ctx context.Context, a model.Action) (total int, execs int, err error) {
	if a.Execution == "" {
		return 0, 0, fmt.Errorf("action %s has no execution", a.ID)
	}
	c, err := s.e.Engine.Events(ctx, a.Execution)
	if err != nil {
		return 0, 0, err
	}
	return c.Total(), 1, nil
}

func actionFailure(a model.Action) string {
	if a.Error == nil {
		return a.Status
	}
	return fmt.Sprintf("%s: component %s, stage %s: %s: %s", a.Status, a.Error.Component, a.Error.Stage, a.Error.Error, a.Error.Cause)
}
