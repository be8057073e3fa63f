package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/straas/straas/shared/auth"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
)

// ScopeKind is what a route's scoped path parameter addresses.
type ScopeKind uint8

// Scope kinds. Each resolves to the topology it belongs to, whose tenant and owner
// decide who may see it.
const (
	NoScope        ScopeKind = iota
	ScopeTopology            // a topology id
	ScopeComponent           // a component id
	ScopeNode                // a node id
	ScopeAction              // an action id (visible with its topology, or to its tenant's user who started it)
	// ScopeBranch is a config ref: <name>@<az> (a topology's branch), optionally followed
	// by &<tag>. A ref without "@" (master, develop) belongs to no topology and is not
	// checked here: the handler decides what a user may do with admin branches.
	ScopeBranch
)

var scopeNames = [...]string{NoScope: "", ScopeTopology: "topology", ScopeComponent: "component", ScopeNode: "node",
	ScopeAction: "action", ScopeBranch: "branch"}

func (k ScopeKind) String() string {
	if int(k) < len(scopeNames) {
		return scopeNames[k]
	}
	return "unknown"
}

// Scope is the path parameter of a route that addresses a resource.
type Scope struct {
	Param string
	Kind  ScopeKind
}

// scoped is a resolved scope: the addressed record and the topology it belongs to.
type scoped struct {
	Kind     ScopeKind
	ID       string         // the addressed record's id
	Version  int64          // its store version
	Topology model.Topology // zero for an action without a topology, or an admin branch
	TopoRec  store.Record
	Record   store.Record // the addressed record
	tag      string
}

type scopeKey struct{}

// ScopedTopology returns the topology a scoped route addresses (loaded and checked by
// the middleware before the handler ran), so that handlers need not load it again.
func ScopedTopology(r *http.Request) (model.Topology, store.Record, bool) {
	sc, ok := r.Context().Value(scopeKey{}).(*scoped)
	if !ok || sc.Topology.ID == "" {
		return model.Topology{}, store.Record{}, false
	}
	return sc.Topology, sc.TopoRec, true
}

// resolve loads what value addresses and checks that p may see it. Anything p may not
// see is "not found", exactly like what does not exist, so that nothing leaks.
func (s *Server) resolve(ctx context.Context, p auth.Principal, sc Scope, value string) (*scoped, error) {
	out := &scoped{Kind: sc.Kind, ID: value}
	topo := func(id string, notFound error) error {
		t, rec, err := s.DB.Topology(ctx, id)
		if errs.Is(err, errs.NotFound) {
			return notFound
		}
		if err != nil {
			return err
		}
		if !p.CanSee(t.Tenant, t.Owner) {
			return notFound
		}
		out.Topology, out.TopoRec = t, rec
		return nil
	}
	switch sc.Kind {
	case ScopeTopology:
		nf := errs.NotFoundf("topology %s not found", value)
		if err := topo(value, nf); err != nil {
			return nil, err
		}
		out.Record, out.Version = out.TopoRec, out.TopoRec.Version
	case ScopeComponent:
		c, rec, err := s.DB.Component(ctx, value)
		nf := errs.NotFoundf("component %s not found", value)
		if err != nil {
			return nil, notFoundAs(err, nf)
		}
		if err := topo(c.TopologyID, nf); err != nil {
			return nil, err
		}
		out.Record, out.Version = rec, rec.Version
	case ScopeNode:
		n, rec, err := s.DB.Node(ctx, value)
		nf := errs.NotFoundf("node %s not found", value)
		if err != nil {
			return nil, notFoundAs(err, nf)
		}
		if err := topo(n.TopologyID, nf); err != nil {
			return nil, err
		}
		out.Record, out.Version = rec, rec.Version
	case ScopeAction:
		a, rec, err := s.DB.Action(ctx, value)
		nf := errs.NotFoundf("action %s not found", value)
		if err != nil {
			return nil, notFoundAs(err, nf)
		}
		out.Record, out.Version = rec, rec.Version
		ok, err := canSeeAction(ctx, p, a, s.DB.Topology, out)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, nf
		}
	case ScopeBranch:
		branch, _, _ := strings.Cut(value, "&")
		if !strings.Contains(branch, "@") {
			return out, nil // an admin branch: no topology
		}
		nf := errs.NotFoundf("branch %s not found", branch)
		rec, err := s.DB.S.Get(ctx, db.KindTopologyName, branch)
		if err != nil {
			return nil, notFoundAs(err, nf)
		}
		var claim struct {
			TopologyID string `json:"topology_id"`
		}
		if err := json.Unmarshal(rec.Data, &claim); err != nil || claim.TopologyID == "" {
			return nil, nf
		}
		if err := topo(claim.TopologyID, nf); err != nil {
			return nil, err
		}
		out.Record, out.Version = out.TopoRec, out.TopoRec.Version
	default:
		return nil, errs.E(errs.Other, "resolve scope", "unknown scope kind "+sc.Kind.String())
	}
	return out, nil
}

// canSeeAction: an action on a topology is visible with its topology (whoever started
// it: the admin, the checker); one without (or whose topology is gone) to its tenant's
// user who started it. into, if not nil, receives the topology.
func canSeeAction(ctx context.Context, p auth.Principal, a model.Action,
	topology func(context.Context, string) (model.Topology, store.Record, error), into *scoped) (bool, error) {
	if a.TopologyID != "" {
		t, rec, err := topology(ctx, a.TopologyID)
		if err == nil {
			if into != nil {
				into.Topology, into.TopoRec = t, rec
			}
			return p.CanSee(t.Tenant, t.Owner), nil
		}
		if !errs.Is(err, errs.NotFound) {
			return false, err
		}
	}
	return p.CanSee(a.Tenant, a.User) && (a.User != "" || p.Admin), nil
}

func notFoundAs(err, nf error) error {
	if errs.Is(err, errs.NotFound) {
		return nf
	}
	return err
}
