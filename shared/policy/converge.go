package policy

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"

	"github.com/straas/straas/shared/model"
)

// Convergence (seed 002, Heat): a topology's desired spec — the body of a creation —
// is compared with what runs, and the difference is a plan of operations done through
// the existing workflows: nodes to remove (flexdown, victims by the deletion policy),
// versions to upgrade (configuration change with reason upgrade), nodes to replace for
// a new flavor or image (replace), nodes to add (flexup). The plan is a pure function
// of its inputs; victims are drawn from a random source seeded by the topology and the
// revision, so that a dry run and the apply that follows it plan the same.

// Observed is what runs of one component.
type Observed struct {
	Component model.Component
	Type      model.ComponentType
	Nodes     []model.Node
	Deletion  *DeletionSpec // its deletion policy, if any
}

// Plan is what converging a topology to a desired spec does.
type Plan struct {
	TopologyID  string          `json:"topology_id"`
	Revision    int             `json:"revision"`
	Components  []ComponentPlan `json:"components"`
	Unsupported []string        `json:"unsupported,omitempty"` // changes convergence cannot make
	Changes     int             `json:"changes"`               // operations to run
}

// ComponentPlan is the plan of one component.
type ComponentPlan struct {
	Component   string          `json:"component"`
	ComponentID string          `json:"component_id"`
	Remove      []PlannedNode   `json:"remove,omitempty"`
	Upgrade     *Upgrade        `json:"upgrade,omitempty"`
	Replace     []PlannedNode   `json:"replace,omitempty"`
	Add         []RoleAdd       `json:"add,omitempty"`
	Settings    []SettingChange `json:"settings,omitempty"`    // recorded on the component; new nodes follow them
	Reconfigure []string        `json:"reconfigure,omitempty"` // components whose configuration lists its members
}

// PlannedNode is a node an operation works on.
type PlannedNode struct {
	ID     string `json:"node_id"`
	Name   string `json:"name"`
	Role   string `json:"role"`
	Reason string `json:"reason"`
}

// RoleAdd is nodes to add of a role.
type RoleAdd struct {
	Role  string `json:"role"`
	Count int    `json:"count"`
}

// Upgrade is a version change of a component (every node is rolled).
type Upgrade struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Nodes int    `json:"nodes"`
}

// SettingChange is a component field the desired spec changes.
type SettingChange struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// Step kinds, in the order a component's steps run.
const (
	StepRemove  = "remove"
	StepUpgrade = "upgrade"
	StepRenew   = "replace"
	StepAdd     = "add"
)

// Step is one operation of a plan, as the converge workflow runs it.
type Step struct {
	Kind        string `json:"kind"`
	ComponentID string `json:"component_id"`
	Component   string `json:"component"`
	NodeID      string `json:"node_id,omitempty"`
	Role        string `json:"role,omitempty"`
	Count       int    `json:"count,omitempty"`
	Version     string `json:"version,omitempty"`
	Flavor      string `json:"flavor,omitempty"`
	Image       string `json:"image,omitempty"`
}

// Steps flattens a plan, component by component in the plan's (dependency) order.
func (p Plan) Steps() []Step {
	var out []Step
	for _, c := range p.Components {
		for _, n := range c.Remove {
			out = append(out, Step{Kind: StepRemove, ComponentID: c.ComponentID, Component: c.Component, NodeID: n.ID, Role: n.Role})
		}
		if c.Upgrade != nil {
			out = append(out, Step{Kind: StepUpgrade, ComponentID: c.ComponentID, Component: c.Component, Version: c.Upgrade.To})
		}
		for _, n := range c.Replace {
			out = append(out, Step{Kind: StepRenew, ComponentID: c.ComponentID, Component: c.Component, NodeID: n.ID, Role: n.Role})
		}
		for _, a := range c.Add {
			out = append(out, Step{Kind: StepAdd, ComponentID: c.ComponentID, Component: c.Component, Role: a.Role, Count: a.Count})
		}
	}
	return out
}

// desiredRole is a role's desired count and settings.
type desiredRole struct {
	count         int
	flavor, image string
}

func desiredRoles(spec *model.ComponentSpec, t model.ComponentType, nodes []model.Node) map[string]desiredRole {
	out := map[string]desiredRole{}
	if len(spec.Submodules) == 0 {
		role := ""
		if len(t.Roles) > 0 {
			role = t.Roles[0]
		}
		for _, n := range nodes { // a single-role component's nodes name its role
			role = n.Role
			break
		}
		out[role] = desiredRole{count: spec.Size, flavor: spec.Flavor, image: spec.Image}
		return out
	}
	for _, s := range spec.Submodules {
		d := desiredRole{count: s.Size, flavor: spec.Flavor, image: spec.Image}
		if s.Flavor != "" {
			d.flavor = s.Flavor
		}
		if s.Image != "" {
			d.image = s.Image
		}
		out[s.Role] = d
	}
	return out
}

