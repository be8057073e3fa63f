package stages

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/policy/actions"
	"github.com/straas/straas/shared/policy/records"
)

// Convergence (statemachines/converge.asl.json): the plan stored when the desired spec
// was applied (PUT /topologies/{id}) runs step by step, each through a child action of
// the existing workflows: flexdown for nodes to remove, the configuration change with
// reason upgrade for a version, replace for nodes whose flavor or image changed, flexup
// for nodes to add. A failed step stops the convergence; the action says which.

// Stage names of a convergence.
const (
	StageConvergeStart = "converge/start"
	StageConvergeTurn  = "converge/wait_turn"
	StageConvergeDone  = "converge/done"
)

// ConvergeState is the converge workflow's state.
type ConvergeState struct {
	actions.ConvergeInput
	Converge *ConvergeProgress `json:"converge,omitempty"`
	Error    *StatesError      `json:"error,omitempty"`
}

// ConvergeProgress lists the steps to run.
type ConvergeProgress struct {
	Ready bool  `json:"ready"`
	Steps []int `json:"steps"`
}

func (e *Env) loadPlan(ctx context.Context, actionID string) (records.StoredPlan, error) {
	return records.New(e.DB).ConvergePlan(ctx, actionID)
}

// ConvergeStart marks the action running and checks its turn.
func (e *Env) ConvergeStart(ctx context.Context, in ConvergeState) (ConvergeProgress, error) {
	e.stageRunning(ctx, in.ActionID, "", StageConvergeStart)
	if _, err := e.DB.UpdateAction(ctx, in.ActionID, func(a *model.Action) error {
		if a.Status == model.ActionPending {
			now := e.DB.Now()
			a.Status, a.StartedAt = model.ActionRunning, &now
		}
		return nil
	}); err != nil {
		return ConvergeProgress{}, err
	}
	sp, err := e.loadPlan(ctx, in.ActionID)
	if err != nil {
		return ConvergeProgress{}, err
	}
	p := ConvergeProgress{Steps: indexes(len(sp.Steps))}
	var parts []string
	for _, s := range sp.Steps {
		parts = append(parts, describeStep(s))
	}
	e.stageDone(ctx, in.ActionID, "", StageConvergeStart, "", nil,
		fmt.Sprintf("revision %d: %d step(s): %s", in.Revision, len(sp.Steps), strings.Join(parts, "; ")))
	return e.convergeTurn(ctx, in, &sp, p)
}

func describeStep(s policy.Step) string {
	switch s.Kind {
	case policy.StepRemove:
		return fmt.Sprintf("remove %s node %s", s.Component, s.NodeID)
	case policy.StepUpgrade:
		return fmt.Sprintf("upgrade %s to %s", s.Component, s.Version)
	case policy.StepRenew:
		return fmt.Sprintf("replace %s node %s", s.Component, s.NodeID)
	case policy.StepAdd:
		return fmt.Sprintf("add %d %s node(s) to %s", s.Count, s.Role, s.Component)
	}
	return s.Kind
}

// ConvergeTurn re-checks the queues.
func (e *Env) ConvergeTurn(ctx context.Context, in ConvergeState) (ConvergeProgress, error) {
	if in.Converge == nil {
		return ConvergeProgress{}, errs.Invalidf("converge", "missing")
	}
	sp, err := e.loadPlan(ctx, in.ActionID)
	if err != nil {
		return ConvergeProgress{}, err
	}
	return e.convergeTurn(ctx, in, &sp, *in.Converge)
}

func (e *Env) convergeTurn(ctx context.Context, in ConvergeState, sp *records.StoredPlan, p ConvergeProgress) (ConvergeProgress, error) {
	ok, err := e.takeTurn(ctx, in.ActionID, "", StageConvergeTurn, "queued behind ", sp.Components)
	p.Ready = ok
	return p, err
}

// ConvergeStepIn is one step of a convergence.
type ConvergeStepIn struct {
	ActionID   string            `json:"action_id"`
	TopologyID string            `json:"topology_id"`
	Step       int               `json:"step"`
	Machines   map[string]string `json:"machines"`
}

