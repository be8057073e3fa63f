package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/policy/records"
	"github.com/straas/straas/shared/store"
)

// Target is a resolved level of an operational state.
type Target struct {
	Level     string
	Topology  model.Topology
	Component *model.Component // the component, or the node's
	Node      *model.Node
}

// ID is the target's id.
func (t Target) ID() string {
	switch t.Level {
	case policy.LevelNode:
		return t.Node.ID
	case policy.LevelComponent:
		return t.Component.ID
	}
	return t.Topology.ID
}

// Name is the target in words, e.g. "component zk".
func (t Target) Name() string {
	switch t.Level {
	case policy.LevelNode:
		return "node " + t.Node.Name
	case policy.LevelComponent:
		return "component " + t.Component.Name
	}
	return "topology " + t.Topology.Name
}

// Resolve loads the target of level/id.
func (s *Service) Resolve(ctx context.Context, level, id string) (Target, error) {
	t := Target{Level: level}
	topoID := id
	switch level {
	case policy.LevelNode:
		n, _, err := s.DB.Node(ctx, id)
		if err != nil {
			return t, err
		}
		c, _, err := s.DB.Component(ctx, n.ComponentID)
		if err != nil {
			return t, err
		}
		t.Node, t.Component, topoID = &n, &c, n.TopologyID
	case policy.LevelComponent:
		c, _, err := s.DB.Component(ctx, id)
		if err != nil {
			return t, err
		}
		t.Component, topoID = &c, c.TopologyID
	case policy.LevelTopology:
	default:
		return t, errs.Invalidf("level", "unknown level %q", level)
	}
	topo, _, err := s.DB.Topology(ctx, topoID)
	if err != nil {
		return t, err
	}
	t.Topology = topo
	return t, nil
}

// OpRequest is the body of PUT .../operational_state.
type OpRequest struct {
	policy.Command
	Windows       *[]policy.Window `json:"maintenance_windows,omitempty"` // components only
	RestartMode   string           `json:"restart_mode,omitempty"`        // maintenance restart: restart (default) or reboot
	IgnoreWindows bool             `json:"ignore_windows,omitempty"`      // maintenance replace at once, not in a window
}

// OpResult is what a command did.
type OpResult struct {
	Changed []string `json:"changed"`                 // fields whose value changed
	Action  string   `json:"action_id,omitempty"`     // the maintenance action started
	Queued  []string `json:"queued_behind,omitempty"` // actions it waits for
	Note    string   `json:"note,omitempty"`
}

// Validate checks a request for a level.
func (r *OpRequest) Validate(level string) error {
	if err := r.Settings.Validate(""); err != nil {
		return err
	}
	if r.Settings.Empty() && r.Windows == nil {
		return errs.Invalidf("body", "nothing to set: give autoscaling, autohealing, maintenance or maintenance_windows")
	}
	if r.Windows != nil {
		if level != policy.LevelComponent {
			return errs.Invalidf("maintenance_windows", "windows are declared on components")
		}
		if err := policy.ValidateWindows("maintenance_windows", *r.Windows); err != nil {
			return err
		}
	}
	m := r.Maintenance
	if level == policy.LevelTopology && (m == policy.MaintRestart || m == policy.MaintReplace) && !r.Propagate {
		return errs.Invalidf("propagate", "maintenance %s on a topology reaches its nodes only with propagate: true (a state applies to the level it is set on; a topology has no nodes of its own)", m)
	}
	switch r.RestartMode {
	case "", "restart", "reboot":
	default:
		return errs.Invalidf("restart_mode", "must be restart or reboot, got %q", r.RestartMode)
	}
	if r.RestartMode != "" && m != policy.MaintRestart {
		return errs.Invalidf("restart_mode", "only with maintenance: restart")
	}
	if r.IgnoreWindows && m != policy.MaintReplace {
		return errs.Invalidf("ignore_windows", "only with maintenance: replace")
	}
	return nil
}

