// Package records is typed access to the records of policies and operational states over
// the store port: policies, their bindings to components, receivers, operational states
// per level, the state variables of nodes (maintenance, pending failures, recovery) and
// components (load state, scaling, serialisation queue), open alerts and desired specs.
// It decides their kinds and index keys in one place, as package db does for the core
// records.
package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/store"
)

// Record kinds.
const (
	KindPolicy         = "policy"
	KindBinding        = "policy_binding"
	KindReceiver       = "receiver"
	KindOpState        = "opstate"
	KindNodeFlags      = "node_flags"
	KindComponentState = "component_state"
	KindAlert          = "alert"
	KindDesired        = "desired"
)

// DueAlert is the IdxDue part of open alerts, by when they were raised.
const DueAlert = "alert_open"

// Records wraps a DB.
type Records struct {
	DB *db.DB
}

// New returns Records over d.
func New(d *db.DB) *Records { return &Records{DB: d} }

// --- policies ------------------------------------------------------------------------

// Policy is a named, versioned policy spec owned by a tenant.
type Policy struct {
	ID        string      `json:"id"`
	Name      string      `json:"name"`
	Type      string      `json:"type"`    // e.g. straas.policy.health
	Version   string      `json:"version"` // the spec version, e.g. 1.0
	Spec      policy.Spec `json:"spec"`
	Revision  int         `json:"revision"` // +1 on every update of the spec or name
	Tenant    string      `json:"tenant"`
	User      string      `json:"user"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
}

// Parse validates the stored spec (it was valid when written).
func (p *Policy) Parse() (policy.Parsed, error) { return p.Spec.Parse("spec") }

// PolicyRecord encodes p.
func PolicyRecord(p *Policy) (store.Record, error) {
	r, err := store.Encode(KindPolicy, p.ID, p)
	r.Index = map[string]store.IndexKey{store.IdxTenant: {Part: p.Tenant, Sort: p.Name + "/" + p.ID}}
	return r, err
}

// Policy loads a policy.
func (r *Records) Policy(ctx context.Context, id string) (Policy, store.Record, error) {
	if b, ok := Builtin(id); ok {
		return b, store.Record{}, nil
	}
	p, rec, err := store.Load[Policy](ctx, r.DB.S, KindPolicy, id)
	if errs.Is(err, errs.NotFound) {
		err = errs.NotFoundf("policy %s not found", id)
	}
	return p, rec, err
}

// Policies lists a tenant's policies (all tenants' with tenant ""), one page.
func (r *Records) Policies(ctx context.Context, tenant string, limit int, marker string) ([]Policy, string, error) {
	q := store.Query{Limit: limit, After: marker}
	if tenant != "" {
		q.Index, q.Part = store.IdxTenant, tenant
	}
	return page[Policy](ctx, r.DB.S, KindPolicy, q)
}

// --- bindings --------------------------------------------------------------------------

// Binding attaches a policy to a component (Senlin's cluster-policy).
type Binding struct {
	ComponentID string    `json:"component_id"`
	PolicyID    string    `json:"policy_id"`
	PolicyName  string    `json:"policy_name"`
	PolicyType  string    `json:"policy_type"`
	TopologyID  string    `json:"topology_id"`
	Tenant      string    `json:"tenant"`
	Enabled     bool      `json:"enabled"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// BindingID is the record id of a binding.
func BindingID(componentID, policyID string) string { return componentID + "/" + policyID }

// BindingRecord encodes b.
func BindingRecord(b *Binding) (store.Record, error) {
	r, err := store.Encode(KindBinding, BindingID(b.ComponentID, b.PolicyID), b)
	r.Index = map[string]store.IndexKey{
		store.IdxParent:   {Part: b.ComponentID, Sort: b.PolicyType + "/" + b.PolicyID},
		store.IdxTopology: {Part: b.TopologyID, Sort: b.ComponentID + "/" + b.PolicyID},
	}
	return r, err
}

// Bindings lists a component's bindings.
func (r *Records) Bindings(ctx context.Context, componentID string) ([]Binding, error) {
	return store.All[Binding](ctx, r.DB.S, KindBinding, store.Query{Index: store.IdxParent, Part: componentID})
}

// TopologyBindings lists the bindings of a topology's components.
func (r *Records) TopologyBindings(ctx context.Context, topologyID string) ([]Binding, error) {
	return store.All[Binding](ctx, r.DB.S, KindBinding, store.Query{Index: store.IdxTopology, Part: topologyID})
}

// AllBindings lists every binding: what the checker evaluates. One empty query when no
// policy is attached anywhere.
func (r *Records) AllBindings(ctx context.Context) ([]Binding, error) {
	return store.All[Binding](ctx, r.DB.S, KindBinding, store.Query{Limit: 1000})
}

// Binding loads one binding.
func (r *Records) Binding(ctx context.Context, componentID, policyID string) (Binding, store.Record, error) {
	b, rec, err := store.Load[Binding](ctx, r.DB.S, KindBinding, BindingID(componentID, policyID))
	if errs.Is(err, errs.NotFound) {
		err = errs.NotFoundf("policy %s is not attached to component %s", policyID, componentID)
	}
	return b, rec, err
}

// --- receivers ---------------------------------------------------------------------------

// Receiver is a webhook that triggers an action on a component without a Keystone token.
type Receiver struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Type          string            `json:"type"`   // webhook
	Action        string            `json:"action"` // scale_out, scale_in
	Params        map[string]string `json:"params,omitempty"`
	ComponentID   string            `json:"component_id"`
	TopologyID    string            `json:"topology_id"`
	Tenant        string            `json:"tenant"`
	User          string            `json:"user"`
	Secret        string            `json:"secret"` // signing key; never shown
	CreatedAt     time.Time         `json:"created_at"`
	LastTriggered *time.Time        `json:"last_triggered,omitempty"`
	Triggered     int               `json:"triggered"`
}

