package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/shared/deps"
	"github.com/straas/straas/shared/model"
)

// The routes scenario 6 needs (seed 000 §4.1.1.3): replace a node, and apply a config
// ref to a component.
const (
	replaceRoute = "PUT " + api.Prefix + "/nodes/{id}"
	configRoute  = "PUT " + api.Prefix + "/components/{id}/tree/{ref}"
)

// missingRoutes lists which of the routes the API does not serve yet.
func missingRoutes() []string {
	have := map[string]bool{}
	for _, rt := range api.Routes() {
		have[rt.Method+" "+rt.Pattern] = true
	}
	var out []string
	for _, want := range []string{replaceRoute, configRoute} {
		if !have[want] {
			out = append(out, want)
		}
	}
	return out
}

// runChange measures scenario 6 on a component of n nodes: the time from PUT to the
// action's success of a node replacement (Nova delete + boot + the node configured with
// its old configuration) and of a config change applied to the whole component.
func runChange(ctx context.Context, r *report, n int, quick bool) error {
	r.setup("6", "`straas up` in-process; a topology of a 3-node ZooKeeper and an %d-node Kafka; replace: PUT /straas/v1.0/nodes/{id} of one Kafka node; "+
		"config change: PUT /straas/v1.0/components/{id}/tree/{ref} of the Kafka component at its topology's config branch; each timed until its action SUCCEEDED", n)
	if missing := missingRoutes(); len(missing) > 0 {
		r.unavailable("6", "not available yet: the API does not serve %s (the replacement and configuration-change workflows are being written); "+
			"this scenario runs as soon as api.Routes() has them", strings.Join(missing, " and "))
		return nil
	}
	s, err := startSystem(ctx, deps.Config{CNs: (n+3)/16 + 4, HeartbeatSeconds: 10})
	if err != nil {
		return err
	}
	defer s.stop()
	defer noteLogs(r, "the control plane", s.logs)
	t, ref, err := s.c.CreateTopology(ctx, clusterBody("change", "az1", n+3))
	if err != nil {
		return err
	}
	tick, done := s.progress(ctx, "change: creating the topology", ref.ID)
	a, err := s.waitAction(ctx, ref.ID, 10*time.Minute, tick)
	done()
	if err != nil {
		return err
	}
	if a.Status != model.ActionSucceeded {
		return fmt.Errorf("create: %s", actionFailure(a))
	}
	full, err := s.c.Topology(ctx, t.ID)
	if err != nil {
		return err
	}
	var kafka *client.Component
	for i := range full.Components {
		if full.Components[i].Name == "kafka" {
			kafka = &full.Components[i]
		}
	}
	if kafka == nil || len(kafka.Nodes) == 0 {
		return fmt.Errorf("no kafka nodes in topology %s", t.ID)
	}
	timed := func(what, method, path string) error {
		start := time.Now()
		var out struct {
			Action client.ActionRef `json:"action"`
		}
		if _, err := s.c.Do(ctx, method, path, map[string]any{}, &out); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if out.Action.ID == "" {
			return fmt.Errorf("%s: no action in the answer of %s %s", what, method, path)
		}
		a, err := s.waitAction(ctx, out.Action.ID, 10*time.Minute, nil)
		if err != nil {
			return err
		}
		if a.Status != model.ActionSucceeded {
			return fmt.Errorf("%s: %s", what, actionFailure(a))
		}
		r.add("6", n, what, time.Since(start).Seconds(), "s")
		return nil
	}
	node := kafka.Nodes[len(kafka.Nodes)/2]
	if err := timed("replace one node", "PUT", api.Prefix+"/nodes/"+url.PathEscape(node.ID)); err != nil {
		return err
	}
	return timed("config change of the component", "PUT", api.Prefix+"/components/"+url.PathEscape(kafka.ID)+"/tree/"+url.PathEscape(t.ConfigBranch))
}
