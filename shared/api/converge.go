package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/policy/actions"
	"github.com/straas/straas/shared/policy/records"
	"github.com/straas/straas/shared/store"
)

// ConvergeResponse is the answer of PUT /topologies/{id}: the plan, and the action that
// carries it out (none for a dry run or when there is nothing to do).
type ConvergeResponse struct {
	Plan   policy.Plan `json:"plan"`
	DryRun bool        `json:"dry_run"`
	Action *ActionRef  `json:"action,omitempty"`
}

// convergeTopology compares the desired spec with what runs and plans the difference;
// unless dry_run, the plan runs through the existing workflows (the converge action).
// A dry run and the apply that follows it at the same state plan the same: victims are
// drawn from a source seeded by the topology and the next revision.
func (s *Server) convergeTopology(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	flag := func(name string) (bool, error) {
		v := r.URL.Query().Get(name)
		if v == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, errs.Invalidf(name, "want true or false, got %q", truncate(v, 20))
		}
		return b, nil
	}
	dry, err := flag("dry_run")
	if err != nil {
		return err
	}
	ignoreWindows, err := flag("ignore_windows")
	if err != nil {
		return err
	}
	t, trec, ok := ScopedTopology(r)
	if !ok {
		return errs.NotFoundf("topology %s not found", r.PathValue("id"))
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return errs.Invalidf("body", "read: %v", err)
	}
	cat, err := s.requestCatalog(ctx, t.AvailabilityZone)
	if err != nil {
		return err
	}
	desired, err := model.DecodeCreateTopology(raw, cat)
	if err != nil {
		return err
	}
	switch t.Status {
	case model.StatusActive, model.StatusDegraded:
	default:
		if !dry {
			return errs.Conflictf("topology %s is %s: converge it once it is ACTIVE (or DEGRADED)", t.Name, t.Status)
		}
	}
	rec := s.policies().Records
	revision := 1
	if d, _, err := rec.Desired(ctx, t.ID); err == nil {
		revision = d.Revision + 1
	} else if !errs.Is(err, errs.NotFound) {
		return err
	}
	comps, err := s.DB.Components(ctx, t.ID)
	if err != nil {
		return err
	}
	observed, err := s.observe(ctx, comps, cat)
	if err != nil {
		return err
	}
	plan := policy.PlanConvergence(t.ID, t.Name, t.AvailabilityZone, desired, observed, revision)
	out := ConvergeResponse{Plan: plan, DryRun: dry}
	if dry {
		writeJSON(w, http.StatusAccepted, out)
		return nil
	}
	if len(plan.Unsupported) > 0 {
		return errs.Conflictf("the desired spec asks for changes convergence cannot make: %s", strings.Join(plan.Unsupported, "; "))
	}
	now := s.DB.Now()
	d := records.Desired{TopologyID: t.ID, Tenant: t.Tenant, Spec: raw, Revision: revision, AppliedAt: now}
	var ops []store.Op
	var touched []model.Component
	byName := map[string]*model.ComponentSpec{}
	for i := range desired.Components {
		byName[desired.Components[i].Name] = &desired.Components[i]
	}
	for _, cp := range plan.Components {
		for i := range comps {
			c := &comps[i]
			if c.ID != cp.ComponentID {
				continue
			}
			if len(cp.Settings) > 0 {
				policy.ApplySettings(c, byName[c.Name])
				c.UpdatedAt = now
				cr, err := db.ComponentRecord(c)
				if err != nil {
					return err
				}
				_, crec, err := s.DB.Component(ctx, c.ID)
				if err != nil {
					return err
				}
				cr.Version = crec.Version
				ops = append(ops, store.Put(cr, store.AtVersion))
			}
			if len(cp.Add)+len(cp.Remove)+len(cp.Replace) > 0 || cp.Upgrade != nil {
				touched = append(touched, *c)
			}
		}
	}
	steps := plan.Steps()
	if len(steps) > 0 {
		a := &model.Action{ID: db.NewID("act"), Kind: actions.KindConverge, Tenant: t.Tenant, User: p.UserID, TopologyID: t.ID,
			Machine: actions.MachineConverge, CreatedAt: now}
		a.Input, _ = json.Marshal(actions.ConvergeInput{ActionID: a.ID, TopologyID: t.ID, Revision: revision})
		d.ActionID = a.ID
		sp := records.StoredPlan{ActionID: a.ID, Plan: plan, Steps: steps, IgnoreWindows: ignoreWindows}
		for _, c := range touched {
			sp.Components = append(sp.Components, c.ID)
		}
		pr, err := records.ConvergePlanRecord(&sp)
		if err != nil {
			return err
		}
		qops, _, err := s.policies().Enqueue(ctx, touched, a.ID)
		if err != nil {
			return err
		}
		nt := t
		nt.Status, nt.UpdatedAt = model.StatusUpdating, now
		tr, err := db.TopologyRecord(&nt)
		if err != nil {
			return err
		}
		tr.Version = trec.Version
		dr, err := records.DesiredRecord(&d)
		if err != nil {
			return err
		}
		ops = append(ops, qops...)
		ops = append(ops, store.Put(pr, store.Absent), store.Put(dr, store.Any), store.Put(tr, store.AtVersion))
		if err := s.Launcher.Submit(ctx, a, ops...); err != nil {
			if errs.Is(err, errs.Conflict) {
				return errs.Conflictf("topology %s changed meanwhile; plan again", t.Name)
			}
			return err
		}
		ref := actionRef(a.ID)
		out.Action = &ref
	} else {
		dr, err := records.DesiredRecord(&d)
		if err != nil {
			return err
		}
		if err := s.DB.S.Write(ctx, append(ops, store.Put(dr, store.Any))...); err != nil {
			if errs.Is(err, errs.Conflict) {
				return errs.Conflictf("topology %s changed meanwhile; plan again", t.Name)
			}
			return err
		}
	}
	msg := fmt.Sprintf("%s asked to converge topology %s to revision %d: %d change(s)", p.UserName, t.Name, revision, plan.Changes)
	if out.Action == nil {
		msg += "; nothing to run"
	}
	ev := model.Event{Type: "topology.converge", TopologyID: t.ID, Message: msg, Data: map[string]any{"revision": revision}}
	if out.Action != nil {
		ev.ActionID = out.Action.ID
	}
	s.event(r, ev)
	writeJSON(w, http.StatusAccepted, out)
	return nil
}

// observe gathers what runs of each component for the planner.
func (s *Server) observe(ctx context.Context, comps []model.Component, cat *requestCatalog) ([]policy.Observed, error) {
	svc := s.policies()
	var out []policy.Observed
	for _, c := range comps {
		nodes, err := s.DB.Nodes(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		o := policy.Observed{Component: c, Nodes: nodes}
		if t, ok := cat.ComponentType(c.Type); ok {
			o.Type = t
		}
		if p, err := svc.Spec(ctx, c.ID, policy.TypeDeletion); err != nil {
			return nil, err
		} else if p != nil {
			o.Deletion = p.Deletion()
		}
		out = append(out, o)
	}
	return out, nil
}
