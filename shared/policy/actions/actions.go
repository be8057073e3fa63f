// Package actions starts the actions policies and operational states take — heal a
// node, scale a component, maintenance (restart, replace), converge a topology — after
// the checks every caller must apply alike: operational states, cooldown and bounds,
// one recovery per node, and the per-component queue that serialises disruptive
// operations. The API, the checker and the receivers call it; the workflows
// (statemachines heal, scale, maintenance, converge) do the work.
package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/jobs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/policy/records"
	"github.com/straas/straas/shared/store"
)

// Action kinds and the machines that run them.
const (
	KindHeal           = "heal_node"
	KindScaleOut       = "scale_out"
	KindScaleIn        = "scale_in"
	KindMaintRestart   = "maintenance_restart"
	KindMaintReplace   = "maintenance_replace"
	KindConverge       = "converge_topology"
	MachineHeal        = "heal"
	MachineScale       = "scale"
	MachineMaintenance = "maintenance"
	MachineConverge    = "converge"
)

// HealInput is the input of the heal workflow.
type HealInput struct {
	ActionID     string     `json:"action_id"`
	TopologyID   string     `json:"topology_id"`
	ComponentID  string     `json:"component_id"`
	NodeID       string     `json:"node_id"`
	Mode         string     `json:"mode"` // the failure's detection mode
	Reason       string     `json:"reason"`
	DelayedSince *time.Time `json:"delayed_since,omitempty"` // healing was held back since then
}

// ScaleInput is the input of the scale workflow.
type ScaleInput struct {
	ActionID    string `json:"action_id"`
	TopologyID  string `json:"topology_id"`
	ComponentID string `json:"component_id"`
	Direction   string `json:"direction"` // scale_out, scale_in
	Count       int    `json:"count"`
	Role        string `json:"role,omitempty"`
	Cause       string `json:"cause"`
}

// MaintenanceInput is the input of the maintenance workflow.
type MaintenanceInput struct {
	ActionID   string   `json:"action_id"`
	TopologyID string   `json:"topology_id"`
	Level      string   `json:"level"`     // where the command was set
	TargetID   string   `json:"target_id"` // its id
	Mode       string   `json:"mode"`      // restart, replace
	RestartAs  string   `json:"restart_as"`
	Force      bool     `json:"force"`      // replace now, not in a window
	Components []string `json:"components"` // the components it touches
}

// ConvergeInput is the input of the converge workflow.
type ConvergeInput struct {
	ActionID   string `json:"action_id"`
	TopologyID string `json:"topology_id"`
	Revision   int    `json:"revision"` // of the desired spec
}

// Service starts policy actions.
type Service struct {
	DB       *db.DB
	Records  *records.Records
	Launcher *jobs.Launcher
	Log      *slog.Logger
}

// New returns a Service.
func New(d *db.DB, l *jobs.Launcher, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{DB: d, Records: records.New(d), Launcher: l, Log: log}
}

func (s *Service) emit(ctx context.Context, e model.Event) {
	if err := s.DB.Emit(ctx, e); err != nil {
		s.Log.Warn("record event", "type", e.Type, "err", err)
	}
}

// --- healing -----------------------------------------------------------------------------

