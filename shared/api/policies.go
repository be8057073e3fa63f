package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/straas/straas/shared/auth"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/policy/actions"
	"github.com/straas/straas/shared/policy/records"
	"github.com/straas/straas/shared/store"
)

// Policies and operational states (seed 001, seed 002): policy types, policies and
// their attachment to components, operational states per level, receivers, events,
// action cancellation and convergence.

// policyRoutes are the routes of issue 8.
func policyRoutes() []Route {
	comp := Scope{Param: "id", Kind: ScopeComponent}
	topo := Scope{Param: "id", Kind: ScopeTopology}
	node := Scope{Param: "id", Kind: ScopeNode}
	policyID := Param{Name: "policy_id", Description: "a policy id", Example: BuiltinHealthPolicy}
	routes := []Route{
		{Method: "GET", Pattern: Prefix + "/policy_types", Handler: (*Server).listPolicyTypes, Tag: "policies",
			Summary: "List the policy types with their versions and properties", Response: PolicyTypeList{}},
		{Method: "GET", Pattern: Prefix + "/policy_types/{name}", Handler: (*Server).showPolicyType, Tag: "policies",
			Summary: "Document a policy type", Response: PolicyTypeResponse{},
			Params: []Param{{Name: "name", Description: "type-version, or a type for its newest version", Example: "straas.policy.health-1.0"}}},
		{Method: "POST", Pattern: Prefix + "/policies", Handler: (*Server).createPolicy, Tag: "policies",
			Summary: "Create a policy from a validated spec", Request: "policy_create", Status: http.StatusCreated, Response: PolicyResponse{}},
		{Method: "GET", Pattern: Prefix + "/policies", Handler: (*Server).listPolicies, Tag: "policies",
			Summary: "List the policies the caller may see (the built-in ones too)", Response: PolicyList{}, Params: policyListParams},
		{Method: "GET", Pattern: Prefix + "/policies/{policy_id}", Handler: (*Server).showPolicy, Tag: "policies",
			Summary: "Show a policy and the components it is attached to", Response: PolicyResponse{}, Params: []Param{policyID}},
		{Method: "PUT", Pattern: Prefix + "/policies/{policy_id}", Handler: (*Server).updatePolicy, Tag: "policies",
			Summary: "Rename a policy or give it a new spec (a new revision, followed by every component it is attached to)",
			Request: "policy_update", Response: PolicyResponse{}, Params: []Param{policyID}},
		{Method: "DELETE", Pattern: Prefix + "/policies/{policy_id}", Handler: (*Server).deletePolicy, Tag: "policies",
			Summary: "Delete a policy that is attached to no component", Status: http.StatusNoContent, Params: []Param{policyID},
			Description: "Deleting a policy that does not exist (or is not the caller's) is a no-op."},
		{Method: "POST", Pattern: Prefix + "/components/{id}/policies", Handler: (*Server).attachPolicy, Tag: "policies", Scope: comp,
			Summary: "Attach a policy to a component", Request: "policy_attach", Status: http.StatusCreated, Response: BindingResponse{}},
		{Method: "GET", Pattern: Prefix + "/components/{id}/policies", Handler: (*Server).listBindings, Tag: "policies", Scope: comp,
			Summary: "List the policies attached to a component", Response: BindingList{}},
		{Method: "PUT", Pattern: Prefix + "/components/{id}/policies/{policy_id}", Handler: (*Server).updateBinding, Tag: "policies", Scope: comp,
			Summary: "Enable or disable a policy attached to a component", Request: "policy_binding_update", Response: BindingResponse{},
			Params: []Param{policyID}},
		{Method: "DELETE", Pattern: Prefix + "/components/{id}/policies/{policy_id}", Handler: (*Server).detachPolicy, Tag: "policies", Scope: comp,
			Summary: "Detach a policy from a component", Status: http.StatusNoContent, Params: []Param{policyID}},
	}
	for _, lv := range []struct {
		path, level string
		scope       Scope
	}{{"topologies", policy.LevelTopology, topo}, {"components", policy.LevelComponent, comp}, {"nodes", policy.LevelNode, node}} {
		lv := lv
		routes = append(routes,
			Route{Method: "GET", Pattern: Prefix + "/" + lv.path + "/{id}/operational_state", Tag: "operational states", Scope: lv.scope,
				Handler:  func(s *Server, w http.ResponseWriter, r *http.Request) error { return s.showOpState(w, r, lv.level) },
				Summary:  "Show the operational state of a " + lv.level + " (own and effective), and of every level below",
				Response: OpStateResponse{}},
			Route{Method: "PUT", Pattern: Prefix + "/" + lv.path + "/{id}/operational_state", Tag: "operational states", Scope: lv.scope,
				Handler: func(s *Server, w http.ResponseWriter, r *http.Request) error { return s.setOpState(w, r, lv.level) },
				Summary: "Set autoscaling, autohealing, maintenance (and windows) on a " + lv.level, Request: "operational_state",
				Response: OpStateSet{},
				Description: "Autoscaling and autohealing change at once; maintenance restart and replace start an action, " +
					"queued behind any maintenance or scaling in progress on the same components (the answer says so). " +
					"propagate: true applies the command to every level below as well (default: this level only)."})
	}
	routes = append(routes, receiverRoutes()...)
	routes = append(routes,
		Route{Method: "GET", Pattern: Prefix + "/events", Handler: (*Server).listEvents, Tag: "events",
			Summary:  "List events, oldest first, filtered by topology, component, node, action, level, type and time",
			Response: EventList{}, Params: eventListParams},
		Route{Method: "POST", Pattern: Prefix + "/actions/{id}/cancel", Handler: (*Server).cancelAction, Tag: "actions",
			Scope: Scope{Param: "id", Kind: ScopeAction}, Summary: "Cancel a pending or running action", Response: ActionCancelled{},
			Description: "Stops the action's workflow and releases what it held (component lock, queues, recovery slot, " +
				"maintenance flags). Its child actions (a replace started by a recovery, say) end with it, running ones " +
				"with their workflows stopped; nodes left half-built become FAILED naming the action, and their component " +
				"is settled instead of staying UPDATING."},
		Route{Method: "PUT", Pattern: Prefix + "/topologies/{id}", Handler: (*Server).convergeTopology, Tag: "topologies", Scope: topo,
			Summary: "Converge a topology to a desired spec (the body of a creation); with dry_run, only the plan",
			Request: "create_topology", Status: http.StatusAccepted, Response: ConvergeResponse{},
			Params: []Param{{Name: "dry_run", In: "query", Type: "boolean", Example: "true",
				Description: "return the plan (nodes to add and remove per component, upgrades, replacements, settings) without applying it"},
				{Name: "ignore_windows", In: "query", Type: "boolean",
					Description: "run upgrades and replacements at once instead of in the components' maintenance windows"}}},
	)
	return routes
}

