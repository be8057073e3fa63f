package stages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/workflow"
)

// Lifecycle operations (seed 000 §4.3.3–4.3.7): flexup, flexdown, replace, services,
// files, script sync. Each is a state machine of statemachines/ made of the stages of
// this file and its siblings (flexup.go, flexdown.go, replace.go, fanout.go); the API
// submits them with a component lock (lock.go) so that two operations never change one
// component at once.

// Action kinds of lifecycle operations, as actions show them.
const (
	ActionFlexup   = "flexup_component"
	ActionFlexdown = "delete_node"
	ActionReplace  = "replace_node"
	ActionServices = "node_services"
	ActionFiles    = "put_files"
	ActionScripts  = "sync_scripts"
)

// Stage names of lifecycle operations (creation's names are reused where the work is
// the same: spawn, verify_spawn, install, pre_config, config, validate).
const (
	StageBegin       = "begin"
	StageDrain       = "drain"
	StageRemove      = "remove_node"
	StageReimage     = "reimage"
	StageMembers     = "membership"
	StageLeaderProbe = "leader_probe"
	StageRestartPlan = "restart_plan"
	StageRestartPre  = "restart:" // + node name: one stage per member restarted in order
	StageFinish      = "finish"
)

// lifecycleFunctions are the stages of the lifecycle workflows.
func (e *Env) lifecycleFunctions() map[string]workflow.Func {
	return map[string]workflow.Func{
		"LifecycleBegin":     Typed(e.LifecycleBegin),
		"LifecycleSpawn":     Typed(e.LifecycleSpawn),
		"LifecyclePreConfig": Typed(e.LifecyclePreConfig),
		"LifecycleMembers":   Typed(e.LifecycleMembers),
		"LifecycleFinish":    Typed(e.LifecycleFinish),
		"LifecycleFailed":    Typed(e.LifecycleFailed),
		"DrainNode":          Typed(e.DrainNode),
		"RemoveNode":         Typed(e.RemoveNode),
		"ReimageNode":        Typed(e.ReimageNode),
		"ProbeLeader":        Typed(e.ProbeLeader),
		"PlanRestarts":       Typed(e.PlanRestarts),
		"RestartStep":        Typed(e.RestartStep),
		"NodeCommand":        Typed(e.NodeCommand),
		"FanOut":             Typed(e.FanOut),
		"ScopeComponents":    Typed(e.ScopeComponents),
	}
}

// OpIn is the execution input of a lifecycle workflow, and what its stages read of it.
// Like Ref, it carries ids, never node lists.
type OpIn struct {
	Ref
	NodeID  string `json:"node_id,omitempty"`
	Role    string `json:"role,omitempty"`    // flexup: the role added; flexdown/replace: the node's role
	Count   int    `json:"count,omitempty"`   // flexup: how many nodes
	Member  bool   `json:"member,omitempty"`  // flexdown: the node was a member (not FAILED) when asked
	Force   bool   `json:"force,omitempty"`   // flexdown/replace: skip the drain
	Command string `json:"command,omitempty"` // services: start|stop|restart
	Service string `json:"service"`           // services: one service ("" = the role's)
}

// TypeInfo is what lifecycle operations need to know about a component type beyond
// model.ComponentType: membership (whose configuration lists whose nodes), the drain,
// the services, and the role a flexup adds by default.
type TypeInfo struct {
	model.ComponentType
	FlexRole   string              `json:"flex_role"`             // the default layout's "rest" role
	Self       []string            `json:"membership_self"`       // roles listed in the component's own config
	Dependents []string            `json:"membership_dependents"` // roles listed in dependents' config
	Services   map[string][]string `json:"services,omitempty"`
	Drain      *DrainInfo          `json:"drain,omitempty"`
}

// DrainInfo is the guest command that empties a node before it goes away.
type DrainInfo struct {
	Roles          []string `json:"roles,omitempty"` // empty: every role
	Command        string   `json:"command"`
	TimeoutSeconds int      `json:"timeout_seconds,omitempty"`
}

// ReconfigureSelf: adding or removing a node of role changes the component's own config.
func (t TypeInfo) ReconfigureSelf(role string) bool { return has(t.Self, role) }

