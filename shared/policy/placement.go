package policy

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
)

// PlacementSpec is the properties of straas.policy.placement-1.0.
type PlacementSpec struct {
	FaultDomain  FaultDomainSpec  `json:"fault_domain"`
	AntiAffinity AntiAffinitySpec `json:"anti_affinity"`
}

// FaultDomainSpec spreads a component over fault domains (racks).
type FaultDomainSpec struct {
	Enabled    bool `json:"enabled"`
	MinDomains int  `json:"min_domains,omitempty"`
}

// AntiAffinitySpec keeps nodes (of this component, and of components naming the same
// group) on distinct hosts.
type AntiAffinitySpec struct {
	Group string `json:"group,omitempty"`
}

func init() {
	register(TypeDoc{
		Type: TypePlacement, Version: "1.0",
		Summary: "Spread a component's nodes over fault domains and hosts.",
		Doc: "fault_domain.enabled puts the component's servers in a Nova server group with the soft-anti-affinity policy " +
			"(the component's enable_fault_domain), which spreads them over hosts and racks; fault_domain.min_domains " +
			"(min_num_of_fault_domain) is the fewest fault domains the component must span: the checker raises an event and an " +
			"alert while it spans fewer, and scale-in removes nodes from the most crowded domain first. A node's fault domain " +
			"is its host's aggregate metadata fault_domain (the mock cloud publishes its racks so), else its host. " +
			"anti_affinity.group (anti_affinity_group) puts the servers of every component naming the group in one server group " +
			"with the strict anti-affinity policy. Attaching the policy sets these fields of the component; servers booted " +
			"afterwards (flexup, replace, recovery) follow them.",
		Singleton: true,
		Properties: []Property{
			{Name: "fault_domain.enabled", Type: "boolean", Default: false, Doc: "spread over fault domains"},
			{Name: "fault_domain.min_domains", Type: "integer", Default: 0, Constraints: "0..100; needs enabled", Doc: "fewest fault domains to span"},
			{Name: "anti_affinity.group", Type: "string", Constraints: "a name: letters, digits, - _ .", Doc: "strict anti-affinity group shared by components naming it"},
		},
		Example: Spec{Properties: json.RawMessage(`{"fault_domain":{"enabled":true,"min_domains":3}}`)},
	}, func(raw json.RawMessage) (any, error) {
		var p PlacementSpec
		if err := decodeProps(raw, &p); err != nil {
			return nil, err
		}
		return &p, p.normalize()
	})
}

func (p *PlacementSpec) normalize() error {
	if p.FaultDomain.MinDomains < 0 || p.FaultDomain.MinDomains > 100 {
		return errs.Invalidf("fault_domain.min_domains", "must be from 0 to 100, got %d", p.FaultDomain.MinDomains)
	}
	if p.FaultDomain.MinDomains > 0 && !p.FaultDomain.Enabled {
		return errs.Invalidf("fault_domain.min_domains", "needs fault_domain.enabled")
	}
	if g := p.AntiAffinity.Group; g != "" {
		for _, r := range g {
			if !(r == '-' || r == '_' || r == '.' || (r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')) {
				return errs.Invalidf("anti_affinity.group", "%q: use letters, digits, - _ .", g)
			}
		}
		if len(g) > 63 {
			return errs.Invalidf("anti_affinity.group", "longer than 63 characters")
		}
	}
	return nil
}

// Apply sets the component's placement fields as the policy says; it reports whether
// anything changed.
func (p *PlacementSpec) Apply(c *model.Component) bool {
	before := fmt.Sprint(c.EnableFaultDomain, c.MinNumOfFaultDomain, c.AntiAffinityGroup)
	c.EnableFaultDomain = p.FaultDomain.Enabled
	c.MinNumOfFaultDomain = p.FaultDomain.MinDomains
	c.AntiAffinityGroup = p.AntiAffinity.Group
	return before != fmt.Sprint(c.EnableFaultDomain, c.MinNumOfFaultDomain, c.AntiAffinityGroup)
}

// Spread is how a component's nodes sit over fault domains.
type Spread struct {
	Domains map[string]int `json:"domains"` // fault domain -> nodes
	Unknown int            `json:"unknown,omitempty"`
	Want    int            `json:"want"` // fewest domains to span
}

// Distinct is the number of fault domains spanned.
func (s Spread) Distinct() int { return len(s.Domains) }

// OK reports whether the spread meets Want.
func (s Spread) OK() bool { return s.Want == 0 || s.Distinct() >= s.Want }

// Describe is the spread in words.
func (s Spread) Describe() string {
	names := make([]string, 0, len(s.Domains))
	for d := range s.Domains {
		names = append(names, d)
	}
	sort.Strings(names)
	out := fmt.Sprintf("%d fault domains (want %d):", s.Distinct(), s.Want)
	for _, d := range names {
		out += fmt.Sprintf(" %s=%d", d, s.Domains[d])
	}
	if s.Unknown > 0 {
		out += fmt.Sprintf(" unknown=%d", s.Unknown)
	}
	return out
}

// SpreadOf computes the spread of serving nodes (their fault domains; "" is unknown)
// for a component wanting want domains.
func SpreadOf(domains []string, want int) Spread {
	s := Spread{Domains: map[string]int{}, Want: want}
	for _, d := range domains {
		if d == "" {
			s.Unknown++
			continue
		}
		s.Domains[d]++
	}
	return s
}

// PreferredDomain picks, among available domains, the one with the fewest of the
// component's nodes (ties by name), for a node to be added or replaced.
func PreferredDomain(available []string, used map[string]int) string {
	best := ""
	for _, d := range available {
		if best == "" || used[d] < used[best] || (used[d] == used[best] && d < best) {
			best = d
		}
	}
	return best
}
