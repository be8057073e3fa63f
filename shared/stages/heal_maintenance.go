package stages

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/policy/actions"
	"github.com/straas/straas/shared/policy/records"
	"github.com/straas/straas/shared/store"
)

// Maintenance (seed 001; statemachines/maintenance.asl.json). Restart: each node, wave
// by wave (one node at a time for quorum components), gets its maintenance flag and a
// maintenance *event* (the command is acknowledged at once, not a blocking call); the
// application restarts or reboots and the agent sends a resume event, which clears the
// node's flags (the conductor) and fills the wave's batch. Replace: the nodes are
// replaced one at a time through the replace workflow, within the component's
// maintenance window unless told to ignore it. Off: the flags are cleared. Every
// maintenance action waits for its turn in the queues of the components it touches.

// Stage names of maintenance.
const (
	StageMaintStart  = "maintenance/start"
	StageMaintTurn   = "maintenance/wait_turn"
	StageMaintWindow = "maintenance/wait_window"
	StageMaintDone   = "maintenance/done"
)

func maintSignalStage(wave int) string { return fmt.Sprintf("maintenance/signal#%d", wave) }
func maintResumeStage(wave int) string { return fmt.Sprintf("maintenance/resume#%d", wave) }

// DefaultMaintenanceTimeout bounds how long a wave waits for its resume events.
const DefaultMaintenanceTimeout = 15 * time.Minute

// MaintState is the maintenance workflow's state.
type MaintState struct {
	actions.MaintenanceInput
	Maint *MaintProgress `json:"maint,omitempty"`
	Error *StatesError   `json:"error,omitempty"`
}

// MaintProgress is what MaintStart and MaintTurn decided.
type MaintProgress struct {
	Ready       bool `json:"ready"`
	Timeout     int  `json:"timeout"`      // seconds a wave waits for its resume events
	TaskTimeout int  `json:"task_timeout"` // the wave's task bound: a little more, so the batch expires first
}

// MaintStart marks the action running and checks its turn.
func (e *Env) MaintStart(ctx context.Context, in MaintState) (MaintProgress, error) {
	e.stageRunning(ctx, in.ActionID, "", StageMaintStart)
	if _, err := e.DB.UpdateAction(ctx, in.ActionID, func(a *model.Action) error {
		if a.Status == model.ActionPending {
			now := e.DB.Now()
			a.Status, a.StartedAt = model.ActionRunning, &now
		}
		return nil
	}); err != nil {
		return MaintProgress{}, err
	}
	timeout := DefaultMaintenanceTimeout
	if e.Settings.StageTimeout > 0 && e.Settings.StageTimeout < timeout {
		timeout = e.Settings.StageTimeout
	}
	p := MaintProgress{Timeout: int(timeout / time.Second), TaskTimeout: int(timeout/time.Second) + 60}
	e.stageDone(ctx, in.ActionID, "", StageMaintStart, "", nil,
		fmt.Sprintf("maintenance %s of %s %s on %d component(s)", in.Mode, in.Level, in.TargetID, len(in.Components)))
	return e.maintTurn(ctx, in, p)
}

// MaintTurn re-checks the queues.
func (e *Env) MaintTurn(ctx context.Context, in MaintState) (MaintProgress, error) {
	if in.Maint == nil {
		return MaintProgress{}, errs.Invalidf("maint", "missing")
	}
	return e.maintTurn(ctx, in, *in.Maint)
}

func (e *Env) maintTurn(ctx context.Context, in MaintState, p MaintProgress) (MaintProgress, error) {
	ok, err := e.takeTurn(ctx, in.ActionID, "", StageMaintTurn, "serialised: queued behind ", in.Components)
	p.Ready = ok
	return p, err
}

// MaintItem is one component's branch of a maintenance.
type MaintItem struct {
	Ref
	Level     string `json:"level"`
	TargetID  string `json:"target_id"`
	Mode      string `json:"mode"`
	RestartAs string `json:"restart_as,omitempty"`
	Force     bool   `json:"force,omitempty"`
	Timeout   int    `json:"timeout"`
	Wave      int    `json:"wave"`
	Token     string `json:"token,omitempty"`
}

