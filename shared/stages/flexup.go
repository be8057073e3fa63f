package stages

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
)

// Flexup (seed 000 §4.3.3): new nodes are spawned, installed and configured like a
// creation's, but a node that fails is left FAILED and reported instead of failing the
// component; only nodes that validated join, and only then are the nodes whose
// configuration lists the component's members reconfigured (the config_change child
// workflow), so a failed flexup never leaves a half-updated cluster.

// flexupNodes creates the records of the nodes a flexup adds, once: the component's
// next indexes and the nodes are written in one atomic write.
func (e *Env) flexupNodes(ctx context.Context, in OpIn) error {
	if in.Count <= 0 {
		return errs.Invalidf("count", "a flexup adds at least one node")
	}
	for attempt := 0; attempt < 10; attempt++ {
		t, _, err := e.DB.Topology(ctx, in.TopologyID)
		if err != nil {
			return err
		}
		c, crec, err := e.DB.Component(ctx, in.ComponentID)
		if err != nil {
			return err
		}
		nodes, err := e.DB.Nodes(ctx, c.ID)
		if err != nil {
			return err
		}
		have, next := 0, c.NextIndex
		for _, n := range nodes {
			if n.CreatedBy == in.ActionID {
				have++
			}
			next = max(next, n.Index+1)
		}
		if have >= in.Count {
			return nil
		}
		rc, err := e.roleSettings(ctx, &c, in.Role)
		if err != nil {
			return err
		}
		now := e.DB.Now()
		var ops []store.Op
		for i := 0; i < in.Count-have; i++ {
			idx := next + i
			n := &model.Node{
				ID: NodeID(c.ID, idx), Name: NodeName(&t, &c, idx), TopologyID: t.ID, ComponentID: c.ID,
				Tenant: c.Tenant, Role: in.Role, Index: idx, Status: model.NodeSpawning,
				AvailabilityZone: t.AvailabilityZone, Flavor: rc.Flavor, Image: rc.Image,
				CreatedBy: in.ActionID, CreatedAt: now, UpdatedAt: now,
			}
			if rc.EnableCName {
				n.CName = n.Name + "." + t.AvailabilityZone + "." + e.Settings.CNameDomain
			}
			r, err := db.NodeRecord(n)
			if err != nil {
				return err
			}
			ops = append(ops, store.Put(r, store.Absent))
		}
		c.NextIndex = next + in.Count - have
		c.UpdatedAt = now
		cr, err := db.ComponentRecord(&c)
		if err != nil {
			return err
		}
		cr.Version = crec.Version
		err = e.DB.S.Write(ctx, append(ops, store.Put(cr, store.AtVersion))...)
		if err == nil {
			e.stageNote(ctx, in.ActionID, in.ComponentID, StageBegin, fmt.Sprintf("%d new %s nodes from index %d", in.Count-have, in.Role, next))
			return nil
		}
		if !errs.Is(err, errs.Conflict) {
			return fmt.Errorf("create the new nodes of %s: %w", c.Name, err)
		}
		// The component changed meanwhile (a heartbeat-driven status, say): read again.
	}
	return &errs.Error{Kind: errs.Transient, Msg: "create the new nodes: the component kept changing"}
}

// roleSettings are the flavor, image and cname setting of a role's nodes: its
// submodule's when it has one, else the component's.
func (e *Env) roleSettings(ctx context.Context, c *model.Component, role string) (model.RoleCount, error) {
	layout, err := e.Repos.Layout(ctx, c)
	if err != nil {
		return model.RoleCount{}, err
	}
	for _, rc := range layout {
		if rc.Role == role {
			return rc, nil
		}
	}
	return model.RoleCount{Role: role, Flavor: c.Flavor, Image: c.Image, EnableCName: c.EnableCName}, nil
}

// SpawnIn is the input of LifecycleSpawn.
type SpawnIn struct {
	OpIn
	Strict bool `json:"strict"` // a node Nova cannot boot fails the stage (replace)
}

// SpawnOut counts what spawn booted.
type SpawnOut struct {
	Booted int `json:"booted"`
	Failed int `json:"failed"`
}

