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
		"config change: a commit of the Kafka user.json changing log_retention_hours (restart_required), then PUT /straas/v1.0/components/{id}/tree/{ref}?parallel=P "+
		"of the Kafka component at its topology's config branch (every broker configured, restarted and validated; P = 1, then %d); each timed from the PUT until its action SUCCEEDED", n, parallelChange)
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
	// timed runs an operation and waits for its action; it returns the action and the
	// answer's plan (for a config change) and records the time under what.
	timed := func(what, method, path string, body any) (*plannedAnswer, float64, error) {
		start := time.Now()
		var out plannedAnswer
		if _, err := s.c.Do(ctx, method, path, body, &out); err != nil {
			return nil, 0, fmt.Errorf("%s: %w", what, err)
		}
		if out.Action.ID == "" {
			return nil, 0, fmt.Errorf("%s: no action in the answer of %s %s", what, method, path)
		}
		a, err := s.waitAction(ctx, out.Action.ID, 10*time.Minute, nil)
		if err != nil {
			return nil, 0, err
		}
		if a.Status != model.ActionSucceeded {
			return nil, 0, fmt.Errorf("%s: %s", what, actionFailure(a))
		}
		took := time.Since(start).Seconds()
		r.add("6", n, what, took, "s")
		return &out, took, nil
	}
	node := kafka.Nodes[len(kafka.Nodes)/2]
	if _, _, err := timed("replace one node", "PUT", api.Prefix+"/nodes/"+url.PathEscape(node.ID), map[string]any{}); err != nil {
		return err
	}
	// A config change that changes every broker's configuration: a user.json commit of a
	// restart_required option, then the apply (rolling: configure, restart, validate per
	// node), one node at a time and then parallelChange at once.
	userFile := api.Prefix + "/configurations/tree/" + url.PathEscape(t.ConfigBranch) + "/app/kafka/" + kafka.Version + "/user.json"
	apply := api.Prefix + "/components/" + url.PathEscape(kafka.ID) + "/tree/" + url.PathEscape(t.ConfigBranch) + "?ignore_windows=true"
	for i, par := range []int{1, parallelChange} {
		hours := 72 - 24*i // a different value each time: every node changes
		content := fmt.Sprintf(`{"type":"ini","content":[{"section":"kafka","options":[{"key":"log_retention_hours","value":%d}]}]}`, hours)
		if _, err := s.c.Do(ctx, "PUT", userFile, map[string]any{"content": content, "message": "bench: retention " + fmt.Sprint(hours) + "h"}, nil); err != nil {
			return fmt.Errorf("commit user.json: %w", err)
		}
		what := fmt.Sprintf("config change, %d node(s) at once", par)
		out, took, err := timed(what, "PUT", fmt.Sprintf("%s&parallel=%d", apply, par), nil)
		if err != nil {
			return err
		}
		if out.Plan.ToRoll < n {
			return fmt.Errorf("%s: the plan rolls %d nodes, want all %d brokers (plan: %+v)", what, out.Plan.ToRoll, n, out.Plan)
		}
		r.add("6", n, fmt.Sprintf("nodes restarted (parallel %d)", par), float64(out.Plan.ToRestart), "nodes")
		if par == 1 {
			r.add("6", n, "per node rolled one at a time", 1000*took/float64(out.Plan.ToRoll), "ms")
		}
	}
	return nil
}

// parallelChange is how many nodes the second config change rolls at once.
const parallelChange = 10

// plannedAnswer is the answer of an operation: its action, and a config change's plan.
type plannedAnswer struct {
	Action client.ActionRef `json:"action"`
	Plan   struct {
		ToRoll    int `json:"nodes_to_roll"`
		ToRestart int `json:"nodes_to_restart"`
		Parallel  int `json:"parallel"`
	} `json:"plan"`
}
