package checker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/straas/straas/shared/alert"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/policy/actions"
	"github.com/straas/straas/shared/policy/records"
	"github.com/straas/straas/shared/store"
)

// The policy checks (seed 001, seed 002): for every component with policies attached,
// health (detect failed nodes; start their recovery, or record the failure when
// autohealing is off or the node is in maintenance, and heal it with a "delayed since"
// note once allowed), scaling triggers (metric thresholds over evaluation periods; the
// load state variable and its changes as events, with autoscaling on or off), fault
// domain spread and degradation; then alerts (stale nodes, failed and stuck actions,
// degraded components, de-duplicated) and drift between what runs and what was asked.
// With no policy attached anywhere a tick costs a few queries that find nothing.

// PolicyReport is what one tick's policy checks did.
type PolicyReport struct {
	Components int `json:"components"` // components with policies evaluated
	Failures   int `json:"failures"`   // failed nodes seen
	Healing    int `json:"healing"`    // recoveries started
	Pending    int `json:"pending"`    // failures newly recorded and held back
	Scaling    int `json:"scaling"`    // scalings started
	Alerts     int `json:"alerts"`     // alerts raised or re-sent
	Drift      int `json:"drift"`      // topologies checked for drift
}

func (c *Checker) records() *records.Records { return records.New(c.DB) }

func (c *Checker) policyService() *actions.Service {
	return actions.New(c.DB, c.Launcher, c.Log)
}

// policyTick runs the policy checks once.
func (c *Checker) policyTick(ctx context.Context) (PolicyReport, error) {
	var rep PolicyReport
	var errList []error
	bindings, err := c.records().AllBindings(ctx)
	if err != nil {
		return rep, fmt.Errorf("policy bindings: %w", err)
	}
	byComp := map[string][]records.Binding{}
	var order []string
	for _, b := range bindings {
		if !b.Enabled {
			continue
		}
		if _, ok := byComp[b.ComponentID]; !ok {
			order = append(order, b.ComponentID)
		}
		byComp[b.ComponentID] = append(byComp[b.ComponentID], b)
	}
	for _, cid := range order {
		if err := c.evaluateComponent(ctx, cid, byComp[cid], &rep); err != nil {
			errList = append(errList, fmt.Errorf("component %s: %w", cid, err))
		}
	}
	n, err := c.reviewAlerts(ctx)
	rep.Alerts += n
	if err != nil {
		errList = append(errList, fmt.Errorf("alerts: %w", err))
	}
	st, srec, err := c.loadState(ctx)
	if err != nil {
		return rep, errors.Join(append(errList, err)...)
	}
	now := c.DB.Now()
	changed := false
	if now.Sub(st.LastActions) >= ActionScanEvery {
		n, err := c.scanActions(ctx, &st)
		rep.Alerts += n
		if err != nil {
			errList = append(errList, fmt.Errorf("actions: %w", err))
		}
		st.LastActions, changed = now, true
	}
	if now.Sub(st.LastDrift) >= DriftEvery {
		n, err := c.driftRound(ctx, &st)
		rep.Drift = n
		if err != nil {
			errList = append(errList, fmt.Errorf("drift: %w", err))
		}
		st.LastDrift, changed = now, true
	}
	if changed {
		if err := c.saveState(ctx, st, srec); err != nil {
			errList = append(errList, err)
		}
	}
	return rep, errors.Join(errList...)
}

// compView is what the checks of one component read, loaded once.
type compView struct {
	comp   model.Component
	nodes  []model.Node
	leases map[string]model.Lease
	ops    records.OpStates
	flags  map[string]records.NodeFlags
	specs  map[string]*policy.Parsed // by type
}

func (c *Checker) loadView(ctx context.Context, cid string, bs []records.Binding) (*compView, error) {
	comp, _, err := c.DB.Component(ctx, cid)
	if err != nil {
		return nil, err
	}
	v := &compView{comp: comp, leases: map[string]model.Lease{}, specs: map[string]*policy.Parsed{}}
	for _, b := range bs {
		if _, dup := v.specs[b.PolicyType]; dup {
			continue
		}
		p, _, err := c.records().Policy(ctx, b.PolicyID)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		parsed, err := p.Parse()
		if err != nil {
			c.Log.Warn("policy no longer parses", "policy", p.ID, "err", err)
			continue
		}
		v.specs[b.PolicyType] = &parsed
	}
	if v.nodes, err = c.DB.Nodes(ctx, cid); err != nil {
		return nil, err
	}
	ls, err := store.All[model.Lease](ctx, c.DB.S, db.KindLease, store.Query{Index: store.IdxTopology, Part: comp.TopologyID})
	if err != nil {
		return nil, err
	}
	for _, l := range ls {
		v.leases[l.NodeID] = l
	}
	if v.ops, err = c.records().OpStates(ctx, comp.TopologyID); err != nil {
		return nil, err
	}
	if v.flags, err = c.records().ComponentFlags(ctx, cid); err != nil {
		return nil, err
	}
	return v, nil
}