// PlanConvergence plans converging observed components (of topology topoID, named
// name@az) to desired, at revision.
func PlanConvergence(topoID, name, az string, desired *model.CreateTopology, observed []Observed, revision int) Plan {
	p := Plan{TopologyID: topoID, Revision: revision, Components: []ComponentPlan{}}
	if desired.Name != name {
		p.Unsupported = append(p.Unsupported, fmt.Sprintf("rename the topology from %s to %s", name, desired.Name))
	}
	if desired.AvailabilityZone != az {
		p.Unsupported = append(p.Unsupported, fmt.Sprintf("move the topology from %s to %s", az, desired.AvailabilityZone))
	}
	byName := map[string]*Observed{}
	for i := range observed {
		byName[observed[i].Component.Name] = &observed[i]
	}
	want := map[string]bool{}
	for _, c := range desired.Components {
		want[c.Name] = true
		if byName[c.Name] == nil {
			p.Unsupported = append(p.Unsupported, fmt.Sprintf("add component %s (create it in a topology of its own, or recreate this one)", c.Name))
		}
	}
	for _, o := range observed {
		if !want[o.Component.Name] {
			p.Unsupported = append(p.Unsupported, fmt.Sprintf("remove component %s", o.Component.Name))
		}
	}
	// Dependents: whose configuration lists whose members (kafka's zk_list).
	dependents := map[string][]string{}
	for _, c := range desired.Components {
		for _, d := range c.DependsOn {
			dependents[d] = append(dependents[d], c.Name)
		}
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "%s/%d", topoID, revision)
	rnd := rand.New(rand.NewPCG(h.Sum64(), uint64(revision)))
	for _, name := range model.DependencyOrder(desired.Components) {
		var spec *model.ComponentSpec
		for i := range desired.Components {
			if desired.Components[i].Name == name {
				spec = &desired.Components[i]
			}
		}
		o := byName[name]
		if o == nil || spec == nil {
			continue
		}
		c := &o.Component
		cp := ComponentPlan{Component: c.Name, ComponentID: c.ID}
		if spec.Type != c.Type {
			p.Unsupported = append(p.Unsupported, fmt.Sprintf("change the type of %s from %s to %s", c.Name, c.Type, spec.Type))
			continue
		}
		if !slices.Equal(sortedCopy(spec.DependsOn), sortedCopy(c.DependsOn)) {
			p.Unsupported = append(p.Unsupported, fmt.Sprintf("change what %s depends on (%v to %v)", c.Name, c.DependsOn, []string(spec.DependsOn)))
		}
		var live []model.Node
		for _, n := range o.Nodes {
			if n.Status != model.NodeDeleting {
				live = append(live, n)
			}
		}
		roles := desiredRoles(spec, o.Type, live)
		have := map[string][]model.Node{}
		for _, n := range live {
			have[n.Role] = append(have[n.Role], n)
		}
		for r := range have {
			if _, ok := roles[r]; !ok {
				roles[r] = desiredRole{} // a role the desired spec drops: remove its nodes
			}
		}
		removed := map[string]bool{}
		for _, r := range sortedKeys(roles) {
			d := roles[r]
			switch n := len(have[r]); {
			case d.count > n:
				cp.Add = append(cp.Add, RoleAdd{Role: r, Count: d.count - n})
			case d.count < n:
				var cands []Candidate
				for _, x := range have[r] {
					cands = append(cands, Candidate{ID: x.ID, Role: r, CreatedAt: x.CreatedAt, Healthy: x.Status == model.NodeActive, FaultDomain: x.FaultDomain})
				}
				for _, id := range o.Deletion.SelectVictims(cands, r, n-d.count, rnd.IntN) {
					removed[id] = true
					x := nodeByID(have[r], id)
					cp.Remove = append(cp.Remove, PlannedNode{ID: id, Name: x.Name, Role: r, Reason: fmt.Sprintf("%s: %d nodes, want %d", r, n, d.count)})
				}
			}
		}
		kept := 0
		for _, n := range live {
			if removed[n.ID] {
				continue
			}
			kept++
			d := roles[n.Role]
			var why []string
			if d.flavor != "" && n.Flavor != d.flavor {
				why = append(why, fmt.Sprintf("flavor %s, want %s", n.Flavor, d.flavor))
			}
			if d.image != "" && n.Image != d.image {
				why = append(why, fmt.Sprintf("image %s, want %s", n.Image, d.image))
			}
			if len(why) > 0 {
				cp.Replace = append(cp.Replace, PlannedNode{ID: n.ID, Name: n.Name, Role: n.Role, Reason: strings.Join(why, ", ")})
			}
		}
		if spec.Version != c.Version {
			cp.Upgrade = &Upgrade{From: c.Version, To: spec.Version, Nodes: kept}
		}
		cp.Settings = settingChanges(c, spec)
		if len(cp.Add) > 0 || len(cp.Remove) > 0 {
			if o.Type.Quorum {
				cp.Reconfigure = append(cp.Reconfigure, c.Name)
			}
			cp.Reconfigure = append(cp.Reconfigure, dependents[c.Name]...)
		}
		p.Changes += len(cp.Remove) + len(cp.Replace) + len(cp.Add)
		if cp.Upgrade != nil {
			p.Changes++
		}
		p.Components = append(p.Components, cp)
	}
	return p
}