// ReceiverRecord encodes v.
func ReceiverRecord(v *Receiver) (store.Record, error) {
	r, err := store.Encode(KindReceiver, v.ID, v)
	r.Index = map[string]store.IndexKey{
		store.IdxTenant:   {Part: v.Tenant, Sort: v.Name + "/" + v.ID},
		store.IdxParent:   {Part: v.ComponentID, Sort: v.ID},
		store.IdxTopology: {Part: v.TopologyID, Sort: v.ID},
	}
	return r, err
}

// Receiver loads a receiver.
func (r *Records) Receiver(ctx context.Context, id string) (Receiver, store.Record, error) {
	v, rec, err := store.Load[Receiver](ctx, r.DB.S, KindReceiver, id)
	if errs.Is(err, errs.NotFound) {
		err = errs.NotFoundf("receiver %s not found", id)
	}
	return v, rec, err
}

// Receivers lists a tenant's receivers (all with tenant ""), one page.
func (r *Records) Receivers(ctx context.Context, tenant string, limit int, marker string) ([]Receiver, string, error) {
	q := store.Query{Limit: limit, After: marker}
	if tenant != "" {
		q.Index, q.Part = store.IdxTenant, tenant
	}
	return page[Receiver](ctx, r.DB.S, KindReceiver, q)
}

// --- operational states ------------------------------------------------------------------