// --- policy types ---------------------------------------------------------------------

// PolicyTypeList is the answer of GET /policy_types.
type PolicyTypeList struct {
	PolicyTypes []policy.TypeDoc `json:"policy_types"`
}

// PolicyTypeResponse is the answer of GET /policy_types/{name}.
type PolicyTypeResponse struct {
	PolicyType policy.TypeDoc `json:"policy_type"`
}

func (s *Server) listPolicyTypes(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, PolicyTypeList{PolicyTypes: policy.Types()})
	return nil
}

func (s *Server) showPolicyType(w http.ResponseWriter, r *http.Request) error {
	d, ok := policy.LookupType(r.PathValue("name"))
	if !ok {
		var names []string
		for _, t := range policy.Types() {
			names = append(names, t.Name)
		}
		return errs.NotFoundf("no policy type %q (known: %s)", truncate(r.PathValue("name"), 64), strings.Join(names, ", "))
	}
	writeJSON(w, http.StatusOK, PolicyTypeResponse{PolicyType: d})
	return nil
}

// --- policies -----------------------------------------------------------------------------

// BuiltinHealthPolicy is a built-in policy every project may attach.
const BuiltinHealthPolicy = records.BuiltinHealthPolicy

func builtins() []records.Policy { return records.Builtins() }

func builtin(id string) (records.Policy, bool) { return records.Builtin(id) }

// PolicyView is a policy as the API shows it.
type PolicyView struct {
	records.Policy
	Builtin    bool     `json:"builtin"`
	AttachedTo []string `json:"attached_to"` // component ids
}