func (c *Checker) evaluateComponent(ctx context.Context, cid string, bs []records.Binding, rep *PolicyReport) error {
	v, err := c.loadView(ctx, cid, bs)
	if errs.Is(err, errs.NotFound) {
		// The component is gone: its bindings go with it.
		for _, b := range bs {
			if err := c.records().Delete(ctx, records.KindBinding, records.BindingID(b.ComponentID, b.PolicyID)); err != nil {
				return err
			}
		}
		return nil
	}
	if err != nil {
		return err
	}
	switch v.comp.Status {
	case model.StatusActive, model.StatusDegraded, model.StatusUpdating:
	default:
		return nil // being created or deleted, or failed: its workflow's business
	}
	rep.Components++
	var errList []error
	if p := v.specs[policy.TypeHealth]; p != nil {
		if err := c.checkHealth(ctx, v, p.Health(), rep); err != nil {
			errList = append(errList, fmt.Errorf("health: %w", err))
		}
	}
	if p := v.specs[policy.TypeScaling]; p != nil {
		if err := c.checkScaling(ctx, v, p.Scaling(), rep); err != nil {
			errList = append(errList, fmt.Errorf("scaling: %w", err))
		}
	}
	if err := c.checkSpread(ctx, v); err != nil {
		errList = append(errList, fmt.Errorf("spread: %w", err))
	}
	if _, err := c.checkDegraded(ctx, cid); err != nil {
		errList = append(errList, fmt.Errorf("degraded: %w", err))
	}
	return errors.Join(errList...)
}

// checkHealth detects failed nodes and acts on them as the operational states allow.
func (c *Checker) checkHealth(ctx context.Context, v *compView, spec *policy.HealthSpec, rep *PolicyReport) error {
	now := c.DB.Now()
	floor := c.StaleAfter
	inProgress := 0
	for _, f := range v.flags {
		if f.Healing != "" {
			inProgress++
		}
	}
	room := max(spec.Recovery.MaxConcurrent-inProgress, 0)
	svc := c.policyService()
	for i := range v.nodes {
		n := &v.nodes[i]
		flags := v.flags[n.ID]
		obs := policy.Observation{Status: n.Status, Error: n.Error}
		if l, ok := v.leases[n.ID]; ok {
			obs.LastSeen, obs.Services = l.LastSeen, l.Services
		}
		fail, bad := spec.Detect(now, obs, floor)
		if !bad {
			if flags.Failure != nil && flags.Healing == "" {
				if err := c.recovered(ctx, n, flags); err != nil {
					return err
				}
			}
			continue
		}
		rep.Failures++
		if flags.Healing != "" {
			continue // being recovered: never twice at once
		}
		eff := v.ops.Effective(v.comp.TopologyID, v.comp.ID, n.ID)
		if ok, why := policy.HealingAllowed(eff, flags.Maintenance != ""); !ok {
			if flags.Failure == nil || !flags.Failure.Pending {
				if err := c.holdFailure(ctx, n, fail, why, flags); err != nil {
					return err
				}
				rep.Pending++
			}
			continue
		}
		if flags.HealFailedAt != nil && now.Sub(*flags.HealFailedAt) < time.Duration(spec.Recovery.RetryInterval)*time.Second {
			continue // its last recovery failed: wait before trying again
		}
		if room == 0 {
			continue // the component's recovery slots are taken; next tick
		}
		var delayed *time.Time
		if flags.Failure != nil && flags.Failure.Pending {
			d := flags.Failure.Deferred
			if d.IsZero() {
				d = flags.Failure.Since
			}
			delayed = &d
		}
		if _, started, err := svc.Heal(ctx, n, fail, delayed); err != nil {
			return err
		} else if started {
			rep.Healing++
			room--
		}
	}
	return nil
}

