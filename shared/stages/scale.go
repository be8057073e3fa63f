package stages

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/policy/actions"
	"github.com/straas/straas/shared/policy/records"
)

// Scaling (statemachines/scale.asl.json): after its turn in the component's queue, a
// scale out runs the flexup workflow for the nodes to add; a scale in picks victims by
// the deletion policy and runs the flexdown workflow on each, one at a time, after the
// policy's grace period. Both are child actions.

// Stage names of a scaling.
const (
	StageScaleStart = "scale/start"
	StageScaleTurn  = "scale/wait_turn"
	StageScaleDone  = "scale/done"
)

// ScaleState is the scale workflow's state.
type ScaleState struct {
	actions.ScaleInput
	Scale *ScaleProgress `json:"scale,omitempty"`
	Error *StatesError   `json:"error,omitempty"`
}

// ScaleProgress is what the scale stages decided.
type ScaleProgress struct {
	Ready     bool     `json:"ready"`
	Direction string   `json:"direction"`
	Count     int      `json:"count"`
	Role      string   `json:"role"`
	Victims   []string `json:"victims"` // node ids, scale in
	Grace     int      `json:"grace"`   // seconds before each victim goes
	Note      string   `json:"note,omitempty"`
}

// ScaleStart decides the role and the victims, and checks the component's queue.
func (e *Env) ScaleStart(ctx context.Context, in ScaleState) (ScaleProgress, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, StageScaleStart)
	if _, err := e.DB.UpdateAction(ctx, in.ActionID, func(a *model.Action) error {
		if a.Status == model.ActionPending {
			now := e.DB.Now()
			a.Status, a.StartedAt = model.ActionRunning, &now
		}
		return nil
	}); err != nil {
		return ScaleProgress{}, err
	}
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return ScaleProgress{}, err
	}
	e.refreshFaultDomains(ctx, c.ID) // victims spread over fault domains
	p := ScaleProgress{Direction: in.Direction, Count: in.Count, Role: in.Role, Victims: []string{}}
	if p.Role == "" {
		if ti, err := e.typeInfo(ctx, c.Type); err == nil {
			p.Role = ti.FlexRole
		}
		if p.Role == "" {
			ct, err := e.Repos.ComponentType(ctx, c.Type)
			if err != nil {
				return p, err
			}
			if len(ct.Roles) != 1 {
				return p, errs.Invalidf("role", "component %s has roles %s: the scaling policy must name the role that scales", c.Name, strings.Join(ct.Roles, ", "))
			}
			p.Role = ct.Roles[0]
		}
	}
	svc := e.policyService()
	if in.Direction == policy.ScaleIn {
		del, err := svc.Spec(ctx, c.ID, policy.TypeDeletion)
		if err != nil {
			return p, err
		}
		var spec *policy.DeletionSpec
		if del != nil {
			spec = del.Deletion()
			p.Grace = spec.GracePeriod
			if !spec.Destroy() {
				p.Note = "destroy_after_deletion is false: each victim leaves the component, its server is kept (services stopped)"
			}
		}
		nodes, err := e.DB.Nodes(ctx, c.ID)
		if err != nil {
			return p, err
		}
		var cands []policy.Candidate
		for _, n := range nodes {
			if n.Status == model.NodeDeleting {
				continue
			}
			cands = append(cands, policy.Candidate{ID: n.ID, Role: n.Role, CreatedAt: n.CreatedAt,
				Healthy: n.Status == model.NodeActive, FaultDomain: n.FaultDomain})
		}
		p.Victims = spec.SelectVictims(cands, p.Role, in.Count, rand.IntN)
	}
	detail := fmt.Sprintf("%s %d %s node(s): %s", in.Direction, in.Count, p.Role, in.Cause)
	if len(p.Victims) > 0 {
		detail += "; victims " + strings.Join(p.Victims, ", ")
	}
	if p.Note != "" {
		detail += "; " + p.Note
	}
	e.stageDone(ctx, in.ActionID, in.ComponentID, StageScaleStart, "", nil, detail)
	return e.scaleTurn(ctx, in, p)
}

