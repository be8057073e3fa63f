package api

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
)

// Lists page with limit and marker (keyset paging: the marker names the last item
// returned, so that a page never repeats or skips an item because others were created
// or deleted meanwhile), sort by a field (prefix "-" for descending), ties broken by id
// for a stable order, and filter by exact values (comma-separated alternatives).

// Paging limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// TopologyList is the body of GET /topologies.
type TopologyList struct {
	Topologies []model.Topology `json:"topologies"`
	NextMarker string           `json:"next_marker,omitempty"`
}

// ActionList is the body of GET /actions.
type ActionList struct {
	Actions    []model.Action `json:"actions"`
	NextMarker string         `json:"next_marker,omitempty"`
}

var pagingParams = []Param{
	{Name: "limit", In: "query", Type: "integer", Description: "page size, 1 to 1000 (default 100)", Example: "50"},
	{Name: "marker", In: "query", Description: "next_marker of the previous page"},
}

var topologyStatuses = []string{model.StatusCreating, model.StatusActive, model.StatusUpdating, model.StatusDegraded,
	model.StatusFailed, model.StatusDeleting, model.StatusDeleted}

var topologyListParams = append(slices.Clone(pagingParams),
	Param{Name: "sort", In: "query", Description: "sort field, '-' prefix for descending (default name)",
		Enum: sortEnum(topologySorts), Example: "-created_at"},
	Param{Name: "status", In: "query", Description: "only these statuses (comma-separated)", Example: "ACTIVE"},
	Param{Name: "name", In: "query", Description: "only these names (comma-separated)"},
	Param{Name: "availability_zone", In: "query", Description: "only these zones (comma-separated); alias az", Example: "az1"},
	Param{Name: "az", In: "query", Description: "alias of availability_zone"},
	Param{Name: "component_type", In: "query", Description: "only topologies with a component of one of these types (comma-separated)", Example: "zookeeper"},
)

var actionStatuses = []string{model.ActionPending, model.ActionRunning, model.ActionSucceeded, model.ActionFailed, model.ActionCancelled}

var actionListParams = append(slices.Clone(pagingParams),
	Param{Name: "sort", In: "query", Description: "sort field, '-' prefix for descending (default created_at)",
		Enum: sortEnum(actionSorts), Example: "-created_at"},
	Param{Name: "status", In: "query", Description: "only these statuses (comma-separated)", Example: "SUCCEEDED"},
	Param{Name: "kind", In: "query", Description: "only these kinds (comma-separated), e.g. create_topology"},
	Param{Name: "topology_id", In: "query", Description: "only the actions of this topology"},
)

// sortKey maps a sortable field to the string an item sorts by.
type sortKey[T any] map[string]func(T) string

var topologySorts = sortKey[model.Topology]{
	"name":              func(t model.Topology) string { return t.Name + "@" + t.AvailabilityZone },
	"created_at":        func(t model.Topology) string { return store.SortTime(t.CreatedAt) },
	"updated_at":        func(t model.Topology) string { return store.SortTime(t.UpdatedAt) },
	"status":            func(t model.Topology) string { return t.Status },
	"availability_zone": func(t model.Topology) string { return t.AvailabilityZone + "/" + t.Name },
}

var actionSorts = sortKey[model.Action]{
	"created_at": func(a model.Action) string { return store.SortTime(a.CreatedAt) },
	"status":     func(a model.Action) string { return a.Status },
	"kind":       func(a model.Action) string { return a.Kind },
}

func sortEnum[T any](k sortKey[T]) []string {
	var out []string
	for f := range k {
		out = append(out, f, "-"+f)
	}
	slices.Sort(out)
	return out
}

// listQuery is a parsed list request.
type listQuery struct {
	limit int
	field string
	desc  bool
	after *cursor
}

// cursor is what a marker encodes: the sort and the last item's key and id.
type cursor struct {
	Sort string `json:"s"`
	Key  string `json:"k"`
	ID   string `json:"i"`
}

func parseList[T any](q url.Values, sorts sortKey[T], def string) (listQuery, error) {
	lq := listQuery{limit: DefaultLimit, field: def}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > MaxLimit {
			return lq, errs.Invalidf("limit", "want an integer from 1 to %d, got %q", MaxLimit, truncate(l, 40))
		}
		lq.limit = n
	}
	if s := q.Get("sort"); s != "" {
		f, desc := strings.CutPrefix(s, "-")
		if _, ok := sorts[f]; !ok {
			return lq, errs.Invalidf("sort", "cannot sort by %q (one of: %s)", truncate(s, 40), strings.Join(sortEnum(sorts), ", "))
		}
		lq.field, lq.desc = f, desc
	}
	if m := q.Get("marker"); m != "" {
		raw, err := base64.RawURLEncoding.DecodeString(m)
		var c cursor
		if err != nil || json.Unmarshal(raw, &c) != nil || c.ID == "" {
			return lq, errs.Invalidf("marker", "not a marker this API returned")
		}
		if c.Sort != lq.sortName() {
			return lq, errs.Invalidf("marker", "the marker is of a list sorted by %q, not %q", c.Sort, lq.sortName())
		}
		lq.after = &c
	}
	return lq, nil
}

func (lq listQuery) sortName() string {
	if lq.desc {
		return "-" + lq.field
	}
	return lq.field
}