// PolicyResponse is the answer of the policy routes.
type PolicyResponse struct {
	Policy PolicyView `json:"policy"`
}

// PolicyList is the answer of GET /policies.
type PolicyList struct {
	Policies   []PolicyView `json:"policies"`
	NextMarker string       `json:"next_marker,omitempty"`
}

var policySorts = sortKey[PolicyView]{
	"name":       func(p PolicyView) string { return p.Name },
	"created_at": func(p PolicyView) string { return store.SortTime(p.CreatedAt) },
	"type":       func(p PolicyView) string { return p.Type + "/" + p.Name },
}

var policyListParams = append(slices.Clone(pagingParams),
	Param{Name: "sort", In: "query", Description: "sort field, '-' prefix for descending (default name)", Enum: sortEnum(policySorts), Example: "name"},
	Param{Name: "type", In: "query", Description: "only these types (comma-separated)", Example: policy.TypeHealth},
)

func (s *Server) policies() *actions.Service { return actions.New(s.DB, s.Launcher, s.Log) }

// visiblePolicy loads a policy the caller may see (built-ins: everyone; others: their
// project). mine says the caller may change it.
func (s *Server) visiblePolicy(ctx context.Context, p auth.Principal, id string) (records.Policy, store.Record, bool, error) {
	if b, ok := builtin(id); ok {
		return b, store.Record{}, false, nil
	}
	pol, rec, err := s.policies().Records.Policy(ctx, id)
	if err != nil {
		return pol, rec, false, err
	}
	if !p.Admin && p.ProjectID != pol.Tenant {
		return pol, rec, false, errs.NotFoundf("policy %s not found", id)
	}
	return pol, rec, p.CanSee(pol.Tenant, pol.User), nil
}

// attachedTo lists the components a policy is attached to (every binding is scanned:
// there are few).
func (s *Server) attachedTo(ctx context.Context, policyID string) ([]records.Binding, error) {
	all, err := s.policies().Records.AllBindings(ctx)
	if err != nil {
		return nil, err
	}
	var out []records.Binding
	for _, b := range all {
		if b.PolicyID == policyID {
			out = append(out, b)
		}
	}
	return out, nil
}

func (s *Server) policyView(ctx context.Context, p auth.Principal, pol records.Policy) (PolicyView, error) {
	_, isBuiltin := builtin(pol.ID)
	v := PolicyView{Policy: pol, Builtin: isBuiltin, AttachedTo: []string{}}
	bs, err := s.attachedTo(ctx, pol.ID)
	if err != nil {
		return v, err
	}
	see := s.topologyVisibility(ctx, p)
	for _, b := range bs {
		if see(b.TopologyID) {
			v.AttachedTo = append(v.AttachedTo, b.ComponentID)
		}
	}
	sort.Strings(v.AttachedTo)
	return v, nil
}

// topologyVisibility says whether the caller may see a topology (cached per call).
func (s *Server) topologyVisibility(ctx context.Context, p auth.Principal) func(string) bool {
	seen := map[string]bool{}
	return func(id string) bool {
		if p.Admin {
			return true
		}
		ok, known := seen[id]
		if !known {
			t, _, err := s.DB.Topology(ctx, id)
			ok = err == nil && p.CanSee(t.Tenant, t.Owner)
			seen[id] = ok
		}
		return ok
	}
}

type policyBody struct {
	Name *string          `json:"name"`
	Spec *json.RawMessage `json:"spec"`
}