// Heal starts the recovery of a node unless one runs already (then it returns that one's
// id and started false). delayedSince, when set, says healing was held back since then
// (autohealing off, maintenance) and is reported on the action and in an event.
func (s *Service) Heal(ctx context.Context, n *model.Node, f policy.Failure, delayedSince *time.Time) (string, bool, error) {
	flags, frec, err := s.flagsRecord(ctx, n)
	if err != nil {
		return "", false, err
	}
	if flags.Healing != "" {
		return flags.Healing, false, nil
	}
	now := s.DB.Now()
	a := &model.Action{ID: db.NewID("act"), Kind: KindHeal, Tenant: n.Tenant, TopologyID: n.TopologyID,
		ComponentID: n.ComponentID, NodeID: n.ID, Machine: MachineHeal, CreatedAt: now}
	in := HealInput{ActionID: a.ID, TopologyID: n.TopologyID, ComponentID: n.ComponentID, NodeID: n.ID,
		Mode: f.Mode, Reason: f.Reason, DelayedSince: delayedSince}
	a.Input, _ = json.Marshal(in)
	since := now
	if flags.Failure != nil && !flags.Failure.Since.IsZero() {
		since = flags.Failure.Since
	}
	flags.Healing = a.ID
	flags.Failure = &records.FailureRecord{Mode: f.Mode, Reason: f.Reason, Since: since}
	op, err := flagsOp(&flags, frec)
	if err != nil {
		return "", false, err
	}
	if err := s.Launcher.Submit(ctx, a, op); err != nil {
		if errs.Is(err, errs.Conflict) { // someone else claimed the node meanwhile
			again, _, err2 := s.flagsRecord(ctx, n)
			if err2 == nil && again.Healing != "" {
				return again.Healing, false, nil
			}
		}
		return "", false, fmt.Errorf("start recovery of node %s: %w", n.Name, err)
	}
	msg := fmt.Sprintf("node %s failed (%s): recovery started", n.Name, f.Reason)
	ev := model.Event{Type: "node.heal", Level: model.LevelWarning, TopologyID: n.TopologyID, ComponentID: n.ComponentID,
		NodeID: n.ID, ActionID: a.ID, Tenant: n.Tenant, Message: msg, Data: map[string]any{"mode": f.Mode, "reason": f.Reason}}
	if delayedSince != nil {
		ev.Type = "node.heal_delayed"
		ev.Message = fmt.Sprintf("node %s failed (%s): recovery started; healing was delayed since %s (%s)", n.Name, f.Reason,
			delayedSince.UTC().Format(time.RFC3339), now.Sub(*delayedSince).Round(time.Second))
		ev.Data["delayed_since"] = delayedSince.UTC().Format(time.RFC3339)
	}
	s.emit(ctx, ev)
	return a.ID, true, nil
}

func (s *Service) flagsRecord(ctx context.Context, n *model.Node) (records.NodeFlags, store.Record, error) {
	rec, err := s.DB.S.Get(ctx, records.KindNodeFlags, n.ID)
	if errs.Is(err, errs.NotFound) {
		return records.NodeFlags{NodeID: n.ID, ComponentID: n.ComponentID, TopologyID: n.TopologyID, Tenant: n.Tenant}, store.Record{}, nil
	}
	if err != nil {
		return records.NodeFlags{}, rec, err
	}
	var f records.NodeFlags
	return f, rec, store.Decode(rec, &f)
}

// flagsOp writes flags conditionally on the version read (absent when never written).
func flagsOp(f *records.NodeFlags, prev store.Record) (store.Op, error) {
	r, err := records.NodeFlagsRecord(f)
	if err != nil {
		return store.Op{}, err
	}
	if prev.Version == 0 {
		return store.Put(r, store.Absent), nil
	}
	r.Version = prev.Version
	return store.Put(r, store.AtVersion), nil
}

// --- scaling ---------------------------------------------------------------------------------

// ScaleRequest asks for a scaling.
type ScaleRequest struct {
	Component model.Component
	Direction string
	Count     int    // 0: the policy's adjustment
	Cause     string // e.g. "receiver r-1", "trigger avg cpu > 80 for 3 intervals"
	User      string
	Automatic bool // by a trigger: skipped, not queued, while the component is busy
	TypeMin   int  // the component type's minimum size (0: unknown)
}

// ScaleResult says what a scale request did.
type ScaleResult struct {
	Decision policy.Decision `json:"decision"`
	ActionID string          `json:"action_id,omitempty"`
	Queued   []string        `json:"queued_behind,omitempty"`
}

// Scale checks autoscaling, cooldown and bounds against the component's scaling policy
// (if any) and starts a scaling. Refusals are errs.Conflict with the reason.
func (s *Service) Scale(ctx context.Context, req ScaleRequest) (ScaleResult, error) {
	for attempt := 0; ; attempt++ {
		res, err := s.scale(ctx, req)
		if !errors.Is(err, errRace) || attempt == 20 {
			if errors.Is(err, errRace) {
				err = errs.Conflictf("component %s keeps changing; retry", req.Component.Name)
			}
			return res, err
		}
	}
}

