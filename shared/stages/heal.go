package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/jobs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/policy/actions"
	"github.com/straas/straas/shared/policy/records"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/workflow"
)

// Recovery of a failed node (statemachines/heal.asl.json), as its health policy says:
// the escalation's steps in order — restart the services through the agent, reboot the
// server through Nova, replace the node through the replace workflow (a child action) —
// each judged after the policy's grace period, stopping at the first that heals. At
// most one node of a quorum component (recovery.max_concurrent of others) is recovered
// at a time; steps configured so wait for the component's maintenance window.

// policyFunctions are the stages of the policy workflows: heal, scale, maintenance and
// converge, and the child operations they run.
func (e *Env) policyFunctions() map[string]workflow.Func {
	return map[string]workflow.Func{
		"HealStart":      Typed(e.HealStart),
		"HealTurn":       Typed(e.HealTurn),
		"HealCommand":    Typed(e.HealCommand),
		"HealReboot":     Typed(e.HealReboot),
		"HealJudge":      Typed(e.HealJudge),
		"HealFinish":     Typed(e.HealFinish),
		"PrepareChild":   Typed(e.PrepareChild),
		"ChildDone":      Typed(e.ChildDone),
		"ScaleStart":     Typed(e.ScaleStart),
		"ScaleTurn":      Typed(e.ScaleTurn),
		"ScaleFinish":    Typed(e.ScaleFinish),
		"MaintStart":     Typed(e.MaintStart),
		"MaintTurn":      Typed(e.MaintTurn),
		"MaintPlan":      Typed(e.MaintPlan),
		"MaintSignal":    Typed(e.MaintSignal),
		"MaintWave":      Typed(e.MaintWave),
		"MaintFinish":    Typed(e.MaintFinish),
		"ConvergeStart":  Typed(e.ConvergeStart),
		"ConvergeTurn":   Typed(e.ConvergeTurn),
		"ConvergeStep":   Typed(e.ConvergeStep),
		"ConvergeFinish": Typed(e.ConvergeFinish),
	}
}

// Stage names of a recovery.
const (
	StageHealStart  = "heal/start"
	StageHealTurn   = "heal/wait_turn"
	StageHealWindow = "heal/wait_window"
	StageHealDone   = "heal/done"
)

func healStepStage(step string, attempt int) string { return fmt.Sprintf("heal/%s#%d", step, attempt) }

// policyService is the actions service over the stages' ports.
func (e *Env) policyService() *actions.Service {
	return actions.New(e.DB, &jobs.Launcher{DB: e.DB, Workflow: e.Workflow, Log: e.Log}, e.Log)
}

// HealState is the heal workflow's state: its input and what the stages add.
type HealState struct {
	actions.HealInput
	Heal       *HealProgress   `json:"heal,omitempty"`
	StepResult json.RawMessage `json:"step_result,omitempty"`
	Error      *StatesError    `json:"error,omitempty"`
}

// HealProgress is where a recovery is; the state machine branches on it.
type HealProgress struct {
	Steps       []string  `json:"steps"`
	Index       int       `json:"index"`
	Step        string    `json:"step"`    // the step to run ("" when done)
	Attempt     int       `json:"attempt"` // steps run so far, +1 per step (stage and child names)
	Ready       bool      `json:"ready"`   // holds a recovery slot of the component
	WindowWait  bool      `json:"window_wait"`
	WindowUntil string    `json:"window_until,omitempty"` // RFC 3339, for the Wait state
	Grace       int       `json:"grace"`                  // seconds
	Timeout     int       `json:"timeout"`                // seconds a step may take
	StepStarted time.Time `json:"step_started"`
	Done        bool      `json:"done"`
	Healed      bool      `json:"healed"`
	HealedBy    string    `json:"healed_by,omitempty"`
	Tried       []string  `json:"tried"`
	Note        string    `json:"note,omitempty"`
	Held        bool      `json:"held,omitempty"` // stopped by an operational state: the failure stays pending
}

// healContext is what the heal stages load.
type healContext struct {
	node   model.Node
	comp   model.Component
	spec   *policy.HealthSpec
	ops    records.OpStates
	quorum bool
}

