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
	errList = append(errList, s.policies().Release(ctx, &a))
	// Child actions of a policy action (ids <parent>-...) that have not started are
	// cancelled with it; running ones are actions of their own.
	kids, _, err := s.DB.S.List(ctx, db.KindAction, store.Query{From: a.ID + "-", To: a.ID + ".", Limit: 100})
	if err != nil {
		errList = append(errList, err)
	}
	for _, k := range kids {
		var c model.Action
		if store.Decode(k, &c) != nil || !strings.HasPrefix(c.ID, a.ID+"-") || c.Status != model.ActionPending {
			continue
		}
		if _, err := s.DB.UpdateAction(ctx, c.ID, func(x *model.Action) error {
			if x.Status == model.ActionPending {
				now := s.DB.Now()
				x.Status, x.FinishedAt = model.ActionCancelled, &now
				x.Error = &model.ActionError{Error: "Cancelled", Cause: "its parent action " + a.ID + " was cancelled"}
			}
			return nil
		}); err != nil {
			errList = append(errList, err)
		}
		if c.ComponentID != "" {
			errList = append(errList, stages.ReleaseLock(ctx, s.DB, c.ComponentID, c.ID))
		}
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