// LifecycleSpawn boots a server for each of the operation's own nodes that has none and
// waits for Nova's verdict. Nodes Nova cannot boot are FAILED; unless Strict, the others
// go on.
func (e *Env) LifecycleSpawn(ctx context.Context, in SpawnIn) (SpawnOut, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, StageSpawn)
	t, _, err := e.DB.Topology(ctx, in.TopologyID)
	if err != nil {
		return SpawnOut{}, err
	}
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return SpawnOut{}, err
	}
	nodes, err := e.actionNodes(ctx, in.ActionID, c.ID)
	if err != nil {
		return SpawnOut{}, err
	}
	failed, err := e.boot(ctx, &t, &c, nodes)
	if err != nil {
		return SpawnOut{}, err
	}
	out := SpawnOut{Booted: len(nodes) - len(failed), Failed: len(failed)}
	if len(failed) > 0 {
		e.stageDone(ctx, in.ActionID, c.ID, StageSpawn, "FAILED", failed)
		if in.Strict {
			return out, &SpawnFailed{Msg: "spawn failed: " + describeFailures(failed)}
		}
		return out, nil
	}
	e.stageDone(ctx, in.ActionID, c.ID, StageSpawn, "", nil, fmt.Sprintf("%d servers", len(nodes)))
	return out, nil
}

// LifecyclePreConfig computes the configuration of the operation's own nodes with the
// component's current membership, at the ref its members run (appliedRef). It writes
// only those nodes' configuration: the other members get theirs from the configuration
// change that follows, when they receive it.
func (e *Env) LifecyclePreConfig(ctx context.Context, in OpIn) (Empty, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, StagePreConfig)
	targets, err := e.actionNodes(ctx, in.ActionID, in.ComponentID)
	if err != nil || len(targets) == 0 {
		return Empty{}, err
	}
	t, _, err := e.DB.Topology(ctx, in.TopologyID)
	if err != nil {
		return Empty{}, err
	}
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	pin, err := e.preConfigInput(ctx, &t, &c)
	if err != nil {
		return Empty{}, err
	}
	out, err := e.Repos.PreConfig(ctx, pin)
	if err != nil {
		return Empty{}, fmt.Errorf("pre-config of component %s: %w", c.Name, err)
	}
	for _, n := range targets {
		cfg, ok := out.Nodes[n.ID]
		if !ok {
			return Empty{}, fmt.Errorf("pre-config of component %s computed nothing for node %s", c.Name, n.Name)
		}
		cfg.Ref = out.Ref
		if _, err := e.DB.UpdateNode(ctx, n.ID, func(x *model.Node) error { x.Config = &cfg; return nil }); err != nil {
			return Empty{}, err
		}
	}
	return Empty{}, nil
}

// preConfigInput is the pre-config input of a component with its current members and
// its dependencies', at the ref its members run.
func (e *Env) preConfigInput(ctx context.Context, t *model.Topology, c *model.Component) (PreConfigInput, error) {
	all, err := e.DB.Nodes(ctx, c.ID)
	if err != nil {
		return PreConfigInput{}, err
	}
	ms := members(all)
	pin := PreConfigInput{Ref: appliedRef(t, ms), Topology: *t, Component: *c, Nodes: ms}
	deps, err := e.dependencies(ctx, c)
	if err != nil {
		return pin, err
	}
	for _, d := range deps {
		dn, err := e.serving(ctx, d.ID)
		if err != nil {
			return pin, err
		}
		pin.Dependencies = append(pin.Dependencies, Dependency{Component: d, Nodes: dn})
	}
	return pin, nil
}

// MembersOut says which configuration changes an operation needs.
type MembersOut struct {
	Self       bool        `json:"self"`    // reconfigure the component itself
	Ordered    bool        `json:"ordered"` // one member at a time in a planned order (quorum types)
	Ref        string      `json:"ref"`
	Reason     string      `json:"reason"`
	Restart    string      `json:"restart"`
	Exclude    []string    `json:"exclude"`
	Dependents []DepChange `json:"dependents"`
}

// DepChange is a dependent component to reconfigure, at the ref its members run.
type DepChange struct {
	TopologyID  string `json:"topology_id"`
	ComponentID string `json:"component_id"`
	Ref         string `json:"ref"`
}

