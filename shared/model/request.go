package model

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/straas/straas/shared/errs"
)

// CreateTopology is the body of POST /straas/v1.0/topologies (seed 000 §4.3.2.1).
type CreateTopology struct {
	Name             string          `json:"name"`
	AvailabilityZone string          `json:"availability_zone"`
	Components       []ComponentSpec `json:"components"`
}

// ComponentSpec is one component of a creation request.
type ComponentSpec struct {
	Name                string          `json:"name"`
	Type                string          `json:"type"`
	Version             string          `json:"version"`
	Size                int             `json:"size,omitempty"`
	Flavor              string          `json:"flavor,omitempty"`
	Image               string          `json:"image,omitempty"`
	DependsOn           StringList      `json:"depends_on,omitempty"`
	EnableCName         bool            `json:"enable_cname,omitempty"`
	EnableFaultDomain   bool            `json:"enable_fault_domain,omitempty"`
	MinNumOfFaultDomain int             `json:"min_num_of_fault_domain,omitempty"`
	AntiAffinityGroup   string          `json:"anti_affinity_group,omitempty"`
	Submodules          []SubmoduleSpec `json:"submodules,omitempty"`
}

// SubmoduleSpec is a role of a component with its own size and overrides.
type SubmoduleSpec struct {
	Role        string `json:"role"`
	Name        string `json:"name,omitempty"`
	Size        int    `json:"size"`
	Flavor      string `json:"flavor,omitempty"`
	Image       string `json:"image,omitempty"`
	EnableCName *bool  `json:"enable_cname,omitempty"`
	// The seed's example writes "enable cname"; it means enable_cname.
	EnableCNameSeed *bool `json:"enable cname,omitempty"`
}

// StringList accepts a JSON string or an array of strings (the seed writes
// "depends_on": "zk").
type StringList []string

func (l *StringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = StringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want a string or a list of strings")
	}
	*l = many
	return nil
}

// Catalog is what validation needs to know about the world: component types from the
// script repo, flavors from Nova, availability zones from configuration.
type Catalog interface {
	ComponentType(typ string) (ComponentType, bool)
	ComponentTypeNames() []string
	HasFlavor(name string) bool
	HasZone(az string) bool
}

// DecodeCreateTopology parses and validates a creation request. Every failure is an
// errs.Invalid error naming the field.
func DecodeCreateTopology(raw []byte, cat Catalog) (*CreateTopology, error) {
	if err := ValidateJSON("create_topology", raw); err != nil {
		return nil, err
	}
	var req CreateTopology
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, errs.Invalidf("body", "%v", err)
	}
	if err := req.Validate(cat); err != nil {
		return nil, err
	}
	return &req, nil
}

// Validate checks the request against the catalog: types, versions, roles, flavors,
// dependencies (known, no cycles), sizes.
func (r *CreateTopology) Validate(cat Catalog) error {
	if !cat.HasZone(r.AvailabilityZone) {
		return errs.Invalidf("availability_zone", "unknown availability zone %q", r.AvailabilityZone)
	}
	byName := map[string]int{}
	for i, c := range r.Components {
		if j, dup := byName[c.Name]; dup {
			return errs.Invalidf(fmt.Sprintf("components[%d].name", i), "duplicate component name %q (also components[%d])", c.Name, j)
		}
		byName[c.Name] = i
	}
	for i := range r.Components {
		if err := r.Components[i].validate(fmt.Sprintf("components[%d]", i), cat, byName); err != nil {
			return err
		}
	}
	return checkCycles(r.Components, byName)
}