// ScaleTurn re-checks the component's queue.
func (e *Env) ScaleTurn(ctx context.Context, in ScaleState) (ScaleProgress, error) {
	if in.Scale == nil {
		return ScaleProgress{}, errs.Invalidf("scale", "missing")
	}
	return e.scaleTurn(ctx, in, *in.Scale)
}

func (e *Env) scaleTurn(ctx context.Context, in ScaleState, p ScaleProgress) (ScaleProgress, error) {
	ok, err := e.takeTurn(ctx, in.ActionID, in.ComponentID, StageScaleTurn, "queued behind ", []string{in.ComponentID})
	p.Ready = ok
	return p, err
}

// ScaleFinish closes a scaling: the component's new size, the action's outcome.
func (e *Env) ScaleFinish(ctx context.Context, in ScaleState) (JobOut, error) {
	svc := e.policyService()
	if err := svc.Dequeue(ctx, []string{in.ComponentID}, in.ActionID); err != nil {
		return JobOut{}, err
	}
	e.refreshFaultDomains(ctx, in.ComponentID)
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return JobOut{}, err
	}
	now := e.DB.Now()
	if err == nil {
		if _, err := records.New(e.DB).UpdateComponentState(ctx, &c, func(st *records.ComponentState) error {
			st.LastScaleAt = &now // the cooldown counts from the end of a scaling
			return nil
		}); err != nil {
			return JobOut{}, err
		}
	}
	// Children tell what happened: flexup -fu1, flexdown -fd<i>.
	var failed []string
	done := 0
	kids := []string{childID(in.ActionID, ActionFlexup, 1)}
	if in.Direction == policy.ScaleIn && in.Scale != nil {
		kids = kids[:0]
		for i := range in.Scale.Victims {
			kids = append(kids, childID(in.ActionID, ActionFlexdown, i))
		}
	}
	for _, id := range kids {
		a, _, err := e.DB.Action(ctx, id)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return JobOut{}, err
		}
		switch a.Status {
		case model.ActionSucceeded:
			done++
		default:
			cause := a.Status
			if a.Error != nil {
				cause = a.Error.Cause
			}
			failed = append(failed, fmt.Sprintf("action %s (%s): %s", a.ID, a.Kind, cause))
		}
	}
	size := 0
	if nodes, err := e.DB.Nodes(ctx, in.ComponentID); err == nil {
		for _, n := range nodes {
			if n.Status != model.NodeDeleting {
				size++
			}
		}
	}
	out := JobOut{Status: model.ActionSucceeded}
	var aerr *model.ActionError
	msg := fmt.Sprintf("component %s: %s of %d done; size now %d (cause: %s)", c.Name, in.Direction, in.Count, size, in.Cause)
	switch {
	case in.Error != nil:
		aerr = &model.ActionError{Component: c.Name, Error: in.Error.Error, Cause: childCause(*in.Error)}
	case len(failed) > 0:
		aerr = &model.ActionError{Component: c.Name, Error: "ChildFailed", Cause: strings.Join(failed, "; ")}
	case done == 0 && len(kids) > 0:
		aerr = &model.ActionError{Component: c.Name, Error: "NothingDone", Cause: "no node was added or removed"}
	}
	if aerr != nil {
		out = JobOut{Status: model.ActionFailed, Error: aerr.Error, Cause: aerr.Cause}
		msg = fmt.Sprintf("component %s: %s failed: %s; size now %d", c.Name, in.Direction, aerr.Cause, size)
	}
	if _, err := e.DB.UpdateAction(ctx, in.ActionID, func(a *model.Action) error {
		if a.FinishedAt == nil {
			a.FinishedAt = &now
		}
		a.Status, a.Error = out.Status, aerr
		return nil
	}); err != nil {
		return JobOut{}, err
	}
	status := ""
	lvl := model.LevelInfo
	if aerr != nil {
		status, lvl = "FAILED", model.LevelError
	}
	e.stageDone(ctx, in.ActionID, in.ComponentID, StageScaleDone, status, nil, msg)
	e.emit(ctx, model.Event{Type: "component.scaled", Level: lvl, TopologyID: in.TopologyID, ComponentID: in.ComponentID, ActionID: in.ActionID,
		Tenant: c.Tenant, Message: msg, Data: map[string]any{"direction": in.Direction, "size": size}})
	return out, nil
}