// ConvergeStep turns a plan step into a child operation (and, for a replace, gives the
// node the desired flavor and image first).
func (e *Env) ConvergeStep(ctx context.Context, in ConvergeStepIn) (ChildIn, error) {
	sp, err := e.loadPlan(ctx, in.ActionID)
	if err != nil {
		return ChildIn{}, err
	}
	if in.Step < 0 || in.Step >= len(sp.Steps) {
		return ChildIn{}, errs.Invalidf("step", "no step %d", in.Step)
	}
	s := sp.Steps[in.Step]
	ci := ChildIn{Ref: Ref{ActionID: in.ActionID, TopologyID: in.TopologyID, ComponentID: s.ComponentID}, NodeID: s.NodeID,
		Role: s.Role, Count: s.Count, Version: s.Version, Seq: in.Step, Machines: in.Machines}
	// Upgrades and replacements are disruptive and not urgent: they wait for the
	// component's maintenance window (unless the convergence was told not to).
	if (s.Kind == policy.StepUpgrade || s.Kind == policy.StepRenew) && !sp.IgnoreWindows {
		ops, err := records.New(e.DB).OpStates(ctx, in.TopologyID)
		if err != nil {
			return ci, err
		}
		stage := fmt.Sprintf("converge/wait_window#%d", in.Step)
		if o := policy.NextOpening(ops.Windows(s.ComponentID), e.DB.Now()); !o.Open {
			ci.WindowWait, ci.WindowUntil = true, o.Opens.UTC().Format(time.RFC3339)
			msg := fmt.Sprintf("%s is not urgent and waits: %s", describeStep(s), o.Describe())
			if st, err := e.stageOf(ctx, in.ActionID, s.ComponentID, stage); err != nil || st.Detail != msg {
				e.stageWaiting(ctx, in.ActionID, s.ComponentID, stage, msg)
				e.emit(ctx, model.Event{Type: "maintenance.deferred", TopologyID: in.TopologyID, ComponentID: s.ComponentID,
					ActionID: in.ActionID, Message: msg, Data: map[string]any{"opens_at": ci.WindowUntil}})
			}
			return ci, nil
		} else if st, err := e.stageOf(ctx, in.ActionID, s.ComponentID, stage); err == nil && st.Status == "RUNNING" {
			e.stageDone(ctx, in.ActionID, s.ComponentID, stage, "", nil, o.Describe())
		}
	}
	switch s.Kind {
	case policy.StepRemove:
		ci.Kind = ActionFlexdown
	case policy.StepUpgrade:
		ci.Kind = ChildUpgrade
	case policy.StepAdd:
		ci.Kind = ActionFlexup
	case policy.StepRenew:
		ci.Kind = ActionReplace
		c, _, err := e.DB.Component(ctx, s.ComponentID)
		if err != nil {
			return ci, err
		}
		rc, err := e.roleSettings(ctx, &c, s.Role)
		if err != nil {
			return ci, err
		}
		if _, err := e.DB.UpdateNode(ctx, s.NodeID, func(n *model.Node) error {
			n.Flavor, n.Image = rc.Flavor, rc.Image
			return nil
		}); err != nil && !errs.Is(err, errs.NotFound) {
			return ci, err
		}
	default:
		return ci, errs.Invalidf("kind", "unknown step kind %q", s.Kind)
	}
	return ci, nil
}

// ConvergeFinish closes a convergence: what each step's child did, the queues.
func (e *Env) ConvergeFinish(ctx context.Context, in ConvergeState) (JobOut, error) {
	sp, err := e.loadPlan(ctx, in.ActionID)
	if err != nil {
		return JobOut{}, err
	}
	if err := e.policyService().Dequeue(ctx, sp.Components, in.ActionID); err != nil {
		return JobOut{}, err
	}
	var failed []string
	done, skipped := 0, 0
	kinds := map[string]string{policy.StepRemove: ActionFlexdown, policy.StepUpgrade: ChildUpgrade, policy.StepAdd: ActionFlexup, policy.StepRenew: ActionReplace}
	for i, s := range sp.Steps {
		a, _, err := e.DB.Action(ctx, childID(in.ActionID, kinds[s.Kind], i))
		switch {
		case errs.Is(err, errs.NotFound):
			skipped++
		case err != nil:
			return JobOut{}, err
		case a.Status == model.ActionSucceeded:
			done++
		default:
			cause := a.Status
			if a.Error != nil {
				cause = a.Error.Cause
			}
			failed = append(failed, fmt.Sprintf("%s: action %s %s", describeStep(s), a.ID, cause))
		}
	}
	now := e.DB.Now()
	out := JobOut{Status: model.ActionSucceeded}
	var aerr *model.ActionError
	switch {
	case in.Error != nil:
		aerr = &model.ActionError{Error: in.Error.Error, Cause: childCause(*in.Error)}
	case len(failed) > 0:
		aerr = &model.ActionError{Error: "StepFailed", Cause: strings.Join(failed, "; ")}
	}
	msg := fmt.Sprintf("topology converged to revision %d: %d of %d step(s) done", in.Revision, done, len(sp.Steps))
	if skipped > 0 {
		msg += fmt.Sprintf(", %d not run", skipped)
	}
	if aerr != nil {
		out = JobOut{Status: model.ActionFailed, Error: aerr.Error, Cause: aerr.Cause}
		msg = fmt.Sprintf("convergence to revision %d failed after %d of %d step(s): %s", in.Revision, done, len(sp.Steps), aerr.Cause)
	}
	a, err := e.DB.UpdateAction(ctx, in.ActionID, func(a *model.Action) error {
		if a.FinishedAt == nil {
			a.FinishedAt = &now
		}
		a.Status, a.Error = out.Status, aerr
		return nil
	})
	if err != nil {
		return JobOut{}, err
	}
	if _, err := e.DB.UpdateTopology(ctx, in.TopologyID, func(t *model.Topology) error {
		if t.Status == model.StatusUpdating {
			t.Status = model.StatusActive
		}
		return nil
	}); err != nil && !errs.Is(err, errs.NotFound) {
		return JobOut{}, err
	}
	status, lvl := "", model.LevelInfo
	if aerr != nil {
		status, lvl = "FAILED", model.LevelError
	}
	e.stageDone(ctx, in.ActionID, "", StageConvergeDone, status, nil, msg)
	e.emit(ctx, model.Event{Type: "topology.converged", Level: lvl, TopologyID: in.TopologyID, ActionID: in.ActionID, Tenant: a.Tenant,
		Message: msg, Data: map[string]any{"revision": in.Revision, "at": now.Format(time.RFC3339)}})
	return out, nil
}