// OpState is the operational state set on one level (topology, component or node).
type OpState struct {
	Level       string `json:"level"`
	TargetID    string `json:"target_id"`
	TopologyID  string `json:"topology_id"`
	ComponentID string `json:"component_id,omitempty"` // of a node
	policy.LevelState
	Windows   []policy.Window `json:"maintenance_windows,omitempty"` // components only
	RestartAs string          `json:"restart_mode,omitempty"`        // maintenance restart: restart or reboot
	Force     bool            `json:"ignore_windows,omitempty"`      // maintenance replace now, not in a window
	Action    string          `json:"action,omitempty"`              // the maintenance action it started
	UpdatedBy string          `json:"updated_by,omitempty"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// OpStateID is the record id of a level's state.
func OpStateID(level, id string) string { return level + "/" + id }

// OpStateRecord encodes o.
func OpStateRecord(o *OpState) (store.Record, error) {
	r, err := store.Encode(KindOpState, OpStateID(o.Level, o.TargetID), o)
	r.Index = map[string]store.IndexKey{store.IdxTopology: {Part: o.TopologyID, Sort: o.Level + "/" + o.TargetID}}
	return r, err
}

// OpStates are a topology's stored states by level/id.
type OpStates map[string]OpState

// Level returns the stored state of a level (nil when nothing was ever set).
func (o OpStates) Level(level, id string) *policy.LevelState {
	s, ok := o[OpStateID(level, id)]
	if !ok {
		return nil
	}
	return &s.LevelState
}

// Effective resolves the effective state of a level (componentID "" for the topology,
// nodeID "" for a component).
func (o OpStates) Effective(topologyID, componentID, nodeID string) policy.Settings {
	t := o.Level(policy.LevelTopology, topologyID)
	if componentID == "" {
		return policy.Resolve(t, nil, nil)
	}
	c := o.Level(policy.LevelComponent, componentID)
	if c == nil {
		c = &policy.LevelState{}
	}
	if nodeID == "" {
		return policy.Resolve(t, c, nil)
	}
	n := o.Level(policy.LevelNode, nodeID)
	if n == nil {
		n = &policy.LevelState{}
	}
	return policy.Resolve(t, c, n)
}

// Windows returns a component's maintenance windows.
func (o OpStates) Windows(componentID string) []policy.Window {
	return o[OpStateID(policy.LevelComponent, componentID)].Windows
}

// OpStates loads every operational state of a topology (one query).
func (r *Records) OpStates(ctx context.Context, topologyID string) (OpStates, error) {
	all, err := store.All[OpState](ctx, r.DB.S, KindOpState, store.Query{Index: store.IdxTopology, Part: topologyID})
	if err != nil {
		return nil, err
	}
	out := OpStates{}
	for _, o := range all {
		out[OpStateID(o.Level, o.TargetID)] = o
	}
	return out, nil
}

// UpdateOpState applies fn to a level's state, creating it when absent.
func (r *Records) UpdateOpState(ctx context.Context, level, id, topologyID, componentID string, fn func(*OpState) error) (OpState, error) {
	return upsert(ctx, r.DB.S, KindOpState, OpStateID(level, id),
		func() OpState {
			return OpState{Level: level, TargetID: id, TopologyID: topologyID, ComponentID: componentID}
		},
		OpStateRecord, func(o *OpState) error {
			if err := fn(o); err != nil {
				return err
			}
			o.UpdatedAt = r.DB.Now()
			return nil
		})
}

// --- node state variables ------------------------------------------------------------------

// NodeFlags are a node's state variables (seed 001): maintenance in progress, a failure
// recorded but not acted on, a recovery in progress.
type NodeFlags struct {
	NodeID      string `json:"node_id"`
	ComponentID string `json:"component_id"`
	TopologyID  string `json:"topology_id"`
	Tenant      string `json:"tenant"`

	Maintenance       string     `json:"maintenance,omitempty"` // restart, reboot or replace in progress
	MaintenanceSince  *time.Time `json:"maintenance_since,omitempty"`
	MaintenanceAction string     `json:"maintenance_action,omitempty"`
	MaintenanceBatch  string     `json:"maintenance_batch,omitempty"` // the batch its resume event fills
	PrevStatus        string     `json:"prev_status,omitempty"`       // status to restore on resume

	Failure *FailureRecord `json:"failure,omitempty"`

	Healing      string     `json:"healing,omitempty"` // the recovery action in progress
	HealFailedAt *time.Time `json:"heal_failed_at,omitempty"`
	LastHealedAt *time.Time `json:"last_healed_at,omitempty"`
}

// FailureRecord is a detected failure of a node.
type FailureRecord struct {
	Mode     string    `json:"mode"`
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since"`
	Pending  bool      `json:"pending"`               // recorded, not acted on
	Why      string    `json:"why,omitempty"`         // why it is not acted on
	Deferred time.Time `json:"deferred_at,omitempty"` // when acting on it was first held back
}

// NodeFlagsRecord encodes f.
func NodeFlagsRecord(f *NodeFlags) (store.Record, error) {
	r, err := store.Encode(KindNodeFlags, f.NodeID, f)
	r.Index = map[string]store.IndexKey{
		store.IdxParent:   {Part: f.ComponentID, Sort: f.NodeID},
		store.IdxTopology: {Part: f.TopologyID, Sort: f.ComponentID + "/" + f.NodeID},
	}
	return r, err
}