func settingChanges(c *model.Component, s *model.ComponentSpec) []SettingChange {
	var out []SettingChange
	add := func(f, from, to string) {
		if from != to {
			out = append(out, SettingChange{Field: f, From: from, To: to})
		}
	}
	add("flavor", c.Flavor, s.Flavor)
	if s.Image != "" {
		add("image", c.Image, s.Image)
	}
	add("enable_cname", fmt.Sprint(c.EnableCName), fmt.Sprint(s.EnableCName))
	add("enable_fault_domain", fmt.Sprint(c.EnableFaultDomain), fmt.Sprint(s.EnableFaultDomain))
	add("min_num_of_fault_domain", fmt.Sprint(c.MinNumOfFaultDomain), fmt.Sprint(s.MinNumOfFaultDomain))
	add("anti_affinity_group", c.AntiAffinityGroup, s.AntiAffinityGroup)
	return out
}

// ApplySettings sets the component's fields to the desired spec's (sizes and version
// are the workflows' business).
func ApplySettings(c *model.Component, s *model.ComponentSpec) {
	c.Flavor = s.Flavor
	if s.Image != "" {
		c.Image = s.Image
	}
	c.EnableCName, c.EnableFaultDomain, c.MinNumOfFaultDomain, c.AntiAffinityGroup = s.EnableCName, s.EnableFaultDomain, s.MinNumOfFaultDomain, s.AntiAffinityGroup
	for i := range c.Submodules {
		for _, sm := range s.Submodules {
			if sm.Role == c.Submodules[i].Role {
				c.Submodules[i].Flavor, c.Submodules[i].Image = sm.Flavor, sm.Image
				if sm.Name != "" {
					c.Submodules[i].Name = sm.Name
				}
			}
		}
	}
}

func nodeByID(ns []model.Node, id string) model.Node {
	for _, n := range ns {
		if n.ID == id {
			return n
		}
	}
	return model.Node{}
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	if out == nil {
		out = []string{}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Drift compares a component's nodes with its record (the desired state as last set by
// a creation, an operation or a convergence) and lists the differences; nil when none.
func Drift(c *model.Component, t model.ComponentType, nodes []model.Node, installed map[string]string) []string {
	spec := model.ComponentSpec{Size: c.Size, Flavor: c.Flavor, Image: c.Image}
	for _, s := range c.Submodules {
		spec.Submodules = append(spec.Submodules, model.SubmoduleSpec{Role: s.Role, Size: s.Size, Flavor: s.Flavor, Image: s.Image})
	}
	var live []model.Node
	for _, n := range nodes {
		if n.Status != model.NodeDeleting {
			live = append(live, n)
		}
	}
	roles := desiredRoles(&spec, t, live)
	have := map[string]int{}
	var out []string
	for _, n := range live {
		have[n.Role]++
		switch n.Status {
		case model.NodeActive, model.NodeMaintenance:
		default:
			out = append(out, fmt.Sprintf("%s: node %s is %s", c.Name, n.Name, n.Status))
		}
		if v := installed[n.ID]; v != "" && v != c.Version {
			out = append(out, fmt.Sprintf("%s: node %s runs %s, want %s", c.Name, n.Name, v, c.Version))
		}
		if d, ok := roles[n.Role]; ok && d.flavor != "" && n.Flavor != d.flavor {
			out = append(out, fmt.Sprintf("%s: node %s has flavor %s, want %s", c.Name, n.Name, n.Flavor, d.flavor))
		}
	}
	for _, r := range sortedKeys(roles) {
		if d := roles[r]; d.count != have[r] {
			out = append(out, fmt.Sprintf("%s: %d %s node(s), want %d", c.Name, have[r], r, d.count))
		}
	}
	sort.Strings(out)
	return out
}