// SetOpState applies an operational state command to a level: it records the level's
// state (and, with propagate, clears what the levels below had set), reports every
// change as an event, and starts a maintenance action for maintenance restart, replace,
// or off while one is running. Maintenance commands on overlapping scopes are queued
// behind each other (serialised) and the answer says so.
func (s *Service) SetOpState(ctx context.Context, t Target, req OpRequest, user, userName string) (OpResult, error) {
	var res OpResult
	if err := req.Validate(t.Level); err != nil {
		return res, err
	}
	comps, err := s.affected(ctx, t, req.Propagate)
	if err != nil {
		return res, err
	}
	now := s.DB.Now()
	var a *model.Action
	var qops []store.Op
	switch m := req.Maintenance; {
	case m == policy.MaintRestart || m == policy.MaintReplace || (m == policy.Off && s.busy(ctx, comps)):
		kind := map[string]string{policy.MaintRestart: KindMaintRestart, policy.MaintReplace: KindMaintReplace, policy.Off: "maintenance_off"}[m]
		a = &model.Action{ID: db.NewID("act"), Kind: kind, Tenant: t.Topology.Tenant, User: user, TopologyID: t.Topology.ID,
			Machine: MachineMaintenance, CreatedAt: now}
		if t.Component != nil {
			a.ComponentID = t.Component.ID
		}
		if t.Node != nil {
			a.NodeID = t.Node.ID
		}
		in := MaintenanceInput{ActionID: a.ID, TopologyID: t.Topology.ID, Level: t.Level, TargetID: t.ID(), Mode: m,
			RestartAs: req.RestartMode, Force: req.IgnoreWindows}
		for _, c := range comps {
			in.Components = append(in.Components, c.ID)
		}
		a.Input, _ = json.Marshal(in)
		if qops, res.Queued, err = s.Enqueue(ctx, comps, a.ID); err != nil {
			return res, err
		}
	}
	// The level's own state first: a maintenance command is in effect (healing held back)
	// from now, even while its action waits for its turn.
	var prev records.OpState
	rec, err := s.Records.UpdateOpState(ctx, t.Level, t.ID(), t.Topology.ID, componentOf(t), func(o *records.OpState) error {
		prev = *o
		prev.Propagated = slices.Clone(o.Propagated)
		res.Changed = o.Apply(req.Command)
		if req.Windows != nil {
			o.Windows = *req.Windows
			res.Changed = append(res.Changed, "maintenance_windows")
		}
		if req.Maintenance != "" {
			o.RestartAs, o.Force = req.RestartMode, req.IgnoreWindows
			o.Action = ""
			if a != nil {
				o.Action = a.ID
			}
		}
		o.UpdatedBy = userName
		return nil
	})
	if err != nil {
		return res, err
	}
	if a != nil {
		err := s.Launcher.Submit(ctx, a, qops...)
		// A queue written meanwhile (another command, a workflow taking its turn): the
		// atomic write wrote nothing; enqueue again behind whatever is there now.
		for attempt := 0; errs.Is(err, errs.Conflict) && attempt < 20; attempt++ {
			if qops, res.Queued, err = s.Enqueue(ctx, comps, a.ID); err != nil {
				break
			}
			err = s.Launcher.Submit(ctx, a, qops...)
		}
		if err != nil {
			// Undo the command: nothing will carry it out.
			_, _ = s.Records.UpdateOpState(ctx, t.Level, t.ID(), t.Topology.ID, componentOf(t), func(o *records.OpState) error {
				if o.Action == a.ID {
					o.LevelState, o.Action = prev.LevelState, prev.Action
				}
				return nil
			})
			if errs.Is(err, errs.Conflict) {
				return res, errs.Conflictf("%s changed meanwhile; retry", t.Name())
			}
			return res, err
		}
		res.Action = a.ID
		if req.Maintenance == policy.MaintRestart || req.Maintenance == policy.MaintReplace {
			res.Changed = appendOnce(res.Changed, policy.FieldMaintenance)
		}
	}
	if req.Propagate && len(res.Changed) > 0 {
		if err := s.clearBelow(ctx, t, req.Command); err != nil {
			return res, err
		}
	}
	if req.Maintenance == policy.Off && a == nil {
		n, err := s.endMaintenanceIn(ctx, t, comps, "maintenance set off by "+userName)
		if err != nil {
			return res, err
		}
		if n > 0 {
			res.Note = fmt.Sprintf("maintenance flags cleared on %d nodes", n)
		}
	}
	if len(res.Queued) > 0 {
		res.Note = fmt.Sprintf("queued behind %s: it runs when they end", strings.Join(res.Queued, ", "))
		s.emit(ctx, model.Event{Type: "opstate.queued", Level: model.LevelWarning, TopologyID: t.Topology.ID, ComponentID: componentOf(t),
			NodeID: nodeOf(t), ActionID: res.Action, Tenant: t.Topology.Tenant, User: userName,
			Message: fmt.Sprintf("%s: %s conflicts with %s in progress: queued behind it", t.Name(), req.Command.Describe(), strings.Join(res.Queued, ", ")),
			Data:    map[string]any{"queued_behind": res.Queued}})
	}
	if len(res.Changed) > 0 || res.Action != "" {
		msg := fmt.Sprintf("%s: %s", t.Name(), req.Command.Describe())
		if req.Windows != nil {
			msg += fmt.Sprintf(" (%d maintenance windows)", len(*req.Windows))
		}
		if res.Action != "" {
			msg += "; action " + res.Action
		}
		s.emit(ctx, model.Event{Type: "opstate.set", TopologyID: t.Topology.ID, ComponentID: componentOf(t), NodeID: nodeOf(t),
			ActionID: res.Action, Tenant: t.Topology.Tenant, User: userName, Message: msg,
			Data: map[string]any{"level": t.Level, "own": rec.Own, "propagate": req.Propagate, "changed": res.Changed}})
	}
	return res, nil
}