// MaintPlanOut is a component's waves, or the window to wait for.
type MaintPlanOut struct {
	Waves       []int  `json:"waves"` // wave indexes (the nodes are in a record)
	WindowWait  bool   `json:"window_wait"`
	WindowUntil string `json:"window_until,omitempty"`
}

// kindMaintPlan keeps a component's waves of node ids, per action.
const kindMaintPlan = "maint_plan"

func maintPlanID(actionID, componentID string) string { return actionID + "/" + componentID }

// MaintPlan lays a component's nodes in the scope out in waves (the quorum guard) and,
// for replace, waits for the component's maintenance window.
func (e *Env) MaintPlan(ctx context.Context, in MaintItem) (MaintPlanOut, error) {
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if errs.Is(err, errs.NotFound) {
		return MaintPlanOut{Waves: []int{}}, nil
	}
	if err != nil {
		return MaintPlanOut{}, err
	}
	rec := records.New(e.DB)
	ops, err := rec.OpStates(ctx, c.TopologyID)
	if err != nil {
		return MaintPlanOut{}, err
	}
	if in.Mode == policy.MaintReplace && !in.Force {
		o := policy.NextOpening(ops.Windows(c.ID), e.DB.Now())
		if !o.Open {
			msg := fmt.Sprintf("replacing the nodes of %s is not urgent and waits: %s", c.Name, o.Describe())
			e.stageWaiting(ctx, in.ActionID, c.ID, StageMaintWindow, msg)
			e.emit(ctx, model.Event{Type: "maintenance.deferred", TopologyID: c.TopologyID, ComponentID: c.ID, ActionID: in.ActionID,
				Tenant: c.Tenant, Message: msg, Data: map[string]any{"opens_at": o.Opens.UTC().Format(time.RFC3339)}})
			return MaintPlanOut{WindowWait: true, WindowUntil: o.Opens.UTC().Format(time.RFC3339)}, nil
		}
		if s, err := e.stageOf(ctx, in.ActionID, c.ID, StageMaintWindow); err == nil && s.Status == "RUNNING" {
			e.stageDone(ctx, in.ActionID, c.ID, StageMaintWindow, "", nil, o.Describe())
		}
	}
	if plan, _, err := store.Load[[][]string](ctx, e.DB.S, kindMaintPlan, maintPlanID(in.ActionID, c.ID)); err == nil {
		return MaintPlanOut{Waves: indexes(len(plan))}, nil // a re-run keeps its plan
	}
	nodes, err := e.DB.Nodes(ctx, c.ID)
	if err != nil {
		return MaintPlanOut{}, err
	}
	var scope []model.Node
	for _, n := range nodes {
		if in.Level == policy.LevelNode && n.ID != in.TargetID {
			continue
		}
		if in.Level != policy.LevelNode {
			if own := ops.Level(policy.LevelNode, n.ID); own != nil && own.Own.Maintenance == policy.Off {
				continue // the node opted out of its component's maintenance
			}
		}
		switch n.Status {
		case model.NodeActive, model.NodeMaintenance:
		case model.NodeUnreachable, model.NodeFailed:
			if in.Mode != policy.MaintReplace {
				continue // it could not answer a maintenance event: its health policy's business
			}
		default:
			continue // being created, deleted or replaced
		}
		scope = append(scope, n)
	}
	width := 1
	if in.Mode == policy.MaintRestart {
		quorum := false
		if ct, err := e.Repos.ComponentType(ctx, c.Type); err == nil {
			quorum = ct.Quorum
		}
		conf := 1
		if p, err := e.policyService().Spec(ctx, c.ID, policy.TypeHealth); err == nil && p != nil {
			conf = p.Health().Recovery.MaxConcurrent
		}
		width = policy.MaxConcurrent(quorum, conf)
	}
	var waves [][]string
	for i := 0; i < len(scope); i += width {
		var w []string
		for _, n := range scope[i:min(i+width, len(scope))] {
			w = append(w, n.ID)
		}
		waves = append(waves, w)
	}
	r, err := store.Encode(kindMaintPlan, maintPlanID(in.ActionID, c.ID), waves)
	if err != nil {
		return MaintPlanOut{}, err
	}
	r.Expires = e.DB.Now().Add(30 * 24 * time.Hour)
	if err := e.DB.S.Write(ctx, store.Put(r, store.Any)); err != nil {
		return MaintPlanOut{}, err
	}
	e.stageDone(ctx, in.ActionID, c.ID, "maintenance/plan", "", nil,
		fmt.Sprintf("%s %d node(s) of %s in %d wave(s) of at most %d", in.Mode, len(scope), c.Name, len(waves), width))
	return MaintPlanOut{Waves: indexes(len(waves))}, nil
}

