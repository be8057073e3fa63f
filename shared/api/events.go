package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
)

// EventList is the answer of GET /events.
type EventList struct {
	Events     []model.Event `json:"events"`
	NextMarker string        `json:"next_marker,omitempty"`
}

var eventLevels = []string{model.LevelInfo, model.LevelWarning, model.LevelError}

var eventListParams = []Param{
	{Name: "limit", In: "query", Type: "integer", Description: "page size, 1 to 1000 (default 100)", Example: "50"},
	{Name: "marker", In: "query", Description: "next_marker of the previous page"},
	{Name: "topology_id", In: "query", Description: "only the events of this topology"},
	{Name: "component_id", In: "query", Description: "only the events of this component"},
	{Name: "node_id", In: "query", Description: "only the events of this node (also one that was removed)"},
	{Name: "action_id", In: "query", Description: "only the events of this action"},
	{Name: "level", In: "query", Description: "only these levels (comma-separated)", Example: "warning,error"},
	{Name: "type", In: "query", Description: "only these types (comma-separated), e.g. node.heal,component.load"},
	{Name: "since", In: "query", Description: "only events at or after this time (RFC 3339)", Example: "2024-01-01T00:00:00Z"},
	{Name: "until", In: "query", Description: "only events before this time (RFC 3339)"},
}

func parseTime(q map[string][]string, name string) (time.Time, error) {
	v := ""
	if x := q[name]; len(x) > 0 {
		v = x[0]
	}
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, errs.Invalidf(name, "want an RFC 3339 time such as 2024-01-01T00:00:00Z, got %q", truncate(v, 40))
	}
	return t, nil
}

// listEvents pages through the timeline. Visibility follows the resource filtered on
// (a topology, component, node or action the caller may see); without one, a user sees
// their project's events and the admin everyone's.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	q := r.URL.Query()
	limit := DefaultLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxLimit {
			return errs.Invalidf("limit", "want an integer from 1 to %d, got %q", MaxLimit, truncate(l, 40))
		}
		limit = n
	}
	levels, err := oneOf(q, "level", eventLevels)
	if err != nil {
		return err
	}
	types, _ := oneOf(q, "type", nil)
	since, err := parseTime(q, "since")
	if err != nil {
		return err
	}
	until, err := parseTime(q, "until")
	if err != nil {
		return err
	}
	f := db.EventFilter{ComponentID: q.Get("component_id"), NodeID: q.Get("node_id"), Since: since, Until: until, Marker: q.Get("marker")}
	// The resource filtered on decides visibility and the index read.
	check := func(param string, kind ScopeKind) (*scoped, error) {
		v := q.Get(param)
		if v == "" {
			return nil, nil
		}
		sc, err := s.resolve(ctx, p, Scope{Param: param, Kind: kind}, v)
		if errs.Is(err, errs.NotFound) && (kind == ScopeNode || kind == ScopeComponent) {
			// A removed node's or component's events stay readable (node.deleted, a
			// detachment): the id stays a filter, and visibility comes from the
			// topology or tenant filter below — another tenant's id reads as empty,
			// exactly like an unknown one.
			return nil, nil
		}
		if errs.Is(err, errs.NotFound) {
			return nil, &errs.Error{Kind: errs.NotFound, Field: param, Msg: err.Error()}
		}
		return sc, err
	}
	for _, c := range []struct {
		param string
		kind  ScopeKind
	}{{"topology_id", ScopeTopology}, {"component_id", ScopeComponent}, {"node_id", ScopeNode}, {"action_id", ScopeAction}} {
		sc, err := check(c.param, c.kind)
		if err != nil {
			return err
		}
		if sc == nil {
			continue
		}
		if c.kind == ScopeAction {
			f.ActionID = sc.ID
		} else if sc.Topology.ID != "" {
			if f.TopologyID != "" && f.TopologyID != sc.Topology.ID {
				writeJSON(w, http.StatusOK, EventList{Events: []model.Event{}})
				return nil
			}
			f.TopologyID = sc.Topology.ID
		}
	}
	if f.TopologyID == "" && f.ActionID == "" && !p.Admin {
		f.Tenant = p.ProjectID
	}
	if len(levels) == 1 {
		for l := range levels {
			f.Level = l
		}
	}
	if len(types) == 1 {
		for t := range types {
			f.Type = t
		}
	}
	var evs []model.Event
	var next string
	if f.Tenant == "" && f.TopologyID == "" && f.ActionID == "" {
		evs, next, err = s.allEvents(r, f, limit)
	} else {
		f.Limit = limit
		evs, next, err = s.DB.Events(ctx, f)
	}
	if err != nil {
		return err
	}
	out := []model.Event{}
	visible := s.eventVisibility(r)
	for _, e := range evs {
		if pass(levels, e.Level) && pass(types, e.Type) && visible(e) {
			out = append(out, e)
		}
	}
	writeJSON(w, http.StatusOK, EventList{Events: out, NextMarker: next})
	return nil
}

// allEvents pages through every tenant's events (the admin, without a filter): event ids
// sort by time.
func (s *Server) allEvents(r *http.Request, f db.EventFilter, limit int) ([]model.Event, string, error) {
	q := store.Query{Limit: limit, After: f.Marker}
	if !f.Since.IsZero() {
		q.From = store.SortTime(f.Since)
	}
	if !f.Until.IsZero() {
		q.To = store.SortTime(f.Until)
	}
	var out []model.Event
	for {
		q.Limit = limit - len(out)
		recs, next, err := s.DB.S.List(r.Context(), db.KindEvent, q)
		if err != nil {
			return nil, "", err
		}
		for _, rec := range recs {
			var e model.Event
			if err := store.Decode(rec, &e); err != nil {
				return nil, "", err
			}
			if (f.ComponentID != "" && e.ComponentID != f.ComponentID) || (f.NodeID != "" && e.NodeID != f.NodeID) ||
				(f.Level != "" && e.Level != f.Level) || (f.Type != "" && !strings.EqualFold(e.Type, f.Type)) {
				continue
			}
			out = append(out, e)
		}
		if next == "" || len(out) >= limit {
			return out, next, nil
		}
		q.After = next
	}
}

// eventVisibility says which events the caller may see: an event about a topology with
// the topology (within a project, only its owner sees it, seed 000 §4.1.2); one about
// no topology to its project's user who caused it, or to the project when nobody did.
func (s *Server) eventVisibility(r *http.Request) func(model.Event) bool {
	p := principal(r)
	if p.Admin {
		return func(model.Event) bool { return true }
	}
	seen := map[string]bool{}
	return func(e model.Event) bool {
		if e.TopologyID != "" {
			ok, known := seen[e.TopologyID]
			if !known {
				t, _, err := s.DB.Topology(r.Context(), e.TopologyID)
				switch {
				case err == nil:
					ok = p.CanSee(t.Tenant, t.Owner)
				default: // gone: its tenant's user who caused the event
					ok = e.Tenant == p.ProjectID && (e.User == "" || e.User == p.UserName)
				}
				seen[e.TopologyID] = ok
			}
			return ok
		}
		return e.Tenant == p.ProjectID && (e.User == "" || e.User == p.UserName)
	}
}