func (e *Env) loadHeal(ctx context.Context, in actions.HealInput) (*healContext, error) {
	n, _, err := e.DB.Node(ctx, in.NodeID)
	if err != nil {
		return nil, err
	}
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return nil, err
	}
	hc := &healContext{node: n, comp: c}
	p, err := e.policyService().Spec(ctx, c.ID, policy.TypeHealth)
	if err != nil {
		return nil, err
	}
	if p != nil {
		hc.spec = p.Health()
	}
	if hc.ops, err = records.New(e.DB).OpStates(ctx, c.TopologyID); err != nil {
		return nil, err
	}
	if ct, err := e.Repos.ComponentType(ctx, c.Type); err == nil {
		hc.quorum = ct.Quorum
	}
	return hc, nil
}

// stillAllowed says why recovery must stop now (policy detached, autohealing turned
// off, maintenance, node gone), or "".
func (hc *healContext) stillAllowed(flags records.NodeFlags) string {
	switch {
	case hc.spec == nil:
		return "the component has no enabled health policy any more"
	case hc.node.Status == model.NodeDeleting:
		return "the node is being deleted"
	}
	eff := hc.ops.Effective(hc.comp.TopologyID, hc.comp.ID, hc.node.ID)
	if ok, why := policy.HealingAllowed(eff, flags.Maintenance != ""); !ok {
		return why
	}
	return ""
}

// HostStater is implemented by computes that know whether a server's host is up (Nova's
// host_status); recovery then skips the steps that need the host.
type HostStater interface {
	HostStatus(ctx context.Context, serverID string) (string, error) // UP, DOWN, MAINTENANCE, UNKNOWN
}

// Rebooter is what the reboot step needs of a compute.
type Rebooter interface {
	RebootServer(ctx context.Context, id string, hard bool) error
}

// HealStart begins a recovery: the steps for the failure, a recovery slot, the window.
func (e *Env) HealStart(ctx context.Context, in HealState) (HealProgress, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, StageHealStart)
	if _, err := e.DB.UpdateAction(ctx, in.ActionID, func(a *model.Action) error {
		if a.Status == model.ActionPending {
			now := e.DB.Now()
			a.Status, a.StartedAt = model.ActionRunning, &now
		}
		return nil
	}); err != nil {
		return HealProgress{}, err
	}
	hc, err := e.loadHeal(ctx, in.HealInput)
	if errs.Is(err, errs.NotFound) {
		e.stageDone(ctx, in.ActionID, in.ComponentID, StageHealStart, "", nil, "the node is gone: nothing to recover")
		return HealProgress{Done: true, Healed: true, Note: "the node is gone"}, nil
	}
	if err != nil {
		return HealProgress{}, err
	}
	flags, err := records.New(e.DB).NodeFlags(ctx, &hc.node)
	if err != nil {
		return HealProgress{}, err
	}
	if why := hc.stillAllowed(flags); why != "" {
		e.stageDone(ctx, in.ActionID, in.ComponentID, StageHealStart, "", nil, "not recovering: "+why)
		return HealProgress{Done: true, Note: why, Held: hc.spec != nil}, nil
	}
	f := policy.Failure{Mode: in.Mode, Reason: in.Reason}
	if down, known := e.hostDown(ctx, &hc.node); known && down {
		f = policy.Failure{Mode: policy.DetectHost, Reason: "its compute node " + hc.node.Hypervisor + " is down"}
	}
	p := HealProgress{Steps: hc.spec.Steps(f), Grace: hc.spec.Recovery.GracePeriod, Timeout: hc.spec.Recovery.StepTimeout, Tried: []string{}}
	if len(p.Steps) == 0 {
		e.stageDone(ctx, in.ActionID, in.ComponentID, StageHealStart, "FAILED", nil, "the health policy has no step that can recover a "+f.Mode+" failure")
		return HealProgress{Done: true, Note: "no recovery step applies to a " + f.Mode + " failure"}, nil
	}
	p.Step = p.Steps[0]
	detail := fmt.Sprintf("node %s: %s; steps %s", hc.node.Name, f.Reason, strings.Join(p.Steps, " → "))
	if in.DelayedSince != nil {
		detail += fmt.Sprintf("; healing was delayed since %s", in.DelayedSince.UTC().Format(time.RFC3339))
	}
	e.stageDone(ctx, in.ActionID, in.ComponentID, StageHealStart, "", nil, detail)
	return e.healTurn(ctx, &in, hc, p)
}