func (s *Server) createPolicy(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	var body policyBody
	if err := decodeStrict(r, &body); err != nil {
		return err
	}
	if body.Name == nil || body.Spec == nil {
		return errs.Invalidf("spec", "name and spec are required")
	}
	parsed, err := policy.ParseSpec("spec", *body.Spec)
	if err != nil {
		return err
	}
	now := s.DB.Now()
	pol := records.Policy{ID: db.NewID("pol"), Name: *body.Name, Type: parsed.Spec.Type, Version: parsed.Spec.Version, Spec: parsed.Spec,
		Revision: 1, Tenant: p.ProjectID, User: p.UserID, CreatedAt: now, UpdatedAt: now}
	rec, err := records.PolicyRecord(&pol)
	if err != nil {
		return err
	}
	if err := s.DB.S.Write(ctx, store.Put(rec, store.Absent)); err != nil {
		return err
	}
	s.event(r, model.Event{Type: "policy.create", Message: fmt.Sprintf("%s created policy %s (%s-%s) %s", p.UserName, pol.Name, pol.Type, pol.Version, pol.ID),
		Data: map[string]any{"policy_id": pol.ID}})
	v, err := s.policyView(ctx, p, pol)
	if err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/policies/"+pol.ID)
	writeJSON(w, http.StatusCreated, PolicyResponse{Policy: v})
	return nil
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	q := r.URL.Query()
	lq, err := parseList(q, policySorts, "name")
	if err != nil {
		return err
	}
	types, _ := oneOf(q, "type", nil)
	tenant := p.ProjectID
	if p.Admin {
		tenant = ""
	}
	var all []records.Policy
	marker := ""
	for {
		page, next, err := s.policies().Records.Policies(ctx, tenant, 1000, marker)
		if err != nil {
			return err
		}
		all = append(all, page...)
		if next == "" {
			break
		}
		marker = next
	}
	all = append(all, builtins()...)
	bs, err := s.policies().Records.AllBindings(ctx)
	if err != nil {
		return err
	}
	var keep []PolicyView
	see := s.topologyVisibility(ctx, p)
	for _, pol := range all {
		if !pass(types, pol.Type) {
			continue
		}
		_, isBuiltin := builtin(pol.ID)
		v := PolicyView{Policy: pol, Builtin: isBuiltin, AttachedTo: []string{}}
		for _, b := range bs {
			if b.PolicyID == pol.ID && see(b.TopologyID) {
				v.AttachedTo = append(v.AttachedTo, b.ComponentID)
			}
		}
		keep = append(keep, v)
	}
	out, next := page(keep, lq, policySorts, func(v PolicyView) string { return v.ID })
	if out == nil {
		out = []PolicyView{}
	}
	writeJSON(w, http.StatusOK, PolicyList{Policies: out, NextMarker: next})
	return nil
}

func (s *Server) showPolicy(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	pol, _, _, err := s.visiblePolicy(r.Context(), p, r.PathValue("policy_id"))
	if err != nil {
		return err
	}
	v, err := s.policyView(r.Context(), p, pol)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, PolicyResponse{Policy: v})
	return nil
}

func (s *Server) updatePolicy(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	id := r.PathValue("policy_id")
	var body policyBody
	if err := decodeStrict(r, &body); err != nil {
		return err
	}
	pol, _, mine, err := s.visiblePolicy(ctx, p, id)
	if err != nil {
		return err
	}
	if _, ok := builtin(id); ok {
		return errs.Conflictf("policy %s is built in: create your own (GET /policy_types documents each type)", id)
	}
	if !mine {
		return errs.Permissionf("policy %s belongs to another user of the project", id)
	}
	var parsed *policy.Parsed
	if body.Spec != nil {
		x, err := policy.ParseSpec("spec", *body.Spec)
		if err != nil {
			return err
		}
		if x.Spec.Type != pol.Type {
			return errs.Invalidf("spec.type", "a policy keeps its type (%s); create a new policy for %s", pol.Type, x.Spec.Type)
		}
		parsed = &x
	}
	_, err = store.Update(ctx, s.DB.S, records.KindPolicy, id, func(sr *store.Record) error {
		var x records.Policy
		if err := store.Decode(*sr, &x); err != nil {
			return err
		}
		if body.Name != nil {
			x.Name = *body.Name
		}
		if parsed != nil {
			x.Spec, x.Version = parsed.Spec, parsed.Spec.Version
		}
		x.Revision++
		x.UpdatedAt = s.DB.Now()
		nr, err := records.PolicyRecord(&x)
		nr.Version = sr.Version
		*sr = nr
		pol = x
		return err
	})
	if err != nil {
		return err
	}
	// A new placement spec is applied to the components it is attached to.
	if parsed != nil && parsed.Placement() != nil {
		bs, err := s.attachedTo(ctx, id)
		if err != nil {
			return err
		}
		for _, b := range bs {
			if _, err := s.DB.UpdateComponent(ctx, b.ComponentID, func(c *model.Component) error {
				parsed.Placement().Apply(c)
				return nil
			}); err != nil && !errs.Is(err, errs.NotFound) {
				return err
			}
		}
	}
	s.event(r, model.Event{Type: "policy.update", Message: fmt.Sprintf("%s updated policy %s to revision %d", p.UserName, pol.ID, pol.Revision),
		Data: map[string]any{"policy_id": pol.ID, "revision": pol.Revision}})
	v, err := s.policyView(ctx, p, pol)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, PolicyResponse{Policy: v})
	return nil
}