func appendOnce(xs []string, x string) []string {
	if slices.Contains(xs, x) {
		return xs
	}
	return append(xs, x)
}

func componentOf(t Target) string {
	if t.Component != nil {
		return t.Component.ID
	}
	return ""
}

func nodeOf(t Target) string {
	if t.Node != nil {
		return t.Node.ID
	}
	return ""
}

// affected lists the components a command on t reaches.
func (s *Service) affected(ctx context.Context, t Target, propagate bool) ([]model.Component, error) {
	switch {
	case t.Component != nil:
		return []model.Component{*t.Component}, nil
	case propagate:
		return s.DB.Components(ctx, t.Topology.ID)
	}
	return nil, nil
}

// busy reports whether a maintenance or scaling action is queued on any of comps.
func (s *Service) busy(ctx context.Context, comps []model.Component) bool {
	for i := range comps {
		st, err := s.Records.ComponentState(ctx, &comps[i])
		if err != nil {
			continue
		}
		for _, id := range st.Queue {
			if a, _, err := s.DB.Action(ctx, id); err == nil && !ended(a.Status) {
				return true
			}
		}
	}
	return false
}

// clearBelow removes the command's fields from the levels below t, which now follow it.
func (s *Service) clearBelow(ctx context.Context, t Target, cmd policy.Command) error {
	var fields []string
	for _, f := range policy.Fields {
		if cmd.Get(f) != "" {
			fields = append(fields, f)
		}
	}
	states, err := s.Records.OpStates(ctx, t.Topology.ID)
	if err != nil {
		return err
	}
	for _, o := range states {
		below := false
		switch t.Level {
		case policy.LevelTopology:
			below = o.Level != policy.LevelTopology
		case policy.LevelComponent:
			below = o.Level == policy.LevelNode && o.ComponentID == t.Component.ID
		}
		if !below {
			continue
		}
		if _, err := s.Records.UpdateOpState(ctx, o.Level, o.TargetID, o.TopologyID, o.ComponentID, func(x *records.OpState) error {
			x.Clear(fields)
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// endMaintenanceIn clears the maintenance flags of the nodes of t (all of comps' nodes,
// or t's node).
func (s *Service) endMaintenanceIn(ctx context.Context, t Target, comps []model.Component, why string) (int, error) {
	n := 0
	for _, c := range comps {
		flags, err := s.Records.ComponentFlags(ctx, c.ID)
		if err != nil {
			return n, err
		}
		for id, f := range flags {
			if f.Maintenance == "" || (t.Node != nil && t.Node.ID != id) {
				continue
			}
			node, _, err := s.DB.Node(ctx, id)
			if errs.Is(err, errs.NotFound) {
				continue
			}
			if err != nil {
				return n, err
			}
			ok, err := s.EndNodeMaintenance(ctx, &node, why)
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
		}
	}
	return n, nil
}

// BeginNodeMaintenance flags a node as in maintenance (mode restart, reboot or
// replace) for an action, remembering its status to restore. batchID is the batch its
// resume event fills.
func (s *Service) BeginNodeMaintenance(ctx context.Context, n *model.Node, mode, actionID, batchID string) error {
	prev := n.Status
	now := s.DB.Now()
	if _, err := s.Records.UpdateNodeFlags(ctx, n, func(f *records.NodeFlags) error {
		if f.Maintenance != "" && f.MaintenanceAction == actionID {
			prev = f.PrevStatus // a re-run: keep what was saved
		}
		f.Maintenance, f.MaintenanceAction, f.MaintenanceBatch, f.PrevStatus = mode, actionID, batchID, prev
		f.MaintenanceSince = &now
		return nil
	}); err != nil {
		return err
	}
	if mode == policy.StepReplace || mode == policy.MaintReplace {
		return nil // the replace workflow owns the node's status
	}
	_, err := s.DB.UpdateNode(ctx, n.ID, func(x *model.Node) error {
		if x.Status == model.NodeActive || x.Status == model.NodeUnreachable {
			x.Status = model.NodeMaintenance
		}
		return nil
	})
	return err
}

// EndNodeMaintenance clears a node's maintenance flag (the resume event, maintenance
// off, a timeout) and restores its status. It reports whether the node was in
// maintenance.
func (s *Service) EndNodeMaintenance(ctx context.Context, n *model.Node, why string) (bool, error) {
	var was records.NodeFlags
	if _, err := s.Records.UpdateNodeFlags(ctx, n, func(f *records.NodeFlags) error {
		was = *f
		f.Maintenance, f.MaintenanceSince, f.MaintenanceBatch, f.PrevStatus = "", nil, "", ""
		return nil
	}); err != nil {
		return false, err
	}
	if was.Maintenance == "" {
		return false, nil
	}
	restore := was.PrevStatus
	if restore == "" || restore == model.NodeMaintenance || restore == model.NodeUnreachable {
		restore = model.NodeActive
	}
	node, err := s.DB.UpdateNode(ctx, n.ID, func(x *model.Node) error {
		if x.Status == model.NodeMaintenance {
			x.Status = restore
		}
		return nil
	})
	if err != nil && !errs.Is(err, errs.NotFound) {
		return true, err
	}
	took := ""
	if was.MaintenanceSince != nil {
		took = fmt.Sprintf(" after %s", s.DB.Now().Sub(*was.MaintenanceSince).Round(time.Millisecond))
	}
	s.emit(ctx, model.Event{Type: "node.maintenance_end", TopologyID: n.TopologyID, ComponentID: n.ComponentID, NodeID: n.ID,
		ActionID: was.MaintenanceAction, Tenant: n.Tenant,
		Message: fmt.Sprintf("node %s: maintenance %s over%s (%s); status %s", n.Name, was.Maintenance, took, why, node.Status)})
	return true, nil
}
