package api

import (
	"net/http"

	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
)

// ActionView is an action with its stages and per-node progress.
type ActionView struct {
	model.Action
	Stages []StageView `json:"stages"`
}

// StageView is a stage with its nodes.
type StageView struct {
	model.Stage
	Nodes []NodeProgress `json:"nodes,omitempty"`
}

// NodeProgress is one node's part of a stage.
type NodeProgress struct {
	Node   string `json:"node_id"`
	Name   string `json:"name"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

func (s *Server) showAction(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	a, _, err := s.DB.Action(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	// Visibility was decided by the route's scope (the action's topology, or its tenant's user).
	stages, err := s.DB.Stages(ctx, a.ID)
	if err != nil {
		return err
	}
	names := map[string]string{}
	v := ActionView{Action: a, Stages: []StageView{}}
	v.Input = nil
	for _, st := range stages {
		if st.ComponentID != "" && st.Component == "" {
			if _, ok := names[st.ComponentID]; !ok {
				if c, _, err := s.DB.Component(ctx, st.ComponentID); err == nil {
					names[st.ComponentID] = c.Name
				}
			}
			st.Component = names[st.ComponentID]
		}
		sv := StageView{Stage: st}
		// Stages that fan out to nodes have a batch: live counts and per-node progress.
		if b, err := s.Batches.Get(ctx, batch.ID(a.ID, st.ComponentID, st.Name)); err == nil {
			sv.NodesTotal, sv.NodesDone, sv.NodesFailed = b.Total, b.Done, b.Failed
			entries, err := s.Batches.Entries(ctx, b.ID)
			if err != nil {
				return err
			}
			for _, e := range entries {
				sv.Nodes = append(sv.Nodes, NodeProgress{Node: e.NodeID, Name: e.NodeName, Status: e.Status, Error: e.Error})
			}
		} else if !errs.Is(err, errs.NotFound) {
			return err
		}
		v.Stages = append(v.Stages, sv)
	}
	writeJSON(w, http.StatusOK, map[string]any{"action": v})
	return nil
}
