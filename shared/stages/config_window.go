package stages

import (
	"context"
	"fmt"
	"time"

	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/policy/records"
)

// Maintenance windows of configuration changes (seed 001): a user's rolling change or
// upgrade is disruptive and not urgent, so it waits for the component's next window,
// the way heal and converge wait (the plan stage answers window_wait and the state
// machine's Wait state sleeps until window_until, then plans again).

// waitsForWindow reports whether the change may wait for a window: only a change its
// starter said is not urgent, and never one that follows a change of membership.
func (in *ConfigChangeIn) waitsForWindow() bool {
	if !in.WaitForWindow {
		return false
	}
	switch in.Reason {
	case ReasonApply, ReasonUpgrade, ReasonScripts:
		return true
	}
	return false
}

// configWindow decides whether the change waits: the component's windows are all
// closed and the change would roll at least one node (one that changes nothing is not
// disruptive and runs at once). Waiting shows as the running stage
// config_change/wait_window and a maintenance.deferred event, once per opening; when the
// window opens the stage ends.
func (e *Env) configWindow(ctx context.Context, req *ConfigChangeIn, run string) (PlanOut, error) {
	ops, err := records.New(e.DB).OpStates(ctx, req.TopologyID)
	if err != nil {
		return PlanOut{}, err
	}
	o := policy.NextOpening(ops.Windows(req.ComponentID), e.DB.Now())
	if o.Open {
		if s, err := e.stageOf(ctx, req.ActionID, req.ComponentID, StageConfigWindow); err == nil && s.Status == "RUNNING" {
			e.stageDone(ctx, req.ActionID, req.ComponentID, StageConfigWindow, "", nil, o.Describe())
		}
		return PlanOut{}, nil
	}
	plan, err := e.PlanConfigChange(ctx, *req, PlanOptions{})
	if err != nil {
		return PlanOut{}, err
	}
	if !plan.Changed() {
		return PlanOut{}, nil
	}
	out := PlanOut{Run: run, Nodes: []RollItem{}, WindowWait: true, WindowUntil: o.Opens.UTC().Format(time.RFC3339)}
	what := fmt.Sprintf("the configuration change of component %s (%s, %d node(s) to roll)", plan.Component, refOr(req.Ref), plan.ToRoll)
	if req.Reason == ReasonUpgrade {
		what = fmt.Sprintf("the upgrade of component %s to %s (%d node(s) to roll)", plan.Component, plan.Version, plan.ToRoll)
	}
	msg := fmt.Sprintf("%s is not urgent and waits: %s", what, o.Describe())
	if s, err := e.stageOf(ctx, req.ActionID, req.ComponentID, StageConfigWindow); err != nil || s.Status != "RUNNING" || s.Detail != msg {
		e.stageWaiting(ctx, req.ActionID, req.ComponentID, StageConfigWindow, msg)
		c, _, err := e.DB.Component(ctx, req.ComponentID)
		if err != nil {
			return PlanOut{}, err
		}
		e.emit(ctx, model.Event{Type: "maintenance.deferred", TopologyID: req.TopologyID, ComponentID: req.ComponentID,
			ActionID: req.ActionID, Tenant: c.Tenant, Message: msg, Data: map[string]any{"opens_at": out.WindowUntil, "reason": req.Reason}})
	}
	return out, nil
}
