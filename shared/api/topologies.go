package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/straas/straas/shared/auth"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
)

// TopologyView is a topology as the API shows it.
type TopologyView struct {
	model.Topology
	Components []ComponentView `json:"components"`
}

// ComponentView is a component with its nodes.
type ComponentView struct {
	model.Component
	Nodes []NodeView `json:"nodes"`
}

// NodeView is a node with its liveness.
type NodeView struct {
	model.Node
	LastHeartbeat *time.Time         `json:"last_heartbeat,omitempty"`
	Services      map[string]string  `json:"service_status,omitempty"`
	Metrics       map[string]float64 `json:"metrics,omitempty"`
}

// ActionRef is the handle a mutating call returns.
type ActionRef struct {
	ID   string `json:"id"`
	Href string `json:"href"`
}

func actionRef(id string) ActionRef { return ActionRef{ID: id, Href: Prefix + "/actions/" + id} }

// catalog builds the validation catalog for a request.
type requestCatalog struct {
	types   map[string]model.ComponentType
	names   []string
	flavors map[string]bool
	zones   map[string]bool
}

func (c *requestCatalog) ComponentType(t string) (model.ComponentType, bool) {
	ct, ok := c.types[t]
	return ct, ok
}
func (c *requestCatalog) ComponentTypeNames() []string { return c.names }
func (c *requestCatalog) HasFlavor(n string) bool      { return c.flavors[n] }
func (c *requestCatalog) HasZone(az string) bool       { return c.zones[az] }

func (s *Server) requestCatalog(ctx context.Context, az string) (*requestCatalog, error) {
	types, err := s.Catalog.ComponentTypes(ctx)
	if err != nil {
		return nil, fmt.Errorf("component catalog: %w", err)
	}
	zones, err := s.Catalog.Zones(ctx)
	if err != nil {
		return nil, fmt.Errorf("availability zones: %w", err)
	}
	c := &requestCatalog{types: map[string]model.ComponentType{}, flavors: map[string]bool{}, zones: map[string]bool{}}
	for _, t := range types {
		c.types[t.Type] = t
		c.names = append(c.names, t.Type)
	}
	sort.Strings(c.names)
	for _, z := range zones {
		c.zones[z] = true
	}
	if c.zones[az] {
		fs, err := s.Catalog.Flavors(ctx, az)
		if err != nil {
			return nil, fmt.Errorf("flavors of %s: %w", az, err)
		}
		for _, f := range fs {
			c.flavors[f.Name] = true
		}
	}
	return c, nil
}

func (s *Server) createTopology(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	raw, err := s.readBody(r)
	if err != nil {
		return err
	}
	// The zone is needed to know the flavors; peek at it before full validation.
	var peek struct {
		AZ string `json:"availability_zone"`
	}
	_ = json.Unmarshal(raw, &peek)
	cat, err := s.requestCatalog(r.Context(), peek.AZ)
	if err != nil {
		return err
	}
	req, err := model.DecodeCreateTopology(raw, cat)
	if err != nil {
		return err
	}
	now := s.DB.Now()
	t := &model.Topology{
		ID: db.NewID("topo"), Name: req.Name, AvailabilityZone: req.AvailabilityZone, Tenant: p.ProjectID,
		Owner: p.UserID, OwnerName: p.UserName, Status: model.StatusCreating, ConfigBranch: model.Branch(req.Name, req.AvailabilityZone),
		CreatedAt: now, UpdatedAt: now,
	}
	var ops []store.Op
	for i, cs := range req.Components {
		c := &model.Component{
			ID: db.NewID("comp"), TopologyID: t.ID, Tenant: t.Tenant, Name: cs.Name, Type: cs.Type, Version: cs.Version,
			Size: cs.Size, Flavor: cs.Flavor, Image: cs.Image, DependsOn: []string(cs.DependsOn), EnableCName: cs.EnableCName,
			EnableFaultDomain: cs.EnableFaultDomain, MinNumOfFaultDomain: cs.MinNumOfFaultDomain, AntiAffinityGroup: cs.AntiAffinityGroup,
			Status: model.StatusCreating, Order: i, CreatedAt: now, UpdatedAt: now,
		}
		if c.DependsOn == nil {
			c.DependsOn = []string{}
		}
		for _, sm := range cs.Submodules {
			c.Submodules = append(c.Submodules, model.Submodule{Role: sm.Role, Name: sm.Name, Size: sm.Size, Flavor: sm.Flavor, Image: sm.Image, EnableCName: sm.EnableCName})
		}
		t.Components = append(t.Components, c.ID)
		cr, err := db.ComponentRecord(c)
		if err != nil {
			return err
		}
		ops = append(ops, store.Put(cr, store.Absent))
	}
	a := &model.Action{ID: db.NewID("act"), Kind: "create_topology", Tenant: t.Tenant, User: p.UserID, TopologyID: t.ID,
		Machine: "creation", CreatedAt: now}
	a.Input, _ = json.Marshal(map[string]string{"action_id": a.ID, "topology_id": t.ID})
	t.Action = a.ID
	tr, err := db.TopologyRecord(t)
	if err != nil {
		return err
	}
	ops = append(ops, store.Put(db.NameClaimRecord(t), store.Absent), store.Put(tr, store.Absent))
	if err := s.Launcher.Submit(r.Context(), a, ops...); err != nil {
		if errs.Is(err, errs.Conflict) {
			return &errs.Error{Kind: errs.Conflict, Field: "name", Msg: fmt.Sprintf("a topology named %q already exists in %s", t.Name, t.AvailabilityZone)}
		}
		return err
	}
	s.event(r, model.Event{Type: "topology.create", TopologyID: t.ID, ActionID: a.ID,
		Message: fmt.Sprintf("%s asked to create topology %s@%s with %d components", p.UserName, t.Name, t.AvailabilityZone, len(req.Components))})
	view, err := s.topologyView(r.Context(), t)
	if err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/topologies/"+t.ID)
	writeJSON(w, http.StatusAccepted, map[string]any{"topology": view, "action": actionRef(a.ID)})
	return nil
}