func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	id := r.PathValue("policy_id")
	if _, ok := builtin(id); ok {
		return errs.Conflictf("policy %s is built in and cannot be deleted", id)
	}
	_, _, mine, err := s.visiblePolicy(ctx, p, id)
	if errs.Is(err, errs.NotFound) {
		w.WriteHeader(http.StatusNoContent) // already gone (or never the caller's): nothing to do
		return nil
	}
	if err != nil {
		return err
	}
	if !mine {
		return errs.Permissionf("policy %s belongs to another user of the project", id)
	}
	bs, err := s.attachedTo(ctx, id)
	if err != nil {
		return err
	}
	if len(bs) > 0 {
		see := s.topologyVisibility(ctx, p)
		var comps []string
		for _, b := range bs {
			if see(b.TopologyID) {
				comps = append(comps, b.ComponentID)
			}
		}
		if len(comps) < len(bs) {
			comps = append(comps, fmt.Sprintf("%d of other users", len(bs)-len(comps)))
		}
		return errs.Conflictf("policy %s is attached to component(s) %s: detach it first", id, strings.Join(comps, ", "))
	}
	if err := s.policies().Records.Delete(ctx, records.KindPolicy, id); err != nil {
		return err
	}
	s.event(r, model.Event{Type: "policy.delete", Message: fmt.Sprintf("%s deleted policy %s", p.UserName, id), Data: map[string]any{"policy_id": id}})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- bindings ---------------------------------------------------------------------------------

// BindingView is a policy attached to a component.
type BindingView struct {
	records.Binding
	Spec     policy.Spec `json:"spec"`
	Revision int         `json:"revision"`
}

// BindingResponse is the answer of attach and update.
type BindingResponse struct {
	Binding BindingView `json:"policy_binding"`
}

// BindingList is the answer of GET /components/{id}/policies.
type BindingList struct {
	Bindings []BindingView `json:"policy_bindings"`
}

func (s *Server) bindingView(ctx context.Context, b records.Binding) BindingView {
	v := BindingView{Binding: b}
	pol, _, err := s.policies().Records.Policy(ctx, b.PolicyID)
	if err != nil {
		return v
	}
	v.Spec, v.Revision, v.PolicyName = pol.Spec, pol.Revision, pol.Name
	return v
}

