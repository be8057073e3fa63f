package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
)

// Policy workflows (heal, scale, maintenance, converge) change components through the
// lifecycle and configuration workflows, never by doing that work again: a stage writes
// the child's action (with the component lock, as the API does) and the state machine
// runs the child's machine as a child execution (startExecution.sync:2) named after
// that action. The child shows as an action of its own, with its stages and nodes.

// ChildIn asks for a child operation of a policy action.
type ChildIn struct {
	Ref
	Kind   string `json:"kind"` // ActionReplace, ActionFlexup, ActionFlexdown, ChildUpgrade, ChildConfig
	NodeID string `json:"node_id,omitempty"`
	Role   string `json:"role,omitempty"`
	Count  int    `json:"count,omitempty"`
	Force  bool   `json:"force,omitempty"`
	// Version is the target version of an upgrade; ConfigRef the config ref of a change.
	Version   string `json:"version,omitempty"`
	ConfigRef string `json:"config_ref,omitempty"`
	Seq       int    `json:"seq"` // tells apart children of one kind in one parent
	// Machines maps machine names to ARNs (the state machine's substitutions).
	Machines map[string]string `json:"machines,omitempty"`
	// WindowWait: the operation is disruptive and not urgent, and waits for the
	// component's maintenance window, which opens at WindowUntil (RFC 3339).
	WindowWait  bool   `json:"window_wait"`
	WindowUntil string `json:"window_until,omitempty"`
}

// Child kinds besides the lifecycle ones.
const (
	ChildUpgrade = "upgrade_component" // config_change with reason upgrade, after setting the version
	ChildConfig  = "change_config"     // config_change with reason apply
)

// ChildOut is what the child execution task needs.
type ChildOut struct {
	ActionID string          `json:"action_id"` // also the execution name
	Machine  string          `json:"machine"`
	ARN      string          `json:"arn"` // of Machine, for the startExecution.sync:2 task
	Input    json.RawMessage `json:"input"`
	Skip     bool            `json:"skip"` // nothing to do (e.g. the node is gone)
	Note     string          `json:"note,omitempty"`
}

// ComponentBusy: another action holds the component's lock; the state machine retries.
type ComponentBusy struct{ Msg string }

func (e *ComponentBusy) Error() string { return e.Msg }
func (*ComponentBusy) StatesError()    {}

// childID is the deterministic id of a child action: a re-run finds it.
func childID(parent, kind string, seq int) string {
	short := map[string]string{ActionReplace: "rp", ActionFlexup: "fu", ActionFlexdown: "fd", ChildUpgrade: "up", ChildConfig: "cc"}[kind]
	if short == "" {
		short = "ch"
	}
	return fmt.Sprintf("%s-%s%d", parent, short, seq)
}

// PrepareChild writes the child action (idempotently) and takes the component lock for
// it; it fails with ComponentBusy while another action holds the lock.
func (e *Env) PrepareChild(ctx context.Context, in ChildIn) (ChildOut, error) {
	id := childID(in.ActionID, in.Kind, in.Seq)
	parent, _, err := e.DB.Action(ctx, in.ActionID)
	if err != nil {
		return ChildOut{}, err
	}
	if a, _, err := e.DB.Action(ctx, id); err == nil {
		return ChildOut{ActionID: id, Machine: a.Machine, Input: a.Input, ARN: in.Machines[a.Machine]}, nil
	} else if !errs.Is(err, errs.NotFound) {
		return ChildOut{}, err
	}
	c, crec, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return ChildOut{}, err
	}
	now := e.DB.Now()
	a := &model.Action{ID: id, Kind: in.Kind, Tenant: c.Tenant, User: parent.User, TopologyID: c.TopologyID, ComponentID: c.ID,
		NodeID: in.NodeID, Status: model.ActionPending, CreatedAt: now}
	var ops []store.Op
	switch in.Kind {
	case ActionReplace, ActionFlexdown:
		n, _, err := e.DB.Node(ctx, in.NodeID)
		if errs.Is(err, errs.NotFound) {
			return ChildOut{Skip: true, Note: "node " + in.NodeID + " is gone"}, nil
		}
		if err != nil {
			return ChildOut{}, err
		}
		if n.Status == model.NodeDeleting {
			return ChildOut{Skip: true, Note: "node " + n.Name + " is being deleted"}, nil
		}
		a.Machine = map[string]string{ActionReplace: "replace", ActionFlexdown: "flexdown"}[in.Kind]
		a.Input, _ = json.Marshal(OpIn{Ref: Ref{ActionID: id, TopologyID: c.TopologyID, ComponentID: c.ID}, NodeID: n.ID, Role: n.Role,
			Member: n.Status != model.NodeFailed, Force: in.Force})
	case ActionFlexup:
		a.Machine = "flexup"
		a.Input, _ = json.Marshal(OpIn{Ref: Ref{ActionID: id, TopologyID: c.TopologyID, ComponentID: c.ID}, Role: in.Role, Count: in.Count})
	case ChildUpgrade, ChildConfig:
		if c.Status != model.StatusActive && c.Status != model.StatusDegraded && c.Status != model.StatusUpdating {
			return ChildOut{}, &ComponentBusy{Msg: fmt.Sprintf("component %s is %s", c.Name, c.Status)}
		}
		cin := ConfigChangeIn{ActionID: id, TopologyID: c.TopologyID, ComponentID: c.ID, Ref: in.ConfigRef, Reason: ReasonApply, Restart: RestartChanged}
		nc := c
		nc.Status = model.StatusUpdating
		if in.Kind == ChildUpgrade {
			cin.Reason = ReasonUpgrade
			nc.Version = in.Version
		}
		a.Machine = MachineConfigChange
		a.Input, _ = json.Marshal(cin)
		cr, err := db.ComponentRecord(&nc)
		if err != nil {
			return ChildOut{}, err
		}
		cr.Version = crec.Version
		ops = append(ops, store.Put(cr, store.AtVersion))
	default:
		return ChildOut{}, errs.Invalidf("kind", "unknown child operation %q", in.Kind)
	}
	if in.Machines[a.Machine] == "" {
		return ChildOut{}, fmt.Errorf("the %s workflow is not available to action %s", a.Machine, in.ActionID)
	}
	// The id the workflow engine will give the child execution (startExecution.sync:2
	// names it id), so that cancelling the parent can stop it.
	a.Execution = strings.Replace(in.Machines[a.Machine], ":stateMachine:", ":execution:", 1) + ":" + id
	if in.Kind != ChildUpgrade && in.Kind != ChildConfig {
		lop, err := LockOp(Lock{ComponentID: c.ID, ActionID: id, Kind: in.Kind, At: now})
		if err != nil {
			return ChildOut{}, err
		}
		ops = append(ops, lop)
	}
	ar, err := db.ActionRecord(a)
	if err != nil {
		return ChildOut{}, err
	}
	ops = append(ops, store.Put(ar, store.Absent))
	if err := e.DB.S.Write(ctx, ops...); err != nil {
		if errs.Is(err, errs.Conflict) {
			holder := "another action"
			if l, _, err := LoadLock(ctx, e.DB, c.ID); err == nil {
				holder = "action " + l.ActionID + " (" + l.Kind + ")"
			}
			e.stageNote(ctx, in.ActionID, c.ID, childStage(in), "waiting: component "+c.Name+" is busy with "+holder)
			return ChildOut{}, &ComponentBusy{Msg: fmt.Sprintf("component %s is busy with %s", c.Name, holder)}
		}
		return ChildOut{}, err
	}
	e.stageNote(ctx, in.ActionID, c.ID, childStage(in), "child action "+id+" ("+in.Kind+")")
	e.emit(ctx, model.Event{Type: "action.child", TopologyID: c.TopologyID, ComponentID: c.ID, NodeID: in.NodeID, ActionID: in.ActionID,
		Tenant: c.Tenant, Message: fmt.Sprintf("action %s (%s) runs %s as action %s", in.ActionID, parent.Kind, in.Kind, id),
		Data: map[string]any{"child": id}})
	return ChildOut{ActionID: id, Machine: a.Machine, Input: a.Input, ARN: in.Machines[a.Machine]}, nil
}