// errRace: the component's state changed between the checks and the write.
var errRace = errors.New("component state changed meanwhile")

func (s *Service) scale(ctx context.Context, req ScaleRequest) (ScaleResult, error) {
	c := req.Component
	var res ScaleResult
	ops, err := s.Records.OpStates(ctx, c.TopologyID)
	if err != nil {
		return res, err
	}
	if ok, why := policy.ScalingAllowed(ops.Effective(c.TopologyID, c.ID, "")); !ok {
		return res, errs.Conflictf("component %s: %s; nothing scaled", c.Name, why)
	}
	spec, err := s.ScalingSpec(ctx, c.ID)
	if err != nil {
		return res, err
	}
	st, strec, err := s.componentStateRecord(ctx, &c)
	if err != nil {
		return res, err
	}
	now := s.DB.Now()
	if st.Scaling != "" {
		if a, _, err := s.DB.Action(ctx, st.Scaling); err == nil && !ended(a.Status) {
			return res, errs.Conflictf("component %s is scaling already (action %s)", c.Name, st.Scaling)
		}
	}
	if spec != nil {
		if until, in := spec.InCooldown(now, st.LastScaleAt); in {
			return res, errs.Conflictf("component %s is in cooldown until %s (last scaling %s)", c.Name, until.UTC().Format(time.RFC3339), st.LastScale)
		}
	}
	if req.Automatic && len(st.Queue) > 0 {
		return res, errs.Conflictf("component %s is busy (action %s); the trigger waits", c.Name, st.Queue[0])
	}
	current, err := s.size(ctx, c.ID, roleOf(spec))
	if err != nil {
		return res, err
	}
	d, err := spec.Decide(req.Direction, current, req.Count, max(req.TypeMin, 1))
	res.Decision = d
	if err != nil {
		return res, err
	}
	kind := KindScaleOut
	if req.Direction == policy.ScaleIn {
		kind = KindScaleIn
	}
	a := &model.Action{ID: db.NewID("act"), Kind: kind, Tenant: c.Tenant, User: req.User, TopologyID: c.TopologyID,
		ComponentID: c.ID, Machine: MachineScale, CreatedAt: now}
	a.Input, _ = json.Marshal(ScaleInput{ActionID: a.ID, TopologyID: c.TopologyID, ComponentID: c.ID, Direction: req.Direction,
		Count: d.Count, Role: roleOf(spec), Cause: req.Cause})
	res.Queued = slices.Clone(st.Queue)
	st.Scaling, st.LastScaleAt, st.LastScale = a.ID, &now, d.Reason
	st.Queue = append(st.Queue, a.ID)
	op, err := componentStateOp(&st, strec)
	if err != nil {
		return res, err
	}
	if err := s.Launcher.Submit(ctx, a, op); err != nil {
		if errs.Is(err, errs.Conflict) {
			return res, errRace
		}
		return res, err
	}
	res.ActionID = a.ID
	msg := fmt.Sprintf("component %s: %s, cause: %s", c.Name, d.Reason, req.Cause)
	if len(res.Queued) > 0 {
		msg += fmt.Sprintf("; queued behind %v", res.Queued)
	}
	s.emit(ctx, model.Event{Type: "component." + req.Direction, TopologyID: c.TopologyID, ComponentID: c.ID, ActionID: a.ID,
		Tenant: c.Tenant, Message: msg, Data: map[string]any{"current": d.Current, "target": d.Target, "cause": req.Cause}})
	return res, nil
}

// ScalingSpec returns the enabled scaling policy of a component, or nil.
func (s *Service) ScalingSpec(ctx context.Context, componentID string) (*policy.ScalingSpec, error) {
	p, err := s.Spec(ctx, componentID, policy.TypeScaling)
	if err != nil || p == nil {
		return nil, err
	}
	return p.Scaling(), nil
}