// holdFailure records a failure that is not acted on (seed 001: autohealing off logs the
// heartbeat timeout and sets an instance state variable).
func (c *Checker) holdFailure(ctx context.Context, n *model.Node, f policy.Failure, why string, prev records.NodeFlags) error {
	now := c.DB.Now()
	if _, err := c.records().UpdateNodeFlags(ctx, n, func(x *records.NodeFlags) error {
		since := now
		if x.Failure != nil && !x.Failure.Since.IsZero() {
			since = x.Failure.Since
		}
		x.Failure = &records.FailureRecord{Mode: f.Mode, Reason: f.Reason, Since: since, Pending: true, Why: why, Deferred: now}
		return nil
	}); err != nil {
		return err
	}
	return c.DB.Emit(ctx, model.Event{Type: "node.failure_pending", Level: model.LevelWarning, TopologyID: n.TopologyID,
		ComponentID: n.ComponentID, NodeID: n.ID, Tenant: n.Tenant,
		Message: fmt.Sprintf("node %s failed (%s); not healed: %s. It will be healed once allowed", n.Name, f.Reason, why),
		Data:    map[string]any{"mode": f.Mode, "why": why, "since": now.UTC().Format(time.RFC3339)}})
}

// recovered clears a failure the node got over by itself.
func (c *Checker) recovered(ctx context.Context, n *model.Node, prev records.NodeFlags) error {
	if _, err := c.records().UpdateNodeFlags(ctx, n, func(x *records.NodeFlags) error {
		if x.Healing == "" {
			x.Failure, x.HealFailedAt = nil, nil
		}
		return nil
	}); err != nil {
		return err
	}
	if prev.Failure == nil {
		return nil
	}
	return c.DB.Emit(ctx, model.Event{Type: "node.failure_cleared", TopologyID: n.TopologyID, ComponentID: n.ComponentID, NodeID: n.ID,
		Tenant: n.Tenant, Message: fmt.Sprintf("node %s is healthy again without recovery (was: %s since %s)", n.Name,
			prev.Failure.Reason, prev.Failure.Since.UTC().Format(time.RFC3339))})
}

// checkScaling evaluates the triggers once per period and scales when one fires and
// autoscaling is on; the load state variable is tracked either way.
func (c *Checker) checkScaling(ctx context.Context, v *compView, spec *policy.ScalingSpec, rep *PolicyReport) error {
	if len(spec.Triggers) == 0 {
		return nil
	}
	now := c.DB.Now()
	st, err := c.records().ComponentState(ctx, &v.comp)
	if err != nil {
		return err
	}
	if st.LastEval != nil && now.Sub(*st.LastEval) < spec.PeriodDuration() {
		return nil
	}
	samples := map[string][]float64{}
	fresh := 2 * spec.PeriodDuration()
	for _, n := range v.nodes {
		if n.Status != model.NodeActive || (spec.Role != "" && n.Role != spec.Role) {
			continue
		}
		l, ok := v.leases[n.ID]
		if !ok || now.Sub(l.LastSeen) > max(fresh, c.StaleAfter) {
			continue
		}
		for _, m := range spec.Metrics() {
			if x, ok := l.Metrics[m]; ok {
				samples[m] = append(samples[m], x)
			}
		}
	}
	ev := spec.Evaluate(st.Breaches, samples)
	eff := v.ops.Effective(v.comp.TopologyID, v.comp.ID, "")
	allowed, why := policy.ScalingAllowed(eff)
	prevLoad := st.Load
	if prevLoad == "" {
		prevLoad = policy.LoadNormal
	}
	if _, err := c.records().UpdateComponentState(ctx, &v.comp, func(x *records.ComponentState) error {
		x.Breaches, x.LastEval, x.LoadValues = ev.Breaches, &now, ev.Values
		if x.Load != ev.Load {
			x.Load, x.LoadSince = ev.Load, &now
		}
		return nil
	}); err != nil {
		return err
	}
	if ev.Load != prevLoad {
		msg := fmt.Sprintf("component %s load: %s -> %s", v.comp.Name, prevLoad, ev.Load)
		if ev.Fire != nil {
			msg += " (" + ev.Fire.Describe() + ")"
		}
		if !allowed {
			msg += "; " + why + ": nothing scales"
		}
		lvl := model.LevelInfo
		if ev.Load != policy.LoadNormal {
			lvl = model.LevelWarning
		}
		if err := c.DB.Emit(ctx, model.Event{Type: "component.load", Level: lvl, TopologyID: v.comp.TopologyID, ComponentID: v.comp.ID,
			Tenant: v.comp.Tenant, Message: msg, Data: map[string]any{"from": prevLoad, "to": ev.Load, "values": ev.Values, "autoscaling": eff.Autoscaling}}); err != nil {
			c.Log.Warn("record event", "err", err)
		}
	}
	if ev.Fire == nil || !allowed {
		return nil
	}
	res, err := c.policyService().Scale(ctx, actions.ScaleRequest{Component: v.comp, Direction: ev.Fire.Action,
		Cause: "trigger " + ev.Fire.Describe(), Automatic: true})
	switch {
	case errs.Is(err, errs.Conflict):
		c.Log.Debug("scaling trigger held back", "component", v.comp.Name, "why", err)
		return nil
	case err != nil:
		return err
	}
	if res.ActionID != "" {
		rep.Scaling++
	}
	return nil
}