// LifecycleMembers decides what must be reconfigured after nodes came, went or were
// re-created: the component itself when its configuration lists the role's nodes
// (zookeeper's server list, storm's nimbus seeds), and the components that depend on
// it when theirs does (kafka's zk_list) — and only when membership actually changed.
func (e *Env) LifecycleMembers(ctx context.Context, in OpIn) (MembersOut, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, StageMembers)
	out := MembersOut{Exclude: []string{}, Dependents: []DepChange{}, Restart: "changed"}
	a, _, err := e.DB.Action(ctx, in.ActionID)
	if err != nil {
		return out, err
	}
	t, _, err := e.DB.Topology(ctx, in.TopologyID)
	if err != nil {
		return out, err
	}
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return out, err
	}
	ti, err := e.typeInfo(ctx, c.Type)
	if err != nil {
		return out, err
	}
	all, err := e.DB.Nodes(ctx, c.ID)
	if err != nil {
		return out, err
	}
	role, changed, why := in.Role, false, ""
	others := 0 // members the operation did not create
	for _, n := range members(all) {
		if n.CreatedBy != in.ActionID && n.ID != in.NodeID {
			others++
		}
	}
	switch a.Kind {
	case ActionFlexup:
		out.Reason = "flexup"
		for _, n := range all {
			if n.CreatedBy == in.ActionID && n.Status == model.NodeActive {
				changed = true
			}
		}
		if !changed {
			why = "no new node joined"
		}
	case ActionFlexdown:
		out.Reason, changed = "flexdown", in.Member
		out.Exclude = append(out.Exclude, in.NodeID)
		if !changed {
			why = "the removed node was not a member"
		}
	case ActionReplace:
		out.Reason = "replace"
		out.Exclude = []string{} // the node is back, with its new address: a member
		st, err := e.loadReplaceState(ctx, in.ActionID)
		if err != nil {
			return out, err
		}
		n, _, err := e.DB.Node(ctx, in.NodeID)
		if err != nil {
			return out, err
		}
		role = n.Role
		changed = strings.Join(st.OldIPs, ",") != strings.Join(n.IPs, ",")
		if !changed {
			why = "the new server has the old one's addresses"
		}
	default:
		return out, fmt.Errorf("membership of a %s action: not a membership change", a.Kind)
	}
	out.Ref = appliedRef(&t, members(all))
	var parts []string
	if changed && ti.ReconfigureSelf(role) && others > 0 {
		out.Self = true
		if a.Kind == ActionReplace && ti.Quorum {
			// Push the new configuration without restarting; the members then restart
			// one at a time, the leader last (PlanRestarts).
			out.Ordered, out.Restart = true, "none"
		}
		parts = append(parts, c.Name+" (lists its "+role+" nodes)")
	}
	if changed && ti.ReconfigureDependents(role) {
		comps, err := e.DB.Components(ctx, t.ID)
		if err != nil {
			return out, err
		}
		for _, d := range comps {
			if !has(d.DependsOn, c.Name) {
				continue
			}
			switch d.Status {
			case model.StatusActive, model.StatusDegraded, model.StatusUpdating:
			default:
				parts = append(parts, fmt.Sprintf("not %s (%s)", d.Name, d.Status))
				continue
			}
			dn, err := e.DB.Nodes(ctx, d.ID)
			if err != nil {
				return out, err
			}
			out.Dependents = append(out.Dependents, DepChange{TopologyID: t.ID, ComponentID: d.ID, Ref: appliedRef(&t, members(dn))})
			parts = append(parts, d.Name+" (depends on "+c.Name+")")
		}
	}
	detail := "reconfigure: " + strings.Join(parts, ", ")
	switch {
	case why != "":
		detail = "no configuration change: " + why
	case len(parts) == 0:
		detail = "no configuration change: no configuration lists " + role + " nodes"
	}
	e.stageDone(ctx, in.ActionID, in.ComponentID, StageMembers, "", nil, detail)
	return out, nil
}

// sortedByIndex orders nodes by index.
func sortedByIndex(ns []model.Node) []model.Node {
	out := append([]model.Node(nil), ns...)
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}