// HealTurn re-checks the slot and the window of the current step.
func (e *Env) HealTurn(ctx context.Context, in HealState) (HealProgress, error) {
	if in.Heal == nil {
		return HealProgress{}, errs.Invalidf("heal", "missing")
	}
	hc, err := e.loadHeal(ctx, in.HealInput)
	if errs.Is(err, errs.NotFound) {
		p := *in.Heal
		p.Done, p.Healed, p.Note = true, true, "the node is gone"
		return p, nil
	}
	if err != nil {
		return HealProgress{}, err
	}
	return e.healTurn(ctx, &in, hc, *in.Heal)
}

func (e *Env) healTurn(ctx context.Context, in *HealState, hc *healContext, p HealProgress) (HealProgress, error) {
	p.WindowWait, p.WindowUntil = false, ""
	flags, err := records.New(e.DB).NodeFlags(ctx, &hc.node)
	if err != nil {
		return p, err
	}
	if why := hc.stillAllowed(flags); why != "" {
		p.Done, p.Note, p.Held = true, why, hc.spec != nil
		return p, nil
	}
	if !p.Ready {
		maxc := policy.MaxConcurrent(hc.quorum, hc.spec.Recovery.MaxConcurrent)
		ok, waiting, err := e.healSlot(ctx, &hc.comp, in.ActionID, maxc)
		if err != nil {
			return p, err
		}
		if !ok {
			why := fmt.Sprintf("waiting: at most %d node(s) of %s recovered at a time; in progress: %s", maxc, hc.comp.Name, strings.Join(waiting, ", "))
			if hc.quorum {
				why = fmt.Sprintf("waiting: %s keeps a quorum, one member is recovered at a time; in progress: %s", hc.comp.Name, strings.Join(waiting, ", "))
			}
			e.stageWaiting(ctx, in.ActionID, in.ComponentID, StageHealTurn, why)
			return p, nil
		}
		p.Ready = true
		if s, err := e.stageOf(ctx, in.ActionID, in.ComponentID, StageHealTurn); err == nil && s.Status == "RUNNING" {
			e.stageDone(ctx, in.ActionID, in.ComponentID, StageHealTurn, "", nil, "a recovery slot is free")
		}
	}
	if p.Step != "" && hc.spec.WaitsForWindow(p.Step) {
		o := policy.NextOpening(hc.ops.Windows(hc.comp.ID), e.DB.Now())
		if !o.Open {
			p.WindowWait, p.WindowUntil = true, o.Opens.UTC().Format(time.RFC3339)
			msg := fmt.Sprintf("%s of node %s is not urgent and waits: %s", p.Step, hc.node.Name, o.Describe())
			e.stageWaiting(ctx, in.ActionID, in.ComponentID, StageHealWindow, msg)
			e.emit(ctx, model.Event{Type: "node.heal_deferred", TopologyID: hc.comp.TopologyID, ComponentID: hc.comp.ID, NodeID: hc.node.ID,
				ActionID: in.ActionID, Tenant: hc.comp.Tenant, Message: msg, Data: map[string]any{"opens_at": p.WindowUntil, "step": p.Step}})
			return p, nil
		}
		if s, err := e.stageOf(ctx, in.ActionID, in.ComponentID, StageHealWindow); err == nil && s.Status == "RUNNING" {
			e.stageDone(ctx, in.ActionID, in.ComponentID, StageHealWindow, "", nil, o.Describe())
		}
	}
	if p.Step != "" {
		p.Attempt++
		p.StepStarted = e.DB.Now()
		e.stageRunning(ctx, in.ActionID, in.ComponentID, healStepStage(p.Step, p.Attempt))
	}
	return p, nil
}

// healSlot takes (or confirms) one of a component's recovery slots.
func (e *Env) healSlot(ctx context.Context, c *model.Component, actionID string, maxc int) (bool, []string, error) {
	got := false
	var holders []string
	_, err := records.New(e.DB).UpdateComponentState(ctx, c, func(st *records.ComponentState) error {
		var live []string
		for _, id := range st.Healing {
			if id == actionID {
				live = append(live, id)
				continue
			}
			a, _, err := e.DB.Action(ctx, id)
			if err != nil && !errs.Is(err, errs.NotFound) {
				return err
			}
			if err == nil && !actions.Ended(a.Status) {
				live = append(live, id)
			}
		}
		st.Healing = live
		if !slices.Contains(st.Healing, actionID) && len(st.Healing) < maxc {
			st.Healing = append(st.Healing, actionID)
		}
		got = slices.Contains(st.Healing, actionID)
		holders = slices.DeleteFunc(slices.Clone(st.Healing), func(x string) bool { return x == actionID })
		return nil
	})
	return got, holders, err
}