// checkSpread raises an alert (and an event) while a component wanting min_num_of_fault_domain
// spans fewer fault domains.
func (c *Checker) checkSpread(ctx context.Context, v *compView) error {
	want := v.comp.MinNumOfFaultDomain
	if p := v.specs[policy.TypePlacement]; p != nil {
		want = p.Placement().FaultDomain.MinDomains
	}
	if want <= 0 {
		return nil
	}
	var domains []string
	for _, n := range v.nodes {
		if n.Status == model.NodeActive {
			domains = append(domains, n.FaultDomain)
		}
	}
	sp := policy.SpreadOf(domains, want)
	if sp.Distinct() == 0 {
		return nil // fault domains unknown (the cloud does not say): nothing to judge
	}
	key := alertSpread + v.comp.ID
	if sp.OK() {
		return c.clearAlert(ctx, key)
	}
	msg := fmt.Sprintf("component %s serves from %s", v.comp.Name, sp.Describe())
	st, err := c.records().ComponentState(ctx, &v.comp)
	if err != nil {
		return err
	}
	if st.SpreadNote != msg {
		if _, err := c.records().UpdateComponentState(ctx, &v.comp, func(x *records.ComponentState) error { x.SpreadNote = msg; return nil }); err != nil {
			return err
		}
		_ = c.DB.Emit(ctx, model.Event{Type: "placement.violated", Level: model.LevelWarning, TopologyID: v.comp.TopologyID,
			ComponentID: v.comp.ID, Tenant: v.comp.Tenant, Message: msg})
	}
	return c.raise(ctx, alert.Alert{Key: key, Level: "warning", Title: "component spread over too few fault domains", Message: msg,
		Topology: v.comp.TopologyID}, v.comp.ID, v.comp.Tenant)
}

// spreadOK re-checks a spread alert's component.
func (c *Checker) spreadOK(ctx context.Context, cid string) bool {
	comp, _, err := c.DB.Component(ctx, cid)
	if errs.Is(err, errs.NotFound) {
		return true
	}
	if err != nil {
		return false
	}
	bs, err := c.records().Bindings(ctx, cid)
	if err != nil {
		return false
	}
	v, err := c.loadView(ctx, cid, bs)
	if err != nil {
		return false
	}
	want := comp.MinNumOfFaultDomain
	if p := v.specs[policy.TypePlacement]; p != nil {
		want = p.Placement().FaultDomain.MinDomains
	}
	var domains []string
	for _, n := range v.nodes {
		if n.Status == model.NodeActive {
			domains = append(domains, n.FaultDomain)
		}
	}
	return policy.SpreadOf(domains, want).OK()
}