// ReconfigureDependents: adding or removing a node of role changes dependents' config.
func (t TypeInfo) ReconfigureDependents(role string) bool { return has(t.Dependents, role) }

// DrainFor returns the drain of a node of role, if the type has one.
func (t TypeInfo) DrainFor(role string) (*DrainInfo, bool) {
	if t.Drain == nil || (len(t.Drain.Roles) > 0 && !has(t.Drain.Roles, role)) {
		return nil, false
	}
	return t.Drain, true
}

func has(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// ScriptInfo is what lifecycle stages need of the script repo beyond Repos. The deps
// adapter of Repos implements it too; stages find it by type assertion so that Env
// keeps one repos port.
type ScriptInfo interface {
	TypeInfo(ctx context.Context, typ string) (TypeInfo, error)
	// DrainCommand renders the drain guest command of node (ok=false: the type has none
	// for the node's role).
	DrainCommand(ctx context.Context, in PreConfigInput, node model.Node) (op Operation, ok bool, err error)
}

func (e *Env) scriptInfo() (ScriptInfo, error) {
	si, ok := e.Repos.(ScriptInfo)
	if !ok {
		return nil, fmt.Errorf("the repos adapter %T does not describe component types for lifecycle operations", e.Repos)
	}
	return si, nil
}

func (e *Env) typeInfo(ctx context.Context, typ string) (TypeInfo, error) {
	si, err := e.scriptInfo()
	if err != nil {
		return TypeInfo{}, err
	}
	return si.TypeInfo(ctx, typ)
}

// BeginOut is what LifecycleBegin hands the rest of a workflow.
type BeginOut struct {
	Timeouts     Timeouts `json:"timeouts"`
	Drain        bool     `json:"drain"`         // run the drain stage
	DrainTimeout int      `json:"drain_timeout"` // seconds, for the ASL task
	// Keep (flexdown): the component's deletion policy says destroy_after_deletion false;
	// the node leaves straas but its server stays in the cloud (lifecycle_keep.go).
	Keep bool `json:"keep"`
	// StopServices (flexdown, Keep): the kept server's services are stopped before it is
	// detached, so that it no longer serves or rejoins its cluster.
	StopServices bool `json:"stop_services"`
}

// LifecycleBegin starts an operation: the action runs, the component is UPDATING, and
// the operation's own preparation is done (flexup creates its nodes' records).
func (e *Env) LifecycleBegin(ctx context.Context, in OpIn) (BeginOut, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, StageBegin)
	a, err := e.DB.UpdateAction(ctx, in.ActionID, func(a *model.Action) error {
		if a.Status == model.ActionPending {
			now := e.DB.Now()
			a.Status, a.StartedAt = model.ActionRunning, &now
		}
		return nil
	})
	if err != nil {
		return BeginOut{}, err
	}
	stage := int(e.Settings.StageTimeout/time.Second) + 60
	out := BeginOut{Timeouts: Timeouts{Stage: stage}, DrainTimeout: stage}
	if in.ComponentID != "" && a.Kind != ActionServices {
		if _, err := e.DB.UpdateComponent(ctx, in.ComponentID, func(c *model.Component) error {
			if c.Status == model.StatusActive || c.Status == model.StatusDegraded {
				c.Status = model.StatusUpdating
			}
			return nil
		}); err != nil {
			return BeginOut{}, err
		}
	}
	switch a.Kind {
	case ActionFlexup:
		if err := e.flexupNodes(ctx, in); err != nil {
			return BeginOut{}, err
		}
	case ActionFlexdown, ActionReplace:
		if err := e.beginDrain(ctx, in, &out); err != nil {
			return BeginOut{}, err
		}
	}
	var detail []string
	if a.Kind == ActionFlexdown {
		note, err := e.beginKeep(ctx, in, &out)
		if err != nil {
			return BeginOut{}, err
		}
		if note != "" {
			detail = append(detail, note)
		}
	}
	e.stageDone(ctx, in.ActionID, in.ComponentID, StageBegin, "", nil, detail...)
	return out, nil
}