func (e *Env) hostDown(ctx context.Context, n *model.Node) (down, known bool) {
	if n.ServerID == "" {
		return false, false
	}
	compute, err := e.Clouds.Zone(ctx, n.AvailabilityZone)
	if err != nil {
		return false, false
	}
	hs, ok := compute.(HostStater)
	if !ok {
		return false, false
	}
	st, err := hs.HostStatus(ctx, n.ServerID)
	if err != nil {
		return false, false
	}
	return st == "DOWN", st != "" && st != "UNKNOWN"
}

// HealCmdIn is the input of the restart step.
type HealCmdIn struct {
	Callback
	NodeID  string `json:"node_id"`
	Attempt int    `json:"attempt"`
	Timeout int    `json:"timeout"`
}

// HealCommand restarts the node's services through its agent; the answer completes the
// task (a silent agent lets it time out).
func (e *Env) HealCommand(ctx context.Context, in HealCmdIn) (Empty, error) {
	n, _, err := e.DB.Node(ctx, in.NodeID)
	if err != nil {
		return Empty{}, err
	}
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	stage := healStepStage(policy.StepRestart, in.Attempt)
	id := batch.ID(in.ActionID, in.ComponentID, stage)
	timeout := time.Duration(in.Timeout) * time.Second
	if timeout <= 0 {
		timeout = e.Settings.StageTimeout
	}
	_, err = e.Batches.Open(ctx, batch.Spec{
		ID: id, Token: in.Token, ActionID: in.ActionID, TopologyID: in.TopologyID, ComponentID: in.ComponentID, Stage: stage,
		Command: agentproto.CmdRestart, OnOK: batch.Keep, OnFail: batch.Keep, Timeout: timeout,
		Targets: []batch.Target{{NodeID: n.ID, NodeName: n.Name, Command: &agentproto.Command{
			ID: batch.CommandID(id, n.ID), Kind: agentproto.CmdRestart, Role: n.Role, Type: c.Type, Version: c.Version,
			Deadline: e.DB.Now().Add(timeout),
		}}},
	})
	return Empty{}, err
}

// HealReboot hard-reboots the node's server through Nova.
func (e *Env) HealReboot(ctx context.Context, in HealState) (Empty, error) {
	n, _, err := e.DB.Node(ctx, in.NodeID)
	if err != nil {
		return Empty{}, err
	}
	if n.ServerID == "" {
		return Empty{}, fmt.Errorf("node %s has no server to reboot", n.Name)
	}
	compute, err := e.Clouds.Zone(ctx, n.AvailabilityZone)
	if err != nil {
		return Empty{}, err
	}
	rb, ok := compute.(Rebooter)
	if !ok {
		return Empty{}, fmt.Errorf("the compute of zone %s cannot reboot servers", n.AvailabilityZone)
	}
	if err := rb.RebootServer(ctx, n.ServerID, true); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Empty{}, fmt.Errorf("Nova refused to reboot server %s of node %s: %w", n.ServerID, n.Name, err)
		}
		return Empty{}, fmt.Errorf("reboot node %s: %w", n.Name, err)
	}
	return Empty{}, nil
}

