package api

import (
	"context"
	"net/http"
	"time"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/policy/actions"
	"github.com/straas/straas/shared/policy/records"
)

// OpStateView is the operational state of one level: what was set on it, what is in
// effect (seed 001: a topology's state reaches its components only when propagated; a
// component's reaches all its nodes), the state variables, and the levels below.
type OpStateView struct {
	Level      string          `json:"level"`
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Own        policy.Settings `json:"own"`
	Propagated []string        `json:"propagated"`
	Effective  policy.Settings `json:"effective"`
	Action     string          `json:"maintenance_action,omitempty"`
	// Components only.
	Windows    []policy.Window `json:"maintenance_windows,omitempty"`
	NextWindow *policy.Opening `json:"next_window,omitempty"`
	Load       string          `json:"load,omitempty"` // normal, overload, underload
	LoadSince  *time.Time      `json:"load_since,omitempty"`
	Queue      []string        `json:"queue,omitempty"` // maintenance, scaling and convergence actions in turn
	// Nodes only.
	Status string     `json:"status,omitempty"`
	Flags  *NodeFlags `json:"flags,omitempty"`

	Components []OpStateView `json:"components,omitempty"`
	Nodes      []OpStateView `json:"nodes,omitempty"`
}

// NodeFlags are a node's state variables.
type NodeFlags struct {
	Maintenance      string                 `json:"maintenance,omitempty"` // in progress
	MaintenanceSince *time.Time             `json:"maintenance_since,omitempty"`
	Failure          *records.FailureRecord `json:"failure,omitempty"` // pending: recorded, not acted on
	Healing          string                 `json:"healing,omitempty"` // the recovery action
}

// OpStateResponse is the answer of GET .../operational_state.
type OpStateResponse struct {
	OperationalState OpStateView `json:"operational_state"`
}

// OpStateSet is the answer of PUT .../operational_state.
type OpStateSet struct {
	OperationalState OpStateView `json:"operational_state"`
	Changed          []string    `json:"changed"`
	Action           *ActionRef  `json:"action,omitempty"`
	QueuedBehind     []string    `json:"queued_behind,omitempty"`
	Note             string      `json:"note,omitempty"`
}

func (s *Server) opStateView(ctx context.Context, t actions.Target) (OpStateView, error) {
	rec := s.policies().Records
	ops, err := rec.OpStates(ctx, t.Topology.ID)
	if err != nil {
		return OpStateView{}, err
	}
	level := func(lv, id, name string) OpStateView {
		v := OpStateView{Level: lv, ID: id, Name: name, Propagated: []string{}}
		if o, ok := ops[records.OpStateID(lv, id)]; ok {
			v.Own, v.Action = o.Own, o.Action
			if o.Propagated != nil {
				v.Propagated = o.Propagated
			}
		}
		return v
	}
	now := s.DB.Now()
	compView := func(c model.Component, withNodes bool) (OpStateView, error) {
		v := level(policy.LevelComponent, c.ID, c.Name)
		v.Effective = ops.Effective(c.TopologyID, c.ID, "")
		if ws := ops.Windows(c.ID); len(ws) > 0 {
			v.Windows = ws
			o := policy.NextOpening(ws, now)
			v.NextWindow = &o
		}
		st, err := rec.ComponentState(ctx, &c)
		if err != nil {
			return v, err
		}
		v.Load, v.LoadSince, v.Queue = st.Load, st.LoadSince, st.Queue
		if v.Load == "" {
			v.Load = policy.LoadNormal
		}
		if !withNodes {
			return v, nil
		}
		nodes, err := s.DB.Nodes(ctx, c.ID)
		if err != nil {
			return v, err
		}
		flags, err := rec.ComponentFlags(ctx, c.ID)
		if err != nil {
			return v, err
		}
		for _, n := range nodes {
			if t.Node != nil && n.ID != t.Node.ID {
				continue
			}
			nv := level(policy.LevelNode, n.ID, n.Name)
			nv.Effective, nv.Status = ops.Effective(c.TopologyID, c.ID, n.ID), n.Status
			if f, ok := flags[n.ID]; ok && !f.Idle() {
				nv.Flags = &NodeFlags{Maintenance: f.Maintenance, MaintenanceSince: f.MaintenanceSince, Failure: f.Failure, Healing: f.Healing}
			}
			v.Nodes = append(v.Nodes, nv)
		}
		return v, nil
	}
	switch t.Level {
	case policy.LevelNode:
		cv, err := compView(*t.Component, true)
		if err != nil || len(cv.Nodes) == 0 {
			return OpStateView{}, errs.NotFoundf("node %s not found", t.Node.ID)
		}
		return cv.Nodes[0], nil
	case policy.LevelComponent:
		return compView(*t.Component, true)
	}
	v := level(policy.LevelTopology, t.Topology.ID, t.Topology.Name)
	v.Effective = ops.Effective(t.Topology.ID, "", "")
	comps, err := s.DB.Components(ctx, t.Topology.ID)
	if err != nil {
		return v, err
	}
	for _, c := range comps {
		cv, err := compView(c, true)
		if err != nil {
			return v, err
		}
		v.Components = append(v.Components, cv)
	}
	return v, nil
}

func (s *Server) showOpState(w http.ResponseWriter, r *http.Request, level string) error {
	ctx := r.Context()
	t, err := s.policies().Resolve(ctx, level, r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := s.opStateView(ctx, t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, OpStateResponse{OperationalState: v})
	return nil
}

func (s *Server) setOpState(w http.ResponseWriter, r *http.Request, level string) error {
	ctx := r.Context()
	p := principal(r)
	var req actions.OpRequest
	if err := decodeStrict(r, &req); err != nil {
		return err
	}
	svc := s.policies()
	t, err := svc.Resolve(ctx, level, r.PathValue("id"))
	if err != nil {
		return err
	}
	if t.Topology.Status == model.StatusDeleting || t.Topology.Status == model.StatusDeleted {
		return errs.Conflictf("topology %s is being deleted", t.Topology.Name)
	}
	res, err := svc.SetOpState(ctx, t, req, p.UserID, p.UserName)
	if err != nil {
		return err
	}
	v, err := s.opStateView(ctx, t)
	if err != nil {
		return err
	}
	out := OpStateSet{OperationalState: v, Changed: res.Changed, QueuedBehind: res.Queued, Note: res.Note}
	if out.Changed == nil {
		out.Changed = []string{}
	}
	if res.Action != "" {
		ref := actionRef(res.Action)
		out.Action = &ref
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