// beginDrain decides whether the node is drained before it goes: its type has a drain
// for its role, it is a member that can answer, and the caller did not force.
func (e *Env) beginDrain(ctx context.Context, in OpIn, out *BeginOut) error {
	if in.Force {
		return nil
	}
	n, _, err := e.DB.Node(ctx, in.NodeID)
	if errs.Is(err, errs.NotFound) {
		return nil // a re-run after the node went
	}
	if err != nil {
		return err
	}
	if n.Status != model.NodeActive || n.CreatedBy == in.ActionID {
		return nil // not serving (or already being re-created by this action): nothing to move
	}
	c, _, err := e.DB.Component(ctx, n.ComponentID)
	if err != nil {
		return err
	}
	ti, err := e.typeInfo(ctx, c.Type)
	if err != nil {
		return err
	}
	if d, ok := ti.DrainFor(n.Role); ok {
		out.Drain = true
		if d.TimeoutSeconds > 0 {
			out.DrainTimeout = d.TimeoutSeconds + 60
		}
	}
	return nil
}

// members lists a component's nodes that are members: every node but FAILED and
// DELETING ones (as pre-config counts them).
func members(nodes []model.Node) []model.Node {
	var out []model.Node
	for _, n := range nodes {
		if n.Status != model.NodeFailed && n.Status != model.NodeDeleting {
			out = append(out, n)
		}
	}
	return out
}

// appliedRef is the configuration ref a component's members run: the commit most of
// them applied, else the topology's branch. Lifecycle operations configure new or
// re-created nodes at it, so that an operation never applies configuration changes
// a user committed but did not apply.
func appliedRef(t *model.Topology, nodes []model.Node) string {
	count := map[string]int{}
	best := ""
	for _, n := range nodes {
		if n.ConfigRef == "" {
			continue
		}
		count[n.ConfigRef]++
		if c := count[n.ConfigRef]; c > count[best] || (c == count[best] && n.ConfigRef < best) {
			best = n.ConfigRef
		}
	}
	if best == "" {
		return t.ConfigBranch
	}
	return best
}

// componentStatus is a serving component's status from its members: ACTIVE when every
// member is, else DEGRADED.
func componentStatus(nodes []model.Node) string {
	ms := members(nodes)
	if len(ms) == 0 {
		return model.StatusFailed
	}
	for _, n := range ms {
		if !up(n.Status) {
			return model.StatusDegraded
		}
	}
	return model.StatusActive
}

// settle recomputes a component's size (per role too) and status from its nodes after
// an operation; it is idempotent.
func (e *Env) settle(ctx context.Context, componentID string) (model.Component, error) {
	return Settle(ctx, e.DB, componentID)
}

// Settle recomputes a component's size (per role too) and status from its nodes: what
// an operation does when it ends, and what a cancel does for the operation it stopped.
func Settle(ctx context.Context, d *db.DB, componentID string) (model.Component, error) {
	nodes, err := d.Nodes(ctx, componentID)
	if err != nil {
		return model.Component{}, err
	}
	ms := members(nodes)
	perRole := map[string]int{}
	for _, n := range ms {
		perRole[n.Role]++
	}
	return d.UpdateComponent(ctx, componentID, func(c *model.Component) error {
		if c.Status == model.StatusDeleting {
			return nil
		}
		c.Size = len(ms)
		for i := range c.Submodules {
			c.Submodules[i].Size = perRole[c.Submodules[i].Role]
		}
		c.Status = componentStatus(nodes)
		return nil
	})
}

// LifecycleFinish ends an operation: it settles the component, releases its lock and
// closes the action — FAILED when nodes it added failed (flexup reports each, with the
// stage and why), SUCCEEDED otherwise.
func (e *Env) LifecycleFinish(ctx context.Context, in OpIn) (JobOut, error) {
	a, _, err := e.DB.Action(ctx, in.ActionID)
	if err != nil {
		return JobOut{}, err
	}
	var failures []model.NodeFailure
	if in.ComponentID != "" {
		var err error
		if failures, err = e.finishNodes(ctx, in); err != nil {
			return JobOut{}, err
		}
	}
	out := JobOut{Status: model.ActionSucceeded}
	var aerr *model.ActionError
	if len(failures) > 0 {
		sort.Slice(failures, func(i, j int) bool { return failures[i].Name < failures[j].Name })
		stage, _ := splitStage(failures[0].Error)
		aerr = &model.ActionError{Stage: stage, Node: failures[0].Name, Error: "NodeFailed",
			Cause: fmt.Sprintf("%d of %d new nodes failed and did not join: %s", len(failures), max(in.Count, len(failures)), describeFailures(failures))}
		out = JobOut{Status: model.ActionFailed, Error: aerr.Error, Cause: aerr.Cause}
	}
	if err := e.closeAction(ctx, &a, in, out.Status, aerr, failures); err != nil {
		return JobOut{}, err
	}
	e.stageDone(ctx, in.ActionID, in.ComponentID, StageFinish, "", nil)
	return out, nil
}