func (c *ComponentSpec) validate(at string, cat Catalog, byName map[string]int) error {
	t, ok := cat.ComponentType(c.Type)
	if !ok {
		return errs.Invalidf(at+".type", "unknown component type %q (known: %s)", c.Type, strings.Join(cat.ComponentTypeNames(), ", "))
	}
	if !t.HasVersion(c.Version) {
		return errs.Invalidf(at+".version", "unknown %s version %q (known: %s)", c.Type, c.Version, strings.Join(t.Versions, ", "))
	}
	if c.Flavor != "" && !cat.HasFlavor(c.Flavor) {
		return errs.Invalidf(at+".flavor", "unknown flavor %q", c.Flavor)
	}
	for _, d := range c.DependsOn {
		if d == c.Name {
			return errs.Invalidf(at+".depends_on", "component %q depends on itself", c.Name)
		}
		if _, ok := byName[d]; !ok {
			return errs.Invalidf(at+".depends_on", "unknown component %q", d)
		}
	}
	if c.MinNumOfFaultDomain > 0 && !c.EnableFaultDomain {
		return errs.Invalidf(at+".min_num_of_fault_domain", "needs enable_fault_domain")
	}
	if len(c.Submodules) == 0 {
		if len(t.Roles) > 1 {
			return errs.Invalidf(at+".submodules", "%s has roles %s: say how many nodes of each in submodules", c.Type, strings.Join(t.Roles, ", "))
		}
		if c.Size < 1 {
			return errs.Invalidf(at+".size", "must be at least 1")
		}
	} else {
		total := 0
		roles := map[string]bool{}
		for j := range c.Submodules {
			s := &c.Submodules[j]
			sat := fmt.Sprintf("%s.submodules[%d]", at, j)
			if !t.HasRole(s.Role) {
				return errs.Invalidf(sat+".role", "unknown %s role %q (known: %s)", c.Type, s.Role, strings.Join(t.Roles, ", "))
			}
			if roles[s.Role] {
				return errs.Invalidf(sat+".role", "role %q appears twice", s.Role)
			}
			roles[s.Role] = true
			if s.Flavor != "" && !cat.HasFlavor(s.Flavor) {
				return errs.Invalidf(sat+".flavor", "unknown flavor %q", s.Flavor)
			}
			if s.EnableCName == nil && s.EnableCNameSeed != nil {
				s.EnableCName = s.EnableCNameSeed
			}
			s.EnableCNameSeed = nil
			total += s.Size
		}
		if c.Size != 0 && c.Size != total {
			return errs.Invalidf(at+".size", "is %d but the submodules add up to %d", c.Size, total)
		}
		c.Size = total
	}
	if t.MinSize > 0 && c.Size < t.MinSize {
		return errs.Invalidf(at+".size", "%s needs at least %d nodes", c.Type, t.MinSize)
	}
	if c.Flavor == "" {
		c.Flavor = t.DefaultFlavor
	}
	if c.Image == "" {
		c.Image = t.DefaultImage
	}
	return nil
}

// checkCycles rejects dependency cycles, naming one component on the cycle.
func checkCycles(cs []ComponentSpec, byName map[string]int) error {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(cs))
	var visit func(i int, path []string) error
	visit = func(i int, path []string) error {
		color[i] = grey
		path = append(path, cs[i].Name)
		for _, d := range cs[i].DependsOn {
			j := byName[d]
			switch color[j] {
			case grey:
				return errs.Invalidf(fmt.Sprintf("components[%d].depends_on", i), "dependency cycle: %s -> %s", strings.Join(path, " -> "), d)
			case white:
				if err := visit(j, path); err != nil {
					return err
				}
			}
		}
		color[i] = black
		return nil
	}
	for i := range cs {
		if color[i] == white {
			if err := visit(i, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// DependencyOrder returns component names so that every component comes after the ones
// it depends on (stable: request order among independents).
func DependencyOrder(cs []ComponentSpec) []string {
	done := map[string]bool{}
	var out []string
	for len(out) < len(cs) {
		progressed := false
		for _, c := range cs {
			if done[c.Name] {
				continue
			}
			ready := true
			for _, d := range c.DependsOn {
				if !done[d] {
					ready = false
				}
			}
			if ready {
				done[c.Name] = true
				out = append(out, c.Name)
				progressed = true
			}
		}
		if !progressed { // a cycle: Validate rejects these; keep the rest in request order
			var rest []string
			for _, c := range cs {
				if !done[c.Name] {
					rest = append(rest, c.Name)
				}
			}
			sort.Strings(rest)
			return append(out, rest...)
		}
	}
	return out
}
