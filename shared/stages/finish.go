package stages

import (
	"context"
	"fmt"

	"github.com/straas/straas/shared/model"
)

// FinishComponent marks the component's nodes and the component ACTIVE and lets the
// components that depend on it go on.
func (e *Env) FinishComponent(ctx context.Context, in Ref) (Empty, error) {
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	nodes, err := e.actionNodes(ctx, in.ActionID, c.ID)
	if err != nil {
		return Empty{}, err
	}
	for _, n := range nodes {
		if _, err := e.DB.UpdateNode(ctx, n.ID, func(x *model.Node) error {
			x.Status, x.InstalledVersion, x.Error = model.NodeActive, c.Version, ""
			if x.Config != nil {
				x.ConfigRef = x.Config.Ref
			}
			return nil
		}); err != nil {
			return Empty{}, err
		}
	}
	if _, err := e.DB.UpdateComponent(ctx, c.ID, func(x *model.Component) error { x.Status = model.StatusActive; return nil }); err != nil {
		return Empty{}, err
	}
	e.stageDone(ctx, in.ActionID, c.ID, StageDone, "", nil)
	e.emit(ctx, model.Event{Type: "component.active", TopologyID: c.TopologyID, ComponentID: c.ID, ActionID: in.ActionID, Tenant: c.Tenant,
		Message: fmt.Sprintf("component %s (%s %s) is ACTIVE with %d nodes", c.Name, c.Type, c.Version, len(nodes))})
	return Empty{}, e.releaseDependents(ctx, in.ActionID, c.ID)
}

// StatesError is the {"Error", "Cause"} a Catch puts in the state's input.
type StatesError struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// FailIn is the input of FailComponent.
type FailIn struct {
	Ref
	Error StatesError `json:"error"`
}

// FailComponent records where and why a component failed, and fails its dependents.
func (e *Env) FailComponent(ctx context.Context, in FailIn) (Empty, error) {
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	stage := ""
	stages, err := e.DB.Stages(ctx, in.ActionID)
	if err != nil {
		return Empty{}, err
	}
	for _, s := range stages {
		if s.ComponentID == c.ID && s.Status == "RUNNING" {
			stage = s.Name
			e.stageDone(ctx, in.ActionID, c.ID, s.Name, "FAILED", nil, in.Error.Cause)
		}
	}
	if stage == "" {
		for _, s := range stages {
			if s.ComponentID == c.ID && s.Status == "FAILED" {
				stage = s.Name
			}
		}
	}
	cause := in.Error.Cause
	if in.Error.Error == "States.Timeout" {
		cause = fmt.Sprintf("stage %s timed out: %s", stage, cause)
	}
	if _, err := e.DB.UpdateComponent(ctx, c.ID, func(x *model.Component) error { x.Status = model.StatusFailed; return nil }); err != nil {
		return Empty{}, err
	}
	if _, err := e.DB.UpdateAction(ctx, in.ActionID, func(a *model.Action) error {
		// The first failure is the cause; dependents failing because of it are consequences.
		if a.Error == nil || (a.Error.Error == "DependencyFailed" && in.Error.Error != "DependencyFailed") {
			a.Error = &model.ActionError{Component: c.Name, Stage: stage, Error: in.Error.Error, Cause: cause}
		}
		return nil
	}); err != nil {
		return Empty{}, err
	}
	e.stageDone(ctx, in.ActionID, c.ID, StageDone, "FAILED", nil, fmt.Sprintf("%s failed at %s: %s", c.Name, stage, cause))
	e.emit(ctx, model.Event{Type: "component.failed", Level: model.LevelError, TopologyID: c.TopologyID, ComponentID: c.ID,
		ActionID: in.ActionID, Tenant: c.Tenant, Message: fmt.Sprintf("component %s failed at stage %s: %s: %s", c.Name, stage, in.Error.Error, cause)})
	return Empty{}, e.releaseDependents(ctx, in.ActionID, c.ID)
}

// JobIn is the input of FinishJob: the execution input, plus an error if start failed.
type JobIn struct {
	Ref
	Error *StatesError `json:"error,omitempty"`
}

// JobOut is the job's verdict.
type JobOut struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	Cause  string `json:"cause,omitempty"`
}

// FinishJob decides the topology's status from its components' and closes the action.
func (e *Env) FinishJob(ctx context.Context, in JobIn) (JobOut, error) {
	comps, err := e.DB.Components(ctx, in.TopologyID)
	if err != nil {
		return JobOut{}, err
	}
	failed := 0
	for _, c := range comps {
		if c.Status != model.StatusActive {
			failed++
		}
	}
	out := JobOut{Status: model.ActionSucceeded}
	topo := model.StatusActive
	if failed > 0 || in.Error != nil {
		out.Status, topo = model.ActionFailed, model.StatusFailed
	}
	a, err := e.DB.UpdateAction(ctx, in.ActionID, func(a *model.Action) error {
		now := e.DB.Now()
		a.Status, a.FinishedAt = out.Status, &now
		if out.Status == model.ActionFailed && a.Error == nil {
			a.Error = &model.ActionError{Error: "JobFailed", Cause: fmt.Sprintf("%d of %d components failed", failed, len(comps))}
			if in.Error != nil {
				a.Error = &model.ActionError{Stage: StageStart, Error: in.Error.Error, Cause: in.Error.Cause}
			}
		}
		return nil
	})
	if err != nil {
		return JobOut{}, err
	}
	if out.Status == model.ActionFailed {
		out.Error, out.Cause = a.Error.Error, a.Error.Cause
		if a.Error.Component != "" {
			out.Cause = fmt.Sprintf("component %s failed at %s: %s", a.Error.Component, a.Error.Stage, a.Error.Cause)
		}
	}
	t, err := e.DB.UpdateTopology(ctx, in.TopologyID, func(t *model.Topology) error {
		if t.Status == model.StatusCreating || t.Status == model.StatusUpdating {
			t.Status = topo
		}
		return nil
	})
	if err != nil {
		return JobOut{}, err
	}
	lvl := model.LevelInfo
	if out.Status == model.ActionFailed {
		lvl = model.LevelError
	}
	e.emit(ctx, model.Event{Type: "topology." + map[bool]string{true: "active", false: "failed"}[out.Status == model.ActionSucceeded],
		Level: lvl, TopologyID: t.ID, ActionID: in.ActionID, Tenant: t.Tenant,
		Message: fmt.Sprintf("topology %s is %s%s", t.Name, t.Status, map[bool]string{true: "", false: ": " + out.Cause}[out.Cause == ""])})
	return out, nil
}

func (e *Env) emit(ctx context.Context, ev model.Event) {
	if err := e.DB.Emit(ctx, ev); err != nil {
		e.Log.Warn("record event", "type", ev.Type, "err", err)
	}
}