// HealJudge decides, after a step and its grace period, whether the node is healthy;
// if not, it moves to the next step or ends the recovery.
func (e *Env) HealJudge(ctx context.Context, in HealState) (HealProgress, error) {
	if in.Heal == nil {
		return HealProgress{}, errs.Invalidf("heal", "missing")
	}
	p := *in.Heal
	stage := healStepStage(p.Step, p.Attempt)
	p.Tried = append(p.Tried, p.Step)
	hc, err := e.loadHeal(ctx, in.HealInput)
	if errs.Is(err, errs.NotFound) {
		p.Done, p.Healed, p.Note = true, true, "the node is gone"
		e.stageDone(ctx, in.ActionID, in.ComponentID, stage, "", nil, "the node is gone")
		return p, nil
	}
	if err != nil {
		return p, err
	}
	stepErr := stepError(in.StepResult)
	healthy, why := false, stepErr
	if stepErr == "" {
		healthy, why = e.nodeHealthy(ctx, &hc.node, hc.spec, p.StepStarted)
	}
	if healthy {
		if err := e.markHealthy(ctx, &hc.node); err != nil {
			return p, err
		}
		p.Done, p.Healed, p.HealedBy, p.Step = true, true, p.Step, ""
		e.stageDone(ctx, in.ActionID, in.ComponentID, stage, "", nil, "healthy after "+p.HealedBy)
		return p, nil
	}
	e.stageDone(ctx, in.ActionID, in.ComponentID, stage, "FAILED", nil, "not healed: "+why)
	p.Note = fmt.Sprintf("%s did not heal the node: %s", p.Step, why)
	p.Index++
	if p.Index >= len(p.Steps) {
		p.Done, p.Step = true, ""
		return p, nil
	}
	p.Step = p.Steps[p.Index]
	return e.healTurn(ctx, &in, hc, p)
}

// stepError is the error a step's Catch put in step_result, if any.
func stepError(raw json.RawMessage) string {
	var se StatesError
	if len(raw) == 0 || json.Unmarshal(raw, &se) != nil || se.Error == "" {
		return ""
	}
	if se.Error == "States.TaskFailed" {
		return "the child action failed: " + childCause(se)
	}
	if se.Error == "States.Timeout" {
		return "the step timed out"
	}
	return se.Error + ": " + se.Cause
}

// nodeHealthy: a heartbeat since the step began, not stale, no failed required service.
func (e *Env) nodeHealthy(ctx context.Context, n *model.Node, spec *policy.HealthSpec, since time.Time) (bool, string) {
	switch n.Status {
	case model.NodeActive, model.NodeUnreachable, model.NodeFailed:
	default:
		return false, "the node is " + n.Status
	}
	l, err := e.DB.Lease(ctx, n.ID)
	if err != nil {
		return false, "no heartbeat yet"
	}
	if l.LastSeen.Before(since) {
		return false, "no heartbeat since " + since.UTC().Format(time.RFC3339) + " (last " + l.LastSeen.UTC().Format(time.RFC3339) + ")"
	}
	if spec != nil {
		if f, bad := spec.Detect(e.DB.Now(), policy.Observation{Status: model.NodeActive, LastSeen: l.LastSeen, Services: l.Services}, 0); bad {
			return false, f.Reason
		}
	}
	return true, ""
}

// markHealthy puts a recovered node back to ACTIVE.
func (e *Env) markHealthy(ctx context.Context, n *model.Node) error {
	_, err := e.DB.UpdateNode(ctx, n.ID, func(x *model.Node) error {
		if x.Status == model.NodeUnreachable || x.Status == model.NodeFailed {
			x.Status, x.Error = model.NodeActive, ""
		}
		return nil
	})
	return err
}