// Spec returns the parsed spec of the enabled policy of a type attached to a component
// (nil when none).
func (s *Service) Spec(ctx context.Context, componentID, typ string) (*policy.Parsed, error) {
	bs, err := s.Records.Bindings(ctx, componentID)
	if err != nil {
		return nil, err
	}
	for _, b := range bs {
		if b.PolicyType != typ || !b.Enabled {
			continue
		}
		p, _, err := s.Records.Policy(ctx, b.PolicyID)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		parsed, err := p.Parse()
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", p.ID, err)
		}
		return &parsed, nil
	}
	return nil, nil
}

func roleOf(s *policy.ScalingSpec) string {
	if s == nil {
		return ""
	}
	return s.Role
}

// size counts a component's nodes (of role, if set) that are not being deleted.
func (s *Service) size(ctx context.Context, componentID, role string) (int, error) {
	nodes, err := s.DB.Nodes(ctx, componentID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, x := range nodes {
		if x.Status != model.NodeDeleting && (role == "" || x.Role == role) {
			n++
		}
	}
	return n, nil
}

func (s *Service) componentStateRecord(ctx context.Context, c *model.Component) (records.ComponentState, store.Record, error) {
	rec, err := s.DB.S.Get(ctx, records.KindComponentState, c.ID)
	if errs.Is(err, errs.NotFound) {
		return records.ComponentState{ComponentID: c.ID, TopologyID: c.TopologyID, Tenant: c.Tenant}, store.Record{}, nil
	}
	if err != nil {
		return records.ComponentState{}, rec, err
	}
	var st records.ComponentState
	return st, rec, store.Decode(rec, &st)
}

func componentStateOp(st *records.ComponentState, prev store.Record) (store.Op, error) {
	r, err := records.ComponentStateRecord(st)
	if err != nil {
		return store.Op{}, err
	}
	if prev.Version == 0 {
		return store.Put(r, store.Absent), nil
	}
	r.Version = prev.Version
	return store.Put(r, store.AtVersion), nil
}

func ended(status string) bool {
	return status == model.ActionSucceeded || status == model.ActionFailed || status == model.ActionCancelled
}

// Ended reports whether an action status is final.
func Ended(status string) bool { return ended(status) }

// --- serialisation -------------------------------------------------------------------------

// Enqueue ops put action id at the end of the queues of components: written with the
// action (Launcher.Submit), so that the queues' order is the order of submission.
// It returns the ops and, per component, the actions ahead.
func (s *Service) Enqueue(ctx context.Context, comps []model.Component, actionID string) ([]store.Op, []string, error) {
	var ops []store.Op
	var ahead []string
	for i := range comps {
		st, rec, err := s.componentStateRecord(ctx, &comps[i])
		if err != nil {
			return nil, nil, err
		}
		for _, q := range st.Queue {
			if !slices.Contains(ahead, q) {
				ahead = append(ahead, q)
			}
		}
		st.Queue = append(st.Queue, actionID)
		op, err := componentStateOp(&st, rec)
		if err != nil {
			return nil, nil, err
		}
		ops = append(ops, op)
	}
	return ops, ahead, nil
}

// Turn reports whether action id is first in every queue of comps, dropping from the
// heads actions that have ended (a crash, a cancel). It returns what it waits for.
func (s *Service) Turn(ctx context.Context, comps []string, actionID string) (bool, []string, error) {
	var waiting []string
	for _, cid := range comps {
		c, _, err := s.DB.Component(ctx, cid)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return false, nil, err
		}
		st, err := s.Records.UpdateComponentState(ctx, &c, func(st *records.ComponentState) error {
			if !slices.Contains(st.Queue, actionID) {
				st.Queue = append(st.Queue, actionID) // enqueued by an older submission path, or lost: join now
			}
			for len(st.Queue) > 0 && st.Queue[0] != actionID {
				a, _, err := s.DB.Action(ctx, st.Queue[0])
				if err != nil && !errs.Is(err, errs.NotFound) {
					return err
				}
				if err == nil && !ended(a.Status) {
					break
				}
				st.Queue = st.Queue[1:]
			}
			return nil
		})
		if err != nil {
			return false, nil, err
		}
		if len(st.Queue) > 0 && st.Queue[0] != actionID && !slices.Contains(waiting, st.Queue[0]) {
			waiting = append(waiting, st.Queue[0])
		}
	}
	return len(waiting) == 0, waiting, nil
}