// checkDegraded moves an ACTIVE component with unhealthy nodes to DEGRADED (and back),
// with an alert while it lasts. Components being changed by a workflow are left to it.
func (c *Checker) checkDegraded(ctx context.Context, cid string) (bool, error) {
	comp, _, err := c.DB.Component(ctx, cid)
	if errs.Is(err, errs.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if comp.Status != model.StatusActive && comp.Status != model.StatusDegraded {
		return false, nil
	}
	nodes, err := c.DB.Nodes(ctx, cid)
	if err != nil {
		return false, err
	}
	var bad []string
	for _, n := range nodes {
		if n.Status == model.NodeUnreachable || n.Status == model.NodeFailed {
			bad = append(bad, n.Name+" "+n.Status)
		}
	}
	sort.Strings(bad)
	want := model.StatusActive
	if len(bad) > 0 {
		want = model.StatusDegraded
	}
	key := alertDegraded + cid
	if want == comp.Status {
		if want == model.StatusActive {
			return false, c.clearAlert(ctx, key)
		}
		return true, nil
	}
	changed := false
	comp, err = c.DB.UpdateComponent(ctx, cid, func(x *model.Component) error {
		if x.Status == model.StatusActive || x.Status == model.StatusDegraded {
			changed = x.Status != want
			x.Status = want
		}
		return nil
	})
	if err != nil || !changed {
		return false, err
	}
	if want == model.StatusDegraded {
		msg := fmt.Sprintf("component %s is DEGRADED: %s", comp.Name, strings.Join(bad, ", "))
		_ = c.DB.Emit(ctx, model.Event{Type: "component.degraded", Level: model.LevelWarning, TopologyID: comp.TopologyID,
			ComponentID: comp.ID, Tenant: comp.Tenant, Message: msg, Data: map[string]any{"nodes": bad}})
		return true, c.raise(ctx, alert.Alert{Key: key, Level: "warning", Title: "component degraded", Message: msg, Topology: comp.TopologyID,
			Labels: map[string]string{"component": comp.ID}}, comp.ID, comp.Tenant)
	}
	_ = c.DB.Emit(ctx, model.Event{Type: "component.active", TopologyID: comp.TopologyID, ComponentID: comp.ID, Tenant: comp.Tenant,
		Message: fmt.Sprintf("component %s is ACTIVE again: every node serves", comp.Name)})
	return false, c.clearAlert(ctx, key)
}

// driftRound compares a batch of topologies' components with their nodes (round robin
// over all topologies) and reports changes of drift as events.
func (c *Checker) driftRound(ctx context.Context, st *checkerState) (int, error) {
	from := ""
	if st.DriftCursor != "" {
		from = st.DriftCursor + "\x00"
	}
	recs, _, err := c.DB.S.List(ctx, db.KindTopology, store.Query{From: from, Limit: DriftBatch})
	if err != nil {
		return 0, err
	}
	if len(recs) < DriftBatch {
		st.DriftCursor = "" // wrap around next round
	}
	var errList []error
	for _, r := range recs {
		var t model.Topology
		if err := store.Decode(r, &t); err != nil {
			return 0, err
		}
		if len(recs) == DriftBatch {
			st.DriftCursor = t.ID
		}
		if err := c.checkDrift(ctx, &t); err != nil {
			errList = append(errList, fmt.Errorf("topology %s: %w", t.Name, err))
		}
	}
	return len(recs), errors.Join(errList...)
}

func (c *Checker) checkDrift(ctx context.Context, t *model.Topology) error {
	if t.Status != model.StatusActive && t.Status != model.StatusDegraded {
		return nil
	}
	comps, err := c.DB.Components(ctx, t.ID)
	if err != nil {
		return err
	}
	leases, err := store.All[model.Lease](ctx, c.DB.S, db.KindLease, store.Query{Index: store.IdxTopology, Part: t.ID})
	if err != nil {
		return err
	}
	installed := map[string]string{}
	for _, l := range leases {
		installed[l.NodeID] = l.Installed
	}
	for i := range comps {
		comp := &comps[i]
		if comp.Status != model.StatusActive && comp.Status != model.StatusDegraded {
			continue // a workflow is changing it
		}
		st, err := c.records().ComponentState(ctx, comp)
		if err != nil {
			return err
		}
		if len(st.Queue) > 0 || len(st.Healing) > 0 {
			continue // being changed or recovered: judged once that is over
		}
		nodes, err := c.DB.Nodes(ctx, comp.ID)
		if err != nil {
			return err
		}
		inst := map[string]string{}
		for _, n := range nodes {
			v := installed[n.ID]
			if v == "" {
				v = n.InstalledVersion
			}
			inst[n.ID] = v
		}
		drift := policy.Drift(comp, model.ComponentType{}, nodes, inst)
		note := strings.Join(drift, "; ")
		if note == st.Drift {
			continue
		}
		if _, err := c.records().UpdateComponentState(ctx, comp, func(x *records.ComponentState) error { x.Drift = note; return nil }); err != nil {
			return err
		}
		ev := model.Event{Type: "topology.drift", Level: model.LevelWarning, TopologyID: t.ID, ComponentID: comp.ID, Tenant: t.Tenant,
			Message: fmt.Sprintf("topology %s: component %s differs from its desired state: %s", t.Name, comp.Name, note),
			Data:    map[string]any{"drift": drift}}
		if note == "" {
			ev.Type, ev.Level = "topology.in_sync", model.LevelInfo
			ev.Message = fmt.Sprintf("topology %s: component %s matches its desired state again", t.Name, comp.Name)
			ev.Data = map[string]any{"was": st.Drift}
		}
		if err := c.DB.Emit(ctx, ev); err != nil {
			c.Log.Warn("record event", "err", err)
		}
	}
	return nil
}