// HealFinish ends a recovery: releases the slot, settles the node's flags, closes the
// action and says what happened.
func (e *Env) HealFinish(ctx context.Context, in HealState) (JobOut, error) {
	p := HealProgress{}
	if in.Heal != nil {
		p = *in.Heal
	}
	if in.Error != nil && !p.Done {
		p.Note = fmt.Sprintf("%s: %s", in.Error.Error, in.Error.Cause)
	}
	rec := records.New(e.DB)
	e.refreshFaultDomains(ctx, in.ComponentID)
	if c, _, err := e.DB.Component(ctx, in.ComponentID); err == nil {
		if _, err := rec.UpdateComponentState(ctx, &c, func(st *records.ComponentState) error {
			st.Healing = slices.DeleteFunc(st.Healing, func(x string) bool { return x == in.ActionID })
			return nil
		}); err != nil {
			return JobOut{}, err
		}
	}
	now := e.DB.Now()
	n, _, nerr := e.DB.Node(ctx, in.NodeID)
	stopped := !p.Healed && p.Held // stopped by autohealing off or maintenance: the failure stays pending
	if nerr == nil {
		if _, err := rec.UpdateNodeFlags(ctx, &n, func(f *records.NodeFlags) error {
			if f.Healing == in.ActionID {
				f.Healing = ""
			}
			switch {
			case p.Healed:
				f.Failure, f.HealFailedAt, f.LastHealedAt = nil, nil, &now
			case stopped && f.Failure != nil:
				f.Failure.Pending, f.Failure.Why = true, p.Note // held back again; healed when allowed
				if f.Failure.Deferred.IsZero() {
					f.Failure.Deferred = now
				}
			default:
				f.HealFailedAt = &now
			}
			return nil
		}); err != nil {
			return JobOut{}, err
		}
	}
	out := JobOut{Status: model.ActionSucceeded}
	var aerr *model.ActionError
	msg := ""
	switch {
	case p.Healed && p.HealedBy != "":
		msg = fmt.Sprintf("node %s healed by %s (failure: %s)", n.Name, p.HealedBy, in.Reason)
	case p.Healed:
		msg = fmt.Sprintf("node %s: nothing to recover (%s)", n.Name, p.Note)
	case stopped:
		msg = fmt.Sprintf("node %s: recovery not done: %s; the failure stays recorded", n.Name, p.Note)
	default:
		tried := strings.Join(p.Tried, ", ")
		if tried == "" {
			tried = "no step"
		}
		aerr = &model.ActionError{Node: n.Name, Stage: StageHealDone, Error: "NotHealed",
			Cause: fmt.Sprintf("node %s (%s) not healed after %s: %s", n.Name, in.Reason, tried, p.Note)}
		out = JobOut{Status: model.ActionFailed, Error: aerr.Error, Cause: aerr.Cause}
		msg = aerr.Cause
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
	if out.Status == model.ActionFailed {
		status = "FAILED"
	}
	e.stageDone(ctx, in.ActionID, in.ComponentID, StageHealDone, status, nil, msg)
	lvl, typ := model.LevelInfo, "node.healed"
	switch {
	case out.Status == model.ActionFailed:
		lvl, typ = model.LevelError, "node.heal_failed"
	case stopped:
		lvl, typ = model.LevelWarning, "node.heal_stopped"
	}
	e.emit(ctx, model.Event{Type: typ, Level: lvl, TopologyID: in.TopologyID, ComponentID: in.ComponentID, NodeID: in.NodeID,
		ActionID: in.ActionID, Tenant: n.Tenant, Message: msg, Data: map[string]any{"tried": p.Tried, "healed_by": p.HealedBy}})
	return out, nil
}

// FaultDomainer is implemented by computes that know their hosts' fault domains (host
// aggregates' fault_domain metadata; the mock cloud's racks): nodes then record theirs,
// which the checker's spread check and the deletion policy read.
type FaultDomainer interface {
	FaultDomains(ctx context.Context) (map[string]string, error) // host -> fault domain
}

// refreshFaultDomains records the fault domain of a component's nodes whose host the
// compute can place; without that capability it does nothing.
func (e *Env) refreshFaultDomains(ctx context.Context, componentID string) {
	nodes, err := e.DB.Nodes(ctx, componentID)
	if err != nil || len(nodes) == 0 {
		return
	}
	compute, err := e.Clouds.Zone(ctx, nodes[0].AvailabilityZone)
	if err != nil {
		return
	}
	fd, ok := compute.(FaultDomainer)
	if !ok {
		return
	}
	domains, err := fd.FaultDomains(ctx)
	if err != nil {
		e.Log.Warn("fault domains of hosts", "err", err)
		return
	}
	for _, n := range nodes {
		d := domains[n.Hypervisor]
		if d == "" || d == n.FaultDomain {
			continue
		}
		if _, err := e.DB.UpdateNode(ctx, n.ID, func(x *model.Node) error { x.FaultDomain = d; return nil }); err != nil && !errs.Is(err, errs.NotFound) {
			e.Log.Warn("record a node's fault domain", "node", n.Name, "err", err)
		}
	}
}

// stageOf reads a stage record without creating it (errs.NotFound when there is none).
func (e *Env) stageOf(ctx context.Context, actionID, componentID, stage string) (model.Stage, error) {
	s, _, err := store.Load[model.Stage](ctx, e.DB.S, db.KindStage, db.StageID(actionID, componentID, stage))
	return s, err
}