func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func (e *Env) maintWave(ctx context.Context, actionID, componentID string, wave int) ([]model.Node, error) {
	plan, _, err := store.Load[[][]string](ctx, e.DB.S, kindMaintPlan, maintPlanID(actionID, componentID))
	if err != nil {
		return nil, err
	}
	if wave < 0 || wave >= len(plan) {
		return nil, errs.Invalidf("wave", "no wave %d", wave)
	}
	var out []model.Node
	for _, id := range plan[wave] {
		n, _, err := e.DB.Node(ctx, id)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// MaintSignal flags a wave's nodes, opens the batch their resume events fill (its task
// token completes when all resumed) and sends each node the maintenance event.
func (e *Env) MaintSignal(ctx context.Context, in MaintItem) (Empty, error) {
	nodes, err := e.maintWave(ctx, in.ActionID, in.ComponentID, in.Wave)
	if err != nil {
		return Empty{}, err
	}
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	mode := in.RestartAs
	if mode == "" {
		mode = "restart"
	}
	timeout := time.Duration(in.Timeout) * time.Second
	if timeout <= 0 {
		timeout = DefaultMaintenanceTimeout
	}
	resume := batch.ID(in.ActionID, c.ID, maintResumeStage(in.Wave))
	svc := e.policyService()
	var waits, sends []batch.Target
	for i := range nodes {
		n := &nodes[i]
		if err := svc.BeginNodeMaintenance(ctx, n, mode, in.ActionID, resume); err != nil {
			return Empty{}, err
		}
		waits = append(waits, batch.Target{NodeID: n.ID, NodeName: n.Name})
	}
	e.stageRunning(ctx, in.ActionID, c.ID, maintResumeStage(in.Wave))
	if _, err := e.Batches.Open(ctx, batch.Spec{
		ID: resume, Token: in.Token, ActionID: in.ActionID, TopologyID: in.TopologyID, ComponentID: c.ID, Stage: maintResumeStage(in.Wave),
		Command: "resume", OnOK: batch.Keep, OnFail: batch.Keep, Timeout: timeout, Targets: waits,
	}); err != nil {
		return Empty{}, err
	}
	signal := batch.ID(in.ActionID, c.ID, maintSignalStage(in.Wave))
	for _, t := range waits {
		sends = append(sends, batch.Target{NodeID: t.NodeID, NodeName: t.NodeName, Command: &agentproto.Command{
			ID: batch.CommandID(signal, t.NodeID), Kind: agentproto.CmdMaintenance, Type: c.Type, Version: c.Version,
			Params: map[string]string{"mode": mode},
		}})
	}
	e.stageRunning(ctx, in.ActionID, c.ID, maintSignalStage(in.Wave))
	_, err = e.Batches.Open(ctx, batch.Spec{
		ID: signal, ActionID: in.ActionID, TopologyID: in.TopologyID, ComponentID: c.ID, Stage: maintSignalStage(in.Wave),
		Command: agentproto.CmdMaintenance, OnOK: batch.Keep, OnFail: batch.Keep, Tolerate: true, Timeout: timeout, Targets: sends,
	})
	return Empty{}, err
}

// MaintWaveIn is the input of MaintWave.
type MaintWaveIn struct {
	MaintItem
	Phase string       `json:"phase"` // begin (replace: the wave's node), end
	Error *StatesError `json:"error,omitempty"`
}

// MaintWaveOut is a wave's node (begin) or outcome (end).
type MaintWaveOut struct {
	NodeID string `json:"node_id,omitempty"`
	Skip   bool   `json:"skip"`
	OK     bool   `json:"ok"`
	Cause  string `json:"cause,omitempty"`
}

// MaintWave begins a replace wave (flags its node) or ends any wave: nodes that did not
// resume lose their flag (their failure is the health policy's business from now).
func (e *Env) MaintWave(ctx context.Context, in MaintWaveIn) (MaintWaveOut, error) {
	nodes, err := e.maintWave(ctx, in.ActionID, in.ComponentID, in.Wave)
	if err != nil {
		return MaintWaveOut{}, err
	}
	svc := e.policyService()
	if in.Phase == "begin" {
		if len(nodes) == 0 {
			return MaintWaveOut{Skip: true, OK: true}, nil
		}
		n := &nodes[0]
		if err := svc.BeginNodeMaintenance(ctx, n, policy.MaintReplace, in.ActionID, ""); err != nil {
			return MaintWaveOut{}, err
		}
		return MaintWaveOut{NodeID: n.ID, OK: true}, nil
	}
	out := MaintWaveOut{OK: in.Error == nil}
	if in.Error != nil {
		out.Cause = in.Error.Error + ": " + in.Error.Cause
		if in.Error.Error == "States.TaskFailed" {
			out.Cause = childCause(*in.Error)
		}
	}
	// The resume batch says who resumed (the conductor records it before it clears the
	// node's flag, so the flag may still be set here).
	resumed := map[string]string{}
	if in.Mode == policy.MaintRestart {
		es, err := e.Batches.Entries(ctx, batch.ID(in.ActionID, in.ComponentID, maintResumeStage(in.Wave)))
		if err != nil && !errs.Is(err, errs.NotFound) {
			return out, err
		}
		for _, en := range es {
			resumed[en.NodeID] = en.Status
			if en.Code == "TIMEOUT" {
				resumed[en.NodeID] = "" // expired: it never resumed
			}
		}
	}
	var stuck, failed []string
	for i := range nodes {
		n := &nodes[i]
		if in.Mode == policy.MaintRestart {
			switch resumed[n.ID] {
			case batch.OK:
			case batch.Failed:
				failed = append(failed, n.Name)
			default:
				stuck = append(stuck, n.Name)
			}
		}
		f, err := records.New(e.DB).NodeFlags(ctx, n)
		if err != nil {
			return out, err
		}
		if f.Maintenance == "" || f.MaintenanceAction != in.ActionID {
			continue
		}
		why := "maintenance ended"
		if in.Mode == policy.MaintRestart {
			why = "resumed"
			if resumed[n.ID] != batch.OK {
				why = "no resume event in time"
			}
		}
		if _, err := svc.EndNodeMaintenance(ctx, n, why); err != nil {
			return out, err
		}
		if in.Mode == policy.MaintRestart && resumed[n.ID] == "" {
			if err := e.flagIfSilent(ctx, n); err != nil {
				return out, err
			}
		}
	}
	if len(failed) > 0 {
		out.OK = false
		out.Cause = strings.TrimPrefix(out.Cause+"; resumed with a failure: "+strings.Join(failed, ", "), "; ")
	}
	if len(stuck) > 0 {
		out.OK = false
		out.Cause = strings.TrimPrefix(out.Cause+"; no resume event from "+strings.Join(stuck, ", "), "; ")
	}
	status := ""
	if !out.OK {
		status = "FAILED"
	}
	if in.Mode == policy.MaintRestart {
		e.stageDone(ctx, in.ActionID, in.ComponentID, maintResumeStage(in.Wave), status, nil, out.Cause)
	}
	return out, nil
}

// flagIfSilent marks a node that stopped heartbeating during its maintenance UNREACHABLE:
// its lease left the checker's scan while the node was in maintenance.
func (e *Env) flagIfSilent(ctx context.Context, n *model.Node) error {
	l, err := e.DB.Lease(ctx, n.ID)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return err
	}
	if err == nil && !l.Stale {
		return nil
	}
	_, err = e.DB.UpdateNode(ctx, n.ID, func(x *model.Node) error {
		if x.Status == model.NodeActive {
			x.Status, x.Error = model.NodeUnreachable, "no heartbeat after maintenance"
		}
		return nil
	})
	return err
}

// MaintFinish closes a maintenance: the command is done, so the level's maintenance goes
// back to off (unless a later command replaced it), leftover flags are cleared, the
// queues move on.
func (e *Env) MaintFinish(ctx context.Context, in MaintState) (JobOut, error) {
	svc := e.policyService()
	rec := records.New(e.DB)
	now := e.DB.Now()
	nodeComponent := "" // a node-level state records its node's component
	if in.Level == policy.LevelNode && len(in.Components) == 1 {
		nodeComponent = in.Components[0]
	}
	if _, err := rec.UpdateOpState(ctx, in.Level, in.TargetID, in.TopologyID, nodeComponent, func(o *records.OpState) error {
		if o.Action == in.ActionID {
			o.Own.Maintenance, o.Action = policy.Off, ""
		}
		return nil
	}); err != nil {
		return JobOut{}, err
	}
	cleared := 0
	for _, cid := range in.Components {
		flags, err := rec.ComponentFlags(ctx, cid)
		if err != nil {
			return JobOut{}, err
		}
		for id, f := range flags {
			if f.Maintenance == "" || (f.MaintenanceAction != in.ActionID && in.Mode != policy.Off) {
				continue
			}
			if in.Mode == policy.Off && in.Level == policy.LevelNode && id != in.TargetID {
				continue
			}
			n, _, err := e.DB.Node(ctx, id)
			if errs.Is(err, errs.NotFound) {
				continue
			}
			if err != nil {
				return JobOut{}, err
			}
			if ok, err := svc.EndNodeMaintenance(ctx, &n, "maintenance "+in.Mode+" action ended"); err != nil {
				return JobOut{}, err
			} else if ok {
				cleared++
			}
		}
	}
	if err := svc.Dequeue(ctx, in.Components, in.ActionID); err != nil {
		return JobOut{}, err
	}
	out := JobOut{Status: model.ActionSucceeded}
	var aerr *model.ActionError
	failed := e.failedStages(ctx, in.ActionID)
	switch {
	case in.Error != nil:
		aerr = &model.ActionError{Error: in.Error.Error, Cause: childCause(*in.Error)}
	case len(failed) > 0:
		aerr = &model.ActionError{Error: "MaintenanceFailed", Cause: strings.Join(failed, "; ")}
	}
	msg := fmt.Sprintf("maintenance %s of %s %s done", in.Mode, in.Level, in.TargetID)
	if cleared > 0 {
		msg += fmt.Sprintf("; %d flag(s) cleared", cleared)
	}
	if aerr != nil {
		out = JobOut{Status: model.ActionFailed, Error: aerr.Error, Cause: aerr.Cause}
		msg = fmt.Sprintf("maintenance %s of %s %s failed: %s", in.Mode, in.Level, in.TargetID, aerr.Cause)
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
	status, lvl := "", model.LevelInfo
	if aerr != nil {
		status, lvl = "FAILED", model.LevelError
	}
	e.stageDone(ctx, in.ActionID, "", StageMaintDone, status, nil, msg)
	e.emit(ctx, model.Event{Type: "maintenance.done", Level: lvl, TopologyID: in.TopologyID, ComponentID: a.ComponentID, NodeID: a.NodeID,
		ActionID: in.ActionID, Tenant: a.Tenant, Message: msg})
	return out, nil
}

// failedStages describes the FAILED stages of an action.
func (e *Env) failedStages(ctx context.Context, actionID string) []string {
	sts, err := e.DB.Stages(ctx, actionID)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range sts {
		if s.Status == "FAILED" {
			d := s.Name
			if s.Detail != "" {
				d += ": " + s.Detail
			}
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// turnCame is a turn stage's last word: what it waited for, and that its turn came.
// takeTurn asks whether action is first in the queues of comps (policy actions on a
// component run one at a time). While it is not, its stage (of component comp, "" for
// the action) runs and says what it waits behind; when its turn comes the stage ends
// saying so.
func (e *Env) takeTurn(ctx context.Context, action, comp, stage, queued string, comps []string) (bool, error) {
	ok, waiting, err := e.policyService().Turn(ctx, comps, action)
	if err != nil {
		return false, err
	}
	if !ok {
		e.stageWaiting(ctx, action, comp, stage, queued+strings.Join(waiting, ", "))
	} else if s, err := e.stageOf(ctx, action, comp, stage); err == nil && s.Status == "RUNNING" {
		e.stageDone(ctx, action, comp, stage, "", nil, turnCame(s.Detail))
	}
	return ok, nil
}

func turnCame(waited string) string {
	if waited == "" {
		return "its turn came"
	}
	return "its turn came (" + waited + ")"
}