// Idle reports whether the flags say nothing (the record may be removed).
func (f *NodeFlags) Idle() bool {
	return f.Maintenance == "" && f.Failure == nil && f.Healing == "" && f.HealFailedAt == nil
}

// NodeFlags loads a node's flags (zero flags for a node without any).
func (r *Records) NodeFlags(ctx context.Context, n *model.Node) (NodeFlags, error) {
	f, _, err := store.Load[NodeFlags](ctx, r.DB.S, KindNodeFlags, n.ID)
	if errs.Is(err, errs.NotFound) {
		return NodeFlags{NodeID: n.ID, ComponentID: n.ComponentID, TopologyID: n.TopologyID, Tenant: n.Tenant}, nil
	}
	return f, err
}

// ComponentFlags loads the flags of a component's nodes, by node id.
func (r *Records) ComponentFlags(ctx context.Context, componentID string) (map[string]NodeFlags, error) {
	all, err := store.All[NodeFlags](ctx, r.DB.S, KindNodeFlags, store.Query{Index: store.IdxParent, Part: componentID})
	if err != nil {
		return nil, err
	}
	out := make(map[string]NodeFlags, len(all))
	for _, f := range all {
		out[f.NodeID] = f
	}
	return out, nil
}

// TopologyFlags loads the flags of a topology's nodes, by node id.
func (r *Records) TopologyFlags(ctx context.Context, topologyID string) (map[string]NodeFlags, error) {
	all, err := store.All[NodeFlags](ctx, r.DB.S, KindNodeFlags, store.Query{Index: store.IdxTopology, Part: topologyID})
	if err != nil {
		return nil, err
	}
	out := make(map[string]NodeFlags, len(all))
	for _, f := range all {
		out[f.NodeID] = f
	}
	return out, nil
}

// UpdateNodeFlags applies fn to a node's flags, creating them when absent.
func (r *Records) UpdateNodeFlags(ctx context.Context, n *model.Node, fn func(*NodeFlags) error) (NodeFlags, error) {
	return upsert(ctx, r.DB.S, KindNodeFlags, n.ID,
		func() NodeFlags {
			return NodeFlags{NodeID: n.ID, ComponentID: n.ComponentID, TopologyID: n.TopologyID, Tenant: n.Tenant}
		},
		NodeFlagsRecord, fn)
}

// --- component state variables ---------------------------------------------------------------

// ComponentState is a component's policy state: its load state variable and the
// triggers' breach counts, scaling, spread and drift seen, the queue that serialises
// disruptive operations.
type ComponentState struct {
	ComponentID string `json:"component_id"`
	TopologyID  string `json:"topology_id"`
	Tenant      string `json:"tenant"`

	Load       string             `json:"load,omitempty"` // normal, overload, underload
	LoadSince  *time.Time         `json:"load_since,omitempty"`
	LoadValues map[string]float64 `json:"load_values,omitempty"`
	Breaches   map[string]int     `json:"breaches,omitempty"`
	LastEval   *time.Time         `json:"last_eval,omitempty"`

	Scaling     string     `json:"scaling,omitempty"` // the scaling action in progress
	LastScaleAt *time.Time `json:"last_scale_at,omitempty"`
	LastScale   string     `json:"last_scale,omitempty"`

	Degraded   bool   `json:"degraded,omitempty"`
	SpreadNote string `json:"spread_note,omitempty"` // the last spread violation reported
	Drift      string `json:"drift,omitempty"`       // the last drift reported

	Queue   []string `json:"queue,omitempty"`   // disruptive actions, first runs
	Healing []string `json:"healing,omitempty"` // recovery actions holding a slot (quorum guard)
}

// ComponentStateRecord encodes s.
func ComponentStateRecord(s *ComponentState) (store.Record, error) {
	r, err := store.Encode(KindComponentState, s.ComponentID, s)
	r.Index = map[string]store.IndexKey{store.IdxTopology: {Part: s.TopologyID, Sort: s.ComponentID}}
	return r, err
}