// page sorts items stably and returns the page after the cursor with the next marker.
func page[T any](items []T, lq listQuery, sorts sortKey[T], id func(T) string) ([]T, string) {
	key := sorts[lq.field]
	type kv struct {
		k, id string
		v     T
	}
	all := make([]kv, len(items))
	for i, it := range items {
		all[i] = kv{key(it), id(it), it}
	}
	order := func(a, b kv) int {
		c := cmp.Or(cmp.Compare(a.k, b.k), cmp.Compare(a.id, b.id))
		if lq.desc {
			return -c
		}
		return c
	}
	slices.SortFunc(all, order)
	start := 0
	if c := lq.after; c != nil {
		start, _ = slices.BinarySearchFunc(all, kv{k: c.Key, id: c.ID}, order)
		if start < len(all) && all[start].k == c.Key && all[start].id == c.ID {
			start++
		}
	}
	end := min(len(all), start+lq.limit)
	out := make([]T, 0, end-start)
	for _, x := range all[start:end] {
		out = append(out, x.v)
	}
	next := ""
	if end < len(all) {
		last := all[end-1]
		b, _ := json.Marshal(cursor{Sort: lq.sortName(), Key: last.k, ID: last.id})
		next = base64.RawURLEncoding.EncodeToString(b)
	}
	return out, next
}

// oneOf parses a comma-separated filter; known, if not nil, lists the allowed values.
func oneOf(q url.Values, name string, known []string) (map[string]bool, error) {
	v := q.Get(name)
	if v == "" {
		return nil, nil
	}
	set := map[string]bool{}
	for _, x := range strings.Split(v, ",") {
		x = strings.TrimSpace(x)
		if x == "" {
			continue
		}
		if known != nil && !slices.Contains(known, x) {
			return nil, errs.Invalidf(name, "unknown value %q (one of: %s)", truncate(x, 40), strings.Join(known, ", "))
		}
		set[x] = true
	}
	return set, nil
}

func pass(set map[string]bool, v string) bool { return set == nil || set[v] }

func (s *Server) topologyPage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	q := r.URL.Query()
	lq, err := parseList(q, topologySorts, "name")
	if err != nil {
		return err
	}
	status, err := oneOf(q, "status", topologyStatuses)
	if err != nil {
		return err
	}
	names, _ := oneOf(q, "name", nil)
	if q.Get("az") != "" && q.Get("availability_zone") == "" {
		q.Set("availability_zone", q.Get("az"))
	}
	zones, _ := oneOf(q, "availability_zone", nil)
	types, _ := oneOf(q, "component_type", nil)

	var sq store.Query
	if !p.Admin {
		sq.Index, sq.Part = store.IdxTenant, p.ProjectID
	}
	all, err := store.All[model.Topology](ctx, s.DB.S, db.KindTopology, sq)
	if err != nil {
		return err
	}
	var keep []model.Topology
	for _, t := range all {
		if !p.CanSee(t.Tenant, t.Owner) || !pass(status, t.Status) || !pass(names, t.Name) || !pass(zones, t.AvailabilityZone) {
			continue
		}
		if types != nil {
			ok, err := s.hasComponentType(ctx, t.ID, types)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
		}
		keep = append(keep, t)
	}
	out, next := page(keep, lq, topologySorts, func(t model.Topology) string { return t.ID })
	writeJSON(w, http.StatusOK, TopologyList{Topologies: out, NextMarker: next})
	return nil
}

func (s *Server) hasComponentType(ctx context.Context, topologyID string, types map[string]bool) (bool, error) {
	comps, err := s.DB.Components(ctx, topologyID)
	if err != nil {
		return false, err
	}
	for _, c := range comps {
		if types[c.Type] {
			return true, nil
		}
	}
	return false, nil
}

func (s *Server) actionPage(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	q := r.URL.Query()
	lq, err := parseList(q, actionSorts, "created_at")
	if err != nil {
		return err
	}
	status, err := oneOf(q, "status", actionStatuses)
	if err != nil {
		return err
	}
	kinds, _ := oneOf(q, "kind", nil)
	var sq store.Query
	if t := q.Get("topology_id"); t != "" {
		if _, err := s.resolve(ctx, p, Scope{Param: "topology_id", Kind: ScopeTopology}, t); err != nil {
			return err
		}
		sq.Index, sq.Part = store.IdxTopology, t
	} else if !p.Admin {
		sq.Index, sq.Part = store.IdxTenant, p.ProjectID
	}
	all, err := store.All[model.Action](ctx, s.DB.S, db.KindAction, sq)
	if err != nil {
		return err
	}
	// Each topology is read once however many actions it has.
	type loaded struct {
		t   model.Topology
		rec store.Record
		err error
	}
	cache := map[string]loaded{}
	load := func(ctx context.Context, id string) (model.Topology, store.Record, error) {
		l, ok := cache[id]
		if !ok {
			l.t, l.rec, l.err = s.DB.Topology(ctx, id)
			cache[id] = l
		}
		return l.t, l.rec, l.err
	}
	var keep []model.Action
	for _, a := range all {
		if !pass(status, a.Status) || !pass(kinds, a.Kind) {
			continue
		}
		ok, err := canSeeAction(ctx, p, a, load, nil)
		if err != nil {
			return err
		}
		if ok {
			a.Input = nil // execution input is internal
			keep = append(keep, a)
		}
	}
	out, next := page(keep, lq, actionSorts, func(a model.Action) string { return a.ID })
	writeJSON(w, http.StatusOK, ActionList{Actions: out, NextMarker: next})
	return nil
}