// finishNodes records what the operation's own nodes (new or re-created) run, lists
// those that failed, and settles the component.
func (e *Env) finishNodes(ctx context.Context, in OpIn) ([]model.NodeFailure, error) {
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if errs.Is(err, errs.NotFound) {
		return nil, nil // deleted meanwhile
	}
	if err != nil {
		return nil, err
	}
	nodes, err := e.DB.Nodes(ctx, in.ComponentID)
	if err != nil {
		return nil, err
	}
	var failures []model.NodeFailure
	for _, n := range nodes {
		if n.CreatedBy != in.ActionID {
			continue
		}
		if n.Status == model.NodeFailed {
			failures = append(failures, model.NodeFailure{Node: n.ID, Name: n.Name, Error: n.Error})
			continue
		}
		if _, err := e.DB.UpdateNode(ctx, n.ID, func(x *model.Node) error {
			if x.Status == model.NodeActive {
				x.InstalledVersion, x.Error = c.Version, ""
				if x.Config != nil {
					x.ConfigRef = x.Config.Ref
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if _, err := e.settle(ctx, in.ComponentID); err != nil && !errs.Is(err, errs.NotFound) {
		return nil, err
	}
	return failures, nil
}

// splitStage reads "<stage>: <why>", the form batches record node errors in.
func splitStage(s string) (string, string) {
	stage, why, ok := strings.Cut(s, ": ")
	if !ok || strings.ContainsAny(stage, " ") {
		return "", s
	}
	return stage, why
}

// LifecycleFailed records where and why an operation failed: the stage that was
// running (and its failed nodes), or the child configuration change's error. The
// component is settled (ACTIVE if its members still serve) and unlocked.
func (e *Env) LifecycleFailed(ctx context.Context, in FailIn) (JobOut, error) {
	a, _, err := e.DB.Action(ctx, in.ActionID)
	if err != nil {
		return JobOut{}, err
	}
	stage, node := "", ""
	stages, err := e.DB.Stages(ctx, in.ActionID)
	if err != nil {
		return JobOut{}, err
	}
	cause := childCause(in.Error)
	for _, s := range stages {
		if s.Status == "RUNNING" {
			stage = s.Name
			e.stageDone(ctx, in.ActionID, s.ComponentID, s.Name, "FAILED", nil, cause)
		}
	}
	if stage == "" { // the latest failed stage is where it stopped (earlier ones may have been tolerated)
		for _, s := range stages {
			if s.Status == "FAILED" {
				stage = s.Name
			}
		}
	}
	for _, s := range stages {
		if s.Name == stage && len(s.Failures) > 0 {
			node = s.Failures[0].Name
		}
	}
	if in.Error.Error == "States.Timeout" {
		cause = fmt.Sprintf("stage %s timed out: %s", stage, cause)
	}
	if a.Kind == ActionFlexdown && stage == StageStopServices {
		// A kept server whose services did not stop is not detached: the node stays.
		if err := e.restoreKept(ctx, a.NodeID); err != nil {
			return JobOut{}, err
		}
	}
	if in.ComponentID != "" {
		if _, err := e.settle(ctx, in.ComponentID); err != nil && !errs.Is(err, errs.NotFound) {
			return JobOut{}, err
		}
		if a.Kind == ActionReplace {
			// A member that did not come back leaves its ensemble short: not ACTIVE.
			if n, _, err := e.DB.Node(ctx, a.NodeID); err == nil && !up(n.Status) {
				if _, err := e.DB.UpdateComponent(ctx, in.ComponentID, func(c *model.Component) error {
					if c.Status == model.StatusActive {
						c.Status = model.StatusDegraded
					}
					return nil
				}); err != nil {
					return JobOut{}, err
				}
			}
		}
	}
	compName := ""
	if c, _, err := e.DB.Component(ctx, in.ComponentID); err == nil {
		compName = c.Name
	}
	aerr := &model.ActionError{Component: compName, Stage: stage, Node: node, Error: in.Error.Error, Cause: cause}
	if err := e.closeAction(ctx, &a, OpIn{Ref: in.Ref}, model.ActionFailed, aerr, nil); err != nil {
		return JobOut{}, err
	}
	where := "stage " + stage
	if node != "" {
		where += ", node " + node
	}
	return JobOut{Status: model.ActionFailed, Error: in.Error.Error, Cause: fmt.Sprintf("%s: %s", where, cause)}, nil
}

// childCause makes a child execution's failure readable: a startExecution.sync:2 task
// fails with States.TaskFailed whose cause is the child's description as JSON.
func childCause(se StatesError) string {
	var d struct {
		Name            string `json:"Name"`
		StateMachineArn string `json:"StateMachineArn"`
		Error           string `json:"Error"`
		Cause           string `json:"Cause"`
	}
	if se.Error != "States.TaskFailed" || json.Unmarshal([]byte(se.Cause), &d) != nil || d.StateMachineArn == "" {
		return se.Cause
	}
	m := d.StateMachineArn[strings.LastIndex(d.StateMachineArn, ":")+1:]
	return fmt.Sprintf("%s (execution %s) failed: %s: %s", m, d.Name, d.Error, d.Cause)
}

// closeAction ends the action, releases the component lock and records an event.
func (e *Env) closeAction(ctx context.Context, a *model.Action, in OpIn, status string, aerr *model.ActionError, failures []model.NodeFailure) error {
	if _, err := e.DB.UpdateAction(ctx, a.ID, func(x *model.Action) error {
		if x.FinishedAt == nil {
			now := e.DB.Now()
			x.FinishedAt = &now
		}
		x.Status, x.Error = status, aerr
		return nil
	}); err != nil {
		return err
	}
	if in.ComponentID != "" {
		if err := ReleaseLock(ctx, e.DB, in.ComponentID, a.ID); err != nil {
			return err
		}
	}
	lvl, msg := model.LevelInfo, fmt.Sprintf("%s succeeded", a.Kind)
	if status != model.ActionSucceeded {
		lvl, msg = model.LevelError, fmt.Sprintf("%s failed", a.Kind)
		if aerr != nil {
			msg += ": " + aerr.Cause
		}
	}
	ev := model.Event{Type: "action." + strings.ToLower(status), Level: lvl, TopologyID: a.TopologyID, ComponentID: a.ComponentID,
		NodeID: a.NodeID, ActionID: a.ID, Tenant: a.Tenant, Message: msg}
	if len(failures) > 0 {
		ev.Data = map[string]any{"failed_nodes": failures}
	}
	e.emit(ctx, ev)
	return nil
}

// --- the component lock -----------------------------------------------------------

// KindComponentLock is the record kind of component locks.
const KindComponentLock = "component_lock"

// Lock says which action is changing a component. The API writes it (Absent) in the
// same atomic write as the action; the action's last stage deletes it.
type Lock struct {
	ComponentID string    `json:"component_id"`
	ActionID    string    `json:"action_id"`
	Kind        string    `json:"kind"`
	At          time.Time `json:"at"`
}

// LockOp is the write that takes a component's lock for an action; it fails with
// errs.Conflict when another action holds it.
func LockOp(l Lock) (store.Op, error) {
	r, err := store.Encode(KindComponentLock, l.ComponentID, l)
	return store.Put(r, store.Absent), err
}

// LoadLock returns a component's lock (errs.NotFound when free).
func LoadLock(ctx context.Context, d *db.DB, componentID string) (Lock, store.Record, error) {
	return store.Load[Lock](ctx, d.S, KindComponentLock, componentID)
}

// ReleaseLock frees a component's lock if actionID holds it.
func ReleaseLock(ctx context.Context, d *db.DB, componentID, actionID string) error {
	l, r, err := LoadLock(ctx, d, componentID)
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if l.ActionID != actionID {
		return nil
	}
	err = d.S.Write(ctx, store.Del(KindComponentLock, componentID, store.AtVersion, r.Version))
	if err != nil && !errors.Is(err, store.ErrCondition) {
		return err
	}
	return nil
}