// ComponentState loads a component's state (zero when none).
func (r *Records) ComponentState(ctx context.Context, c *model.Component) (ComponentState, error) {
	s, _, err := store.Load[ComponentState](ctx, r.DB.S, KindComponentState, c.ID)
	if errs.Is(err, errs.NotFound) {
		return ComponentState{ComponentID: c.ID, TopologyID: c.TopologyID, Tenant: c.Tenant}, nil
	}
	return s, err
}

// UpdateComponentState applies fn to a component's state, creating it when absent.
func (r *Records) UpdateComponentState(ctx context.Context, c *model.Component, fn func(*ComponentState) error) (ComponentState, error) {
	return upsert(ctx, r.DB.S, KindComponentState, c.ID,
		func() ComponentState {
			return ComponentState{ComponentID: c.ID, TopologyID: c.TopologyID, Tenant: c.Tenant}
		},
		ComponentStateRecord, fn)
}

// --- alerts ---------------------------------------------------------------------------------

// Alert is a raised alert, kept so that it is sent once until its condition clears.
type Alert struct {
	Key       string     `json:"key"`
	Title     string     `json:"title"`
	Message   string     `json:"message"`
	Level     string     `json:"level"`
	Subject   string     `json:"subject"` // the node, action or component it is about
	Topology  string     `json:"topology,omitempty"`
	Tenant    string     `json:"tenant,omitempty"`
	RaisedAt  time.Time  `json:"raised_at"`
	ClearedAt *time.Time `json:"cleared_at,omitempty"`
	Sent      bool       `json:"sent"`
}

// AlertRetention is how long a cleared alert is remembered.
const AlertRetention = 7 * 24 * time.Hour

// AlertRecord encodes a; open alerts are listed through the due index.
func AlertRecord(a *Alert) (store.Record, error) {
	r, err := store.Encode(KindAlert, a.Key, a)
	r.Index = map[string]store.IndexKey{}
	if a.ClearedAt == nil {
		r.Index[store.IdxDue] = store.IndexKey{Part: DueAlert, Sort: store.SortTime(a.RaisedAt)}
	} else {
		r.Expires = a.ClearedAt.Add(AlertRetention)
	}
	return r, err
}

// OpenAlerts lists alerts not cleared.
func (r *Records) OpenAlerts(ctx context.Context) ([]Alert, error) {
	return store.All[Alert](ctx, r.DB.S, KindAlert, store.Query{Index: store.IdxDue, Part: DueAlert, Limit: 500})
}

// --- desired specs ----------------------------------------------------------------------------

// Desired is the spec a topology was last converged to.
type Desired struct {
	TopologyID string          `json:"topology_id"`
	Tenant     string          `json:"tenant"`
	Spec       json.RawMessage `json:"spec"`
	Revision   int             `json:"revision"`
	ActionID   string          `json:"action_id,omitempty"`
	AppliedAt  time.Time       `json:"applied_at"`
}

// DesiredRecord encodes d.
func DesiredRecord(d *Desired) (store.Record, error) {
	r, err := store.Encode(KindDesired, d.TopologyID, d)
	r.Index = map[string]store.IndexKey{store.IdxTenant: {Part: d.Tenant, Sort: d.TopologyID}}
	return r, err
}

// Desired loads a topology's desired spec.
func (r *Records) Desired(ctx context.Context, topologyID string) (Desired, store.Record, error) {
	return store.Load[Desired](ctx, r.DB.S, KindDesired, topologyID)
}

// --- helpers ----------------------------------------------------------------------------------

// upsert reads kind/id (or starts from init), applies fn and writes it back under
// optimistic concurrency, retrying on a race.
func upsert[T any](ctx context.Context, s store.Store, kind, id string, init func() T, enc func(*T) (store.Record, error), fn func(*T) error) (T, error) {
	for attempt := 0; attempt < 50; attempt++ {
		var v T
		cond := store.AtVersion
		rec, err := s.Get(ctx, kind, id)
		switch {
		case err == nil:
			if err := store.Decode(rec, &v); err != nil {
				return v, err
			}
		case errs.Is(err, errs.NotFound):
			v, cond = init(), store.Absent
		default:
			return v, err
		}
		if err := fn(&v); err != nil {
			return v, err
		}
		nr, err := enc(&v)
		if err != nil {
			return v, err
		}
		nr.Version = rec.Version
		err = s.Write(ctx, store.Put(nr, cond))
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, store.ErrCondition) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 200 * time.Microsecond):
		}
	}
	var zero T
	return zero, errs.Transientf("update %s/%s: too many concurrent writers", kind, id)
}