// Dequeue removes action id from the queues of comps (idempotent).
func (s *Service) Dequeue(ctx context.Context, comps []string, actionID string) error {
	var errList []error
	for _, cid := range comps {
		c, _, err := s.DB.Component(ctx, cid)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			errList = append(errList, err)
			continue
		}
		_, err = s.Records.UpdateComponentState(ctx, &c, func(st *records.ComponentState) error {
			st.Queue = slices.DeleteFunc(st.Queue, func(x string) bool { return x == actionID })
			if st.Scaling == actionID {
				st.Scaling = ""
			}
			return nil
		})
		if err != nil {
			errList = append(errList, err)
		}
	}
	return errors.Join(errList...)
}

// Release lets go of what a cancelled (or otherwise ended) policy action held: its
// place in the components' queues, its recovery slot and the node it was healing, the
// maintenance flags it set and the maintenance command it carried out.
func (s *Service) Release(ctx context.Context, a *model.Action) error {
	var comps []string
	if a.ComponentID != "" {
		comps = append(comps, a.ComponentID)
	}
	var in MaintenanceInput
	if a.Machine == MachineMaintenance && json.Unmarshal(a.Input, &in) == nil {
		for _, c := range in.Components {
			if !slices.Contains(comps, c) {
				comps = append(comps, c)
			}
		}
	}
	if a.TopologyID != "" && a.Machine == MachineConverge {
		cs, err := s.DB.Components(ctx, a.TopologyID)
		if err != nil {
			return err
		}
		for _, c := range cs {
			comps = append(comps, c.ID)
		}
		// The convergence marked the topology UPDATING; it is not any more.
		if _, err := s.DB.UpdateTopology(ctx, a.TopologyID, func(t *model.Topology) error {
			if t.Status == model.StatusUpdating {
				t.Status = model.StatusActive
			}
			return nil
		}); err != nil && !errs.Is(err, errs.NotFound) {
			return err
		}
	}
	var errList []error
	errList = append(errList, s.Dequeue(ctx, comps, a.ID))
	for _, cid := range comps {
		c, _, err := s.DB.Component(ctx, cid)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			errList = append(errList, err)
			continue
		}
		if _, err := s.Records.UpdateComponentState(ctx, &c, func(st *records.ComponentState) error {
			st.Healing = slices.DeleteFunc(st.Healing, func(x string) bool { return x == a.ID })
			return nil
		}); err != nil {
			errList = append(errList, err)
		}
		flags, err := s.Records.ComponentFlags(ctx, cid)
		if err != nil {
			errList = append(errList, err)
			continue
		}
		for id, f := range flags {
			if f.Healing != a.ID && f.MaintenanceAction != a.ID {
				continue
			}
			n, _, err := s.DB.Node(ctx, id)
			if err != nil {
				continue
			}
			if f.MaintenanceAction == a.ID && f.Maintenance != "" {
				if _, err := s.EndNodeMaintenance(ctx, &n, "action "+a.ID+" cancelled"); err != nil {
					errList = append(errList, err)
				}
			}
			if f.Healing == a.ID {
				if _, err := s.Records.UpdateNodeFlags(ctx, &n, func(x *records.NodeFlags) error {
					if x.Healing == a.ID {
						// Tried again after the policy's retry interval, as after a failed recovery.
						now := s.DB.Now()
						x.Healing, x.HealFailedAt = "", &now
					}
					return nil
				}); err != nil {
					errList = append(errList, err)
				}
			}
		}
	}
	if a.TopologyID != "" {
		ops, err := s.Records.OpStates(ctx, a.TopologyID)
		if err != nil {
			errList = append(errList, err)
		}
		for _, o := range ops {
			if o.Action != a.ID {
				continue
			}
			if _, err := s.Records.UpdateOpState(ctx, o.Level, o.TargetID, o.TopologyID, o.ComponentID, func(x *records.OpState) error {
				if x.Action == a.ID {
					x.Action, x.Own.Maintenance = "", policy.Off
				}
				return nil
			}); err != nil {
				errList = append(errList, err)
			}
		}
	}
	return errors.Join(errList...)
}