func (s *Server) attachPolicy(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	var body struct {
		PolicyID string `json:"policy_id"`
		Enabled  *bool  `json:"enabled"`
	}
	if err := decodeStrict(r, &body); err != nil {
		return err
	}
	c, _, err := s.DB.Component(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	pol, _, _, err := s.visiblePolicy(ctx, p, body.PolicyID)
	if errs.Is(err, errs.NotFound) {
		return errs.Invalidf("policy_id", "no policy %q", body.PolicyID)
	}
	if err != nil {
		return err
	}
	if _, isBuiltin := builtin(pol.ID); !isBuiltin && pol.Tenant != c.Tenant {
		return errs.Invalidf("policy_id", "policy %s belongs to another project than component %s", pol.ID, c.Name)
	}
	parsed, err := pol.Parse()
	if err != nil {
		return err
	}
	doc, _ := policy.LookupType(pol.Type)
	existing, err := s.policies().Records.Bindings(ctx, c.ID)
	if err != nil {
		return err
	}
	for _, b := range existing {
		if b.PolicyID == pol.ID {
			return errs.Conflictf("policy %s is attached to component %s already", pol.ID, c.Name)
		}
		if doc.Singleton && b.PolicyType == pol.Type {
			return errs.Conflictf("component %s has a %s policy (%s) already: detach it first, or update that policy", c.Name, pol.Type, b.PolicyID)
		}
	}
	now := s.DB.Now()
	b := records.Binding{ComponentID: c.ID, PolicyID: pol.ID, PolicyName: pol.Name, PolicyType: pol.Type, TopologyID: c.TopologyID,
		Tenant: c.Tenant, Enabled: body.Enabled == nil || *body.Enabled, CreatedAt: now, UpdatedAt: now}
	rec, err := records.BindingRecord(&b)
	if err != nil {
		return err
	}
	if err := s.DB.S.Write(ctx, store.Put(rec, store.Absent)); err != nil {
		if errs.Is(err, errs.Conflict) {
			return errs.Conflictf("policy %s is attached to component %s already", pol.ID, c.Name)
		}
		return err
	}
	msg := fmt.Sprintf("%s attached policy %s (%s) to component %s", p.UserName, pol.Name, pol.Type, c.Name)
	if pl := parsed.Placement(); pl != nil && b.Enabled {
		if _, err := s.DB.UpdateComponent(ctx, c.ID, func(x *model.Component) error {
			if pl.Apply(x) {
				msg += fmt.Sprintf(" (enable_fault_domain %v, min_num_of_fault_domain %d, anti_affinity_group %q)",
					x.EnableFaultDomain, x.MinNumOfFaultDomain, x.AntiAffinityGroup)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	s.event(r, model.Event{Type: "policy.attach", TopologyID: c.TopologyID, ComponentID: c.ID, Message: msg,
		Data: map[string]any{"policy_id": pol.ID, "type": pol.Type}})
	writeJSON(w, http.StatusCreated, BindingResponse{Binding: s.bindingView(ctx, b)})
	return nil
}

func (s *Server) listBindings(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	bs, err := s.policies().Records.Bindings(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	out := BindingList{Bindings: []BindingView{}}
	for _, b := range bs {
		out.Bindings = append(out.Bindings, s.bindingView(ctx, b))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) updateBinding(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var body struct {
		Enabled *bool `json:"enabled"`
	}
	if err := decodeStrict(r, &body); err != nil {
		return err
	}
	if body.Enabled == nil {
		return errs.Invalidf("enabled", "required")
	}
	cid, pid := r.PathValue("id"), r.PathValue("policy_id")
	var out records.Binding
	_, err := store.Update(ctx, s.DB.S, records.KindBinding, records.BindingID(cid, pid), func(sr *store.Record) error {
		var b records.Binding
		if err := store.Decode(*sr, &b); err != nil {
			return err
		}
		b.Enabled, b.UpdatedAt = *body.Enabled, s.DB.Now()
		nr, err := records.BindingRecord(&b)
		nr.Version = sr.Version
		*sr = nr
		out = b
		return err
	})
	if errs.Is(err, errs.NotFound) {
		return errs.NotFoundf("policy %s is not attached to component %s", pid, cid)
	}
	if err != nil {
		return err
	}
	state := map[bool]string{true: "enabled", false: "disabled"}[out.Enabled]
	s.event(r, model.Event{Type: "policy.update_binding", TopologyID: out.TopologyID, ComponentID: cid,
		Message: fmt.Sprintf("%s %s policy %s on component %s", principal(r).UserName, state, pid, cid), Data: map[string]any{"policy_id": pid}})
	writeJSON(w, http.StatusOK, BindingResponse{Binding: s.bindingView(ctx, out)})
	return nil
}

func (s *Server) detachPolicy(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	cid, pid := r.PathValue("id"), r.PathValue("policy_id")
	b, _, err := s.policies().Records.Binding(ctx, cid, pid)
	if err != nil {
		return err
	}
	if err := s.policies().Records.Delete(ctx, records.KindBinding, records.BindingID(cid, pid)); err != nil {
		return err
	}
	s.event(r, model.Event{Type: "policy.detach", TopologyID: b.TopologyID, ComponentID: cid,
		Message: fmt.Sprintf("%s detached policy %s (%s) from component %s", principal(r).UserName, b.PolicyName, b.PolicyType, cid),
		Data:    map[string]any{"policy_id": pid}})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// decodeStrict decodes a JSON body (already validated against its schema) refusing
// unknown fields.
func decodeStrict(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errs.Invalidf("body", "%v", err)
	}
	return nil
}