// page lists one page of decoded records.
func page[T any](ctx context.Context, s store.Store, kind string, q store.Query) ([]T, string, error) {
	recs, next, err := s.List(ctx, kind, q)
	if err != nil {
		return nil, "", err
	}
	out := make([]T, 0, len(recs))
	for _, rec := range recs {
		var v T
		if err := store.Decode(rec, &v); err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	return out, next, nil
}

// Delete removes a record, ignoring a missing one.
func (r *Records) Delete(ctx context.Context, kind, id string) error {
	err := r.DB.S.Write(ctx, store.Del(kind, id, store.Any, 0))
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s/%s: %w", kind, id, err)
	}
	return nil
}

// --- built-in policies ---------------------------------------------------------------------

// Built-in policies: shared by every project, read-only, ready to attach.
const (
	BuiltinHealthPolicy   = "pol-builtin-health"
	BuiltinDeletionPolicy = "pol-builtin-deletion"
)

var builtinTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Builtins lists the built-in policies: the types' defaults.
func Builtins() []Policy {
	mk := func(id, name, typ, props string) Policy {
		return Policy{ID: id, Name: name, Type: typ, Version: "1.0", Revision: 1, CreatedAt: builtinTime, UpdatedAt: builtinTime,
			Spec: policy.Spec{Type: typ, Version: "1.0", Properties: json.RawMessage(props)}}
	}
	return []Policy{
		mk(BuiltinHealthPolicy, "default health", policy.TypeHealth, `{}`),
		mk(BuiltinDeletionPolicy, "oldest first", policy.TypeDeletion, `{"criteria":"OLDEST_FIRST"}`),
	}
}

// Builtin returns a built-in policy by id.
func Builtin(id string) (Policy, bool) {
	for _, p := range Builtins() {
		if p.ID == id {
			return p, true
		}
	}
	return Policy{}, false
}

// --- convergence plans ---------------------------------------------------------------------

// KindConvergePlan keeps the plan a convergence action runs, by action id.
const KindConvergePlan = "converge_plan"

// StoredPlan is the plan of a convergence action and its steps.
type StoredPlan struct {
	ActionID   string        `json:"action_id"`
	Plan       policy.Plan   `json:"plan"`
	Steps      []policy.Step `json:"steps"`
	Components []string      `json:"components"` // the components it changes (their queues)
	// IgnoreWindows runs upgrades and replacements at once instead of in the components'
	// maintenance windows.
	IgnoreWindows bool `json:"ignore_windows,omitempty"`
}

// ConvergePlanRecord encodes a stored plan.
func ConvergePlanRecord(p *StoredPlan) (store.Record, error) {
	return store.Encode(KindConvergePlan, p.ActionID, p)
}

// ConvergePlan loads the plan of a convergence action.
func (r *Records) ConvergePlan(ctx context.Context, actionID string) (StoredPlan, error) {
	p, _, err := store.Load[StoredPlan](ctx, r.DB.S, KindConvergePlan, actionID)
	if errs.Is(err, errs.NotFound) {
		return p, fmt.Errorf("convergence %s has no stored plan", actionID)
	}
	return p, err
}

// CollectTopology deletes the policy records of a deleted topology: bindings, receivers,
// operational states, node and component state variables. It returns how many it
// deleted.
func (r *Records) CollectTopology(ctx context.Context, topologyID string) (int, error) {
	n := 0
	for _, kind := range []string{KindBinding, KindReceiver, KindOpState, KindNodeFlags, KindComponentState} {
		for {
			recs, _, err := r.DB.S.List(ctx, kind, store.Query{Index: store.IdxTopology, Part: topologyID, Limit: 100})
			if err != nil {
				return n, err
			}
			if len(recs) == 0 {
				break
			}
			for _, rec := range recs {
				if err := r.Delete(ctx, kind, rec.ID); err != nil {
					return n, err
				}
				n++
			}
		}
	}
	return n, nil
}