// childStage names the parent's stage that shows a child.
func childStage(in ChildIn) string {
	return fmt.Sprintf("%s#%d", strings.TrimSuffix(strings.TrimSuffix(in.Kind, "_node"), "_component"), in.Seq)
}

// ChildDoneIn reports a child execution's end to the parent's stage record.
type ChildDoneIn struct {
	ChildIn
	In     *ChildIn     `json:"in,omitempty"` // the child's request, when not given inline
	Child  ChildOut     `json:"child"`
	Result *ChildResult `json:"result,omitempty"`
	Error  *StatesError `json:"error,omitempty"`
}

// ChildResult is the part of a child execution's description the parent keeps.
type ChildResult struct {
	Status string `json:"status"`
}

// ChildDoneOut says how the child ended.
type ChildDoneOut struct {
	OK    bool   `json:"ok"`
	Cause string `json:"cause,omitempty"`
}

// ChildDone records a child's end on the parent's stage and returns whether it
// succeeded; a failed child's lock is released (a child that never started holds it).
func (e *Env) ChildDone(ctx context.Context, in ChildDoneIn) (ChildDoneOut, error) {
	if in.In != nil {
		in.ChildIn = *in.In
	}
	st := childStage(in.ChildIn)
	if in.Child.Skip {
		e.stageDone(ctx, in.ActionID, in.ComponentID, st, "", nil, "skipped: "+in.Child.Note)
		return ChildDoneOut{OK: true}, nil
	}
	out := ChildDoneOut{OK: in.Error == nil}
	if in.Error != nil {
		out.Cause = childCause(*in.Error)
		if a, _, err := e.DB.Action(ctx, in.Child.ActionID); err == nil && a.Error != nil {
			out.Cause = fmt.Sprintf("%s: %s", a.Error.Error, a.Error.Cause)
		}
		if a, _, err := e.DB.Action(ctx, in.Child.ActionID); err == nil && (a.Status == model.ActionPending || a.Status == model.ActionRunning) {
			// The child never ran its last stage (it could not start, or was stopped).
			if _, err := e.DB.UpdateAction(ctx, a.ID, func(x *model.Action) error {
				now := e.DB.Now()
				x.Status, x.FinishedAt = model.ActionFailed, &now
				if x.Error == nil {
					x.Error = &model.ActionError{Error: in.Error.Error, Cause: out.Cause}
				}
				return nil
			}); err != nil {
				return out, err
			}
		}
		if err := ReleaseLock(ctx, e.DB, in.ComponentID, in.Child.ActionID); err != nil {
			return out, err
		}
		e.stageDone(ctx, in.ActionID, in.ComponentID, st, "FAILED", nil, fmt.Sprintf("action %s failed: %s", in.Child.ActionID, out.Cause))
		return out, nil
	}
	e.stageDone(ctx, in.ActionID, in.ComponentID, st, "", nil, "action "+in.Child.ActionID+" succeeded")
	return out, nil
}