// visibleTopology loads a topology the caller may see; others' are "not found".
func (s *Server) visibleTopology(ctx context.Context, p auth.Principal, id string) (model.Topology, store.Record, error) {
	t, rec, err := s.DB.Topology(ctx, id)
	if err != nil {
		return t, rec, err
	}
	if !p.CanSee(t.Tenant, t.Owner) {
		return t, rec, errs.NotFoundf("topology %s not found", id)
	}
	return t, rec, nil
}

func (s *Server) showTopology(w http.ResponseWriter, r *http.Request) error {
	t, _, err := s.visibleTopology(r.Context(), principal(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	v, err := s.topologyView(r.Context(), &t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"topology": v})
	return nil
}

func (s *Server) topologyView(ctx context.Context, t *model.Topology) (TopologyView, error) {
	v := TopologyView{Topology: *t, Components: []ComponentView{}}
	comps, err := s.DB.Components(ctx, t.ID)
	if err != nil {
		return v, err
	}
	for _, c := range comps {
		cv := ComponentView{Component: c, Nodes: []NodeView{}}
		nodes, err := s.DB.Nodes(ctx, c.ID)
		if err != nil {
			return v, err
		}
		for _, n := range nodes {
			nv := NodeView{Node: n}
			if l, err := s.DB.Lease(ctx, n.ID); err == nil {
				seen := l.LastSeen
				nv.LastHeartbeat, nv.Services, nv.Metrics = &seen, l.Services, l.Metrics
			}
			cv.Nodes = append(cv.Nodes, nv)
		}
		v.Components = append(v.Components, cv)
	}
	return v, nil
}

func (s *Server) deleteTopology(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	ctx := r.Context()
	t, rec, err := s.visibleTopology(ctx, p, r.PathValue("id"))
	if err != nil {
		return err
	}
	if t.Status == model.StatusDeleting {
		return errs.Conflictf("topology %s is already being deleted (action %s)", t.Name, t.Action)
	}
	// Whatever still runs on the topology (its creation, a flexup, a replace...) is
	// stopped first: deleting is how users abandon work, and a workflow left running
	// could boot a server after deletion has listed them.
	if err := s.stopTopologyActions(ctx, t.ID, "the topology is being deleted"); err != nil {
		return err
	}
	now := s.DB.Now()
	a := &model.Action{ID: db.NewID("act"), Kind: "delete_topology", Tenant: t.Tenant, User: p.UserID, TopologyID: t.ID,
		Machine: "deletion", CreatedAt: now}
	a.Input, _ = json.Marshal(map[string]string{"action_id": a.ID, "topology_id": t.ID})
	t.Status, t.Action, t.UpdatedAt = model.StatusDeleting, a.ID, now
	tr, err := db.TopologyRecord(&t)
	if err != nil {
		return err
	}
	tr.Version = rec.Version
	if err := s.Launcher.Submit(ctx, a, store.Put(tr, store.AtVersion)); err != nil {
		if errs.Is(err, errs.Conflict) {
			return errs.Conflictf("topology %s changed meanwhile; retry", t.Name)
		}
		return err
	}
	s.event(r, model.Event{Type: "topology.delete", TopologyID: t.ID, ActionID: a.ID,
		Message: fmt.Sprintf("%s asked to delete topology %s@%s", p.UserName, t.Name, t.AvailabilityZone)})
	writeJSON(w, http.StatusAccepted, map[string]any{"topology": t, "action": actionRef(a.ID)})
	return nil
}

// event records who did what, from where.
func (s *Server) event(r *http.Request, e model.Event) {
	p := principal(r)
	e.Tenant, e.User, e.Source = p.ProjectID, p.UserName, r.RemoteAddr
	if err := s.DB.Emit(r.Context(), e); err != nil {
		s.Log.Warn("record event", "type", e.Type, "err", err)
	}
}

// stopTopologyActions stops the workflows of a topology's pending and running actions
// and marks them CANCELLED with cause.
func (s *Server) stopTopologyActions(ctx context.Context, topologyID, cause string) error {
	acts, err := store.All[model.Action](ctx, s.DB.S, db.KindAction, store.Query{Index: store.IdxTopology, Part: topologyID})
	if err != nil {
		return err
	}
	for _, a := range acts {
		if a.Status != model.ActionRunning && a.Status != model.ActionPending {
			continue
		}
		if _, _, err := s.stopAction(ctx, a, cause); err != nil {
			return err
		}
	}
	return nil
}
