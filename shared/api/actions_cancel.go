package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/stages"
	"github.com/straas/straas/shared/store"
)

// ActionCancelled is the answer of POST /actions/{id}/cancel.
type ActionCancelled struct {
	Action model.Action `json:"action"`
}

// cancelAction stops a pending or running action's workflow, marks it CANCELLED and
// releases what it held.
func (s *Server) cancelAction(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	a, _, err := s.DB.Action(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	switch a.Status {
	case model.ActionSucceeded, model.ActionFailed, model.ActionCancelled:
		return errs.Conflictf("action %s has ended already (%s)", a.ID, a.Status)
	}
	cause := fmt.Sprintf("cancelled by %s", p.UserName)
	a, cancelled, err := s.stopAction(ctx, a, cause)
	if err != nil {
		return err
	}
	if !cancelled {
		return errs.Conflictf("action %s ended meanwhile (%s)", a.ID, a.Status)
	}
	var errList []error
	if a.ComponentID != "" {
		errList = append(errList, stages.ReleaseLock(ctx, s.DB, a.ComponentID, a.ID))
	}
	errList = append(errList, s.policies().Release(ctx, &a), s.failStranded(ctx, a))
	// A policy action's children (ids <parent>-...) end with it: pending ones before they
	// start, running ones with their workflow stopped (Step Functions would leave a
	// .sync child running when its parent is stopped).
	kids, _, err := s.DB.S.List(ctx, db.KindAction, store.Query{From: a.ID + "-", To: a.ID + ".", Limit: 100})
	if err != nil {
		errList = append(errList, err)
	}
	for _, k := range kids {
		var c model.Action
		if store.Decode(k, &c) != nil || !strings.HasPrefix(c.ID, a.ID+"-") {
			continue
		}
		switch c.Status {
		case model.ActionSucceeded, model.ActionFailed, model.ActionCancelled:
			continue
		}
		c, stopped, err := s.stopAction(ctx, c, "its parent action "+a.ID+" was cancelled")
		if err != nil {
			errList = append(errList, err)
			continue
		}
		if !stopped {
			continue // it ended meanwhile and released what it held itself
		}
		if c.ComponentID != "" {
			errList = append(errList, stages.ReleaseLock(ctx, s.DB, c.ComponentID, c.ID))
		}
		errList = append(errList, s.policies().Release(ctx, &c), s.failStranded(ctx, c))
	}
	if err := errors.Join(errList...); err != nil {
		s.Log.Warn("release what a cancelled action held", "action", a.ID, "err", err)
	}
	s.event(r, model.Event{Type: "action.cancelled", Level: model.LevelWarning, TopologyID: a.TopologyID, ComponentID: a.ComponentID,
		NodeID: a.NodeID, ActionID: a.ID, Message: fmt.Sprintf("%s cancelled action %s (%s)", p.UserName, a.ID, a.Kind)})
	a.Input = nil
	writeJSON(w, http.StatusOK, ActionCancelled{Action: a})
	return nil
}

// failStranded marks FAILED the nodes a cancelled action left half-built (its node, or
// nodes it created, still SPAWNING, VM_BOOTED, INSTALLED or CONFIGURED), saying why:
// nothing will finish them, and they must not look in progress for ever. Replacing such
// a node (PUT /nodes/{id}) or a health policy recovers it. Then it settles the
// component the operation left UPDATING.
func (s *Server) failStranded(ctx context.Context, a model.Action) error {
	if a.ComponentID == "" {
		return nil
	}
	nodes, err := s.DB.Nodes(ctx, a.ComponentID)
	if err != nil {
		return err
	}
	stranded := func(n *model.Node) bool {
		switch n.Status {
		case model.NodeSpawning, model.NodeVMBooted, model.NodeInstalled, model.NodeConfigured:
			return n.ID == a.NodeID || n.CreatedBy == a.ID
		}
		return false
	}
	var errList []error
	for i := range nodes {
		if !stranded(&nodes[i]) {
			continue
		}
		_, err := s.DB.UpdateNode(ctx, nodes[i].ID, func(n *model.Node) error {
			if stranded(n) {
				n.Error = fmt.Sprintf("action %s (%s) was cancelled while the node was %s", a.ID, a.Kind, n.Status)
				n.Status = model.NodeFailed
			}
			return nil
		})
		if err != nil && !errs.Is(err, errs.NotFound) {
			errList = append(errList, err)
		}
	}
	// The operation would have settled its UPDATING component when it ended: do it for
	// it, unless another action has the component now.
	c, _, err := s.DB.Component(ctx, a.ComponentID)
	if err == nil && c.Status == model.StatusUpdating {
		if l, _, lerr := stages.LoadLock(ctx, s.DB, a.ComponentID); lerr == nil && l.ActionID != a.ID {
			return errors.Join(errList...)
		}
		_, err = stages.Settle(ctx, s.DB, a.ComponentID)
	}
	if err != nil && !errs.Is(err, errs.NotFound) {
		errList = append(errList, err)
	}
	return errors.Join(errList...)
}

// stopAction stops a's workflow and marks it CANCELLED with cause; cancelled is false
// when it ended meanwhile (a is then as it ended).
func (s *Server) stopAction(ctx context.Context, a model.Action, cause string) (_ model.Action, cancelled bool, err error) {
	if a.Execution != "" {
		if err := s.Workflow.Stop(ctx, a.Execution, "Cancelled", cause); err != nil && !errs.Is(err, errs.NotFound) && !errs.Is(err, errs.Invalid) {
			return a, false, fmt.Errorf("stop the workflow of action %s: %w", a.ID, err)
		}
	}
	a, err = s.DB.UpdateAction(ctx, a.ID, func(x *model.Action) error {
		switch x.Status {
		case model.ActionSucceeded, model.ActionFailed, model.ActionCancelled:
			return nil // it ended meanwhile
		}
		now := s.DB.Now()
		x.Status, x.FinishedAt = model.ActionCancelled, &now
		x.Error = &model.ActionError{Error: "Cancelled", Cause: cause}
		cancelled = true
		return nil
	})
	return a, cancelled, err
}
