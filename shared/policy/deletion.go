package policy

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/straas/straas/shared/errs"
)

// Deletion criteria (Senlin's).
const (
	OldestFirst   = "OLDEST_FIRST"
	YoungestFirst = "YOUNGEST_FIRST"
	Random        = "RANDOM"
)

var criteria = []string{OldestFirst, YoungestFirst, Random}

// DeletionSpec is the properties of straas.policy.deletion-1.0.
type DeletionSpec struct {
	Criteria             string `json:"criteria,omitempty"`
	GracePeriod          int    `json:"grace_period,omitempty"` // seconds between choosing a victim and removing it
	DestroyAfterDeletion *bool  `json:"destroy_after_deletion,omitempty"`
}

func init() {
	register(TypeDoc{
		Type: TypeDeletion, Version: "1.0",
		Summary: "Choose which nodes a scale-in (or a convergence to a smaller size) removes.",
		Doc: "Nodes that are not healthy (FAILED, UNREACHABLE) are always removed first; then " +
			"nodes in the most crowded fault domain, so that the component's spread survives; among those the criteria " +
			"decide: OLDEST_FIRST, YOUNGEST_FIRST (creation time) or RANDOM. Each victim gets grace_period seconds " +
			"(its drain script runs first) before it is removed; with destroy_after_deletion false the server is left in " +
			"the cloud, detached from the component.",
		Singleton: true,
		Properties: []Property{
			{Name: "criteria", Type: "string", Default: Random, Constraints: strings.Join(criteria, ", "), Doc: "which healthy nodes go first"},
			{Name: "grace_period", Type: "integer", Default: 0, Constraints: "0..3600", Doc: "seconds to wait before removing a chosen node"},
			{Name: "destroy_after_deletion", Type: "boolean", Default: true, Doc: "delete the server from the cloud (false: only detach it)"},
		},
		Example: Spec{Properties: json.RawMessage(`{"criteria":"OLDEST_FIRST","grace_period":30,"destroy_after_deletion":true}`)},
	}, func(raw json.RawMessage) (any, error) {
		var d DeletionSpec
		if err := decodeProps(raw, &d); err != nil {
			return nil, err
		}
		return &d, d.normalize()
	})
}

func (d *DeletionSpec) normalize() error {
	if d.Criteria == "" {
		d.Criteria = Random
	}
	if !slices.Contains(criteria, d.Criteria) {
		return errs.Invalidf("criteria", "unknown criteria %q (known: %s)", d.Criteria, strings.Join(criteria, ", "))
	}
	if d.GracePeriod < 0 || d.GracePeriod > 3600 {
		return errs.Invalidf("grace_period", "must be from 0 to 3600 seconds, got %d", d.GracePeriod)
	}
	if d.DestroyAfterDeletion == nil {
		t := true
		d.DestroyAfterDeletion = &t
	}
	return nil
}

// Destroy reports whether removed nodes' servers are deleted (a nil spec: yes).
func (d *DeletionSpec) Destroy() bool {
	return d == nil || d.DestroyAfterDeletion == nil || *d.DestroyAfterDeletion
}

// Grace is the wait before a victim is removed.
func (d *DeletionSpec) Grace() time.Duration {
	if d == nil {
		return 0
	}
	return time.Duration(d.GracePeriod) * time.Second
}

// Candidate is a node that scale-in may remove.
type Candidate struct {
	ID          string
	Role        string
	CreatedAt   time.Time
	Healthy     bool
	FaultDomain string
}

// SelectVictims picks n nodes (of role, when not empty) to remove. intn is the random
// source for RANDOM (rand.IntN); a nil spec uses RANDOM.
func (d *DeletionSpec) SelectVictims(cands []Candidate, role string, n int, intn func(int) int) []string {
	crit := Random
	if d != nil {
		crit = d.Criteria
	}
	var pool []Candidate
	for _, c := range cands {
		if role == "" || c.Role == role {
			pool = append(pool, c)
		}
	}
	// A random rank fixed up front keeps the sort a strict weak order.
	rank := make(map[string]int, len(pool))
	if crit == Random {
		for i := len(pool) - 1; i > 0; i-- {
			j := intn(i + 1)
			pool[i], pool[j] = pool[j], pool[i]
		}
	}
	for i, c := range pool {
		rank[c.ID] = i
	}
	crowd := map[string]int{}
	for _, c := range pool {
		if c.FaultDomain != "" {
			crowd[c.FaultDomain]++
		}
	}
	sort.SliceStable(pool, func(i, j int) bool {
		a, b := pool[i], pool[j]
		if a.Healthy != b.Healthy {
			return !a.Healthy
		}
		if crowd[a.FaultDomain] != crowd[b.FaultDomain] {
			return crowd[a.FaultDomain] > crowd[b.FaultDomain]
		}
		switch crit {
		case OldestFirst:
			if !a.CreatedAt.Equal(b.CreatedAt) {
				return a.CreatedAt.Before(b.CreatedAt)
			}
		case YoungestFirst:
			if !a.CreatedAt.Equal(b.CreatedAt) {
				return a.CreatedAt.After(b.CreatedAt)
			}
		}
		return rank[a.ID] < rank[b.ID]
	})
	out := make([]string, 0, n)
	for _, c := range pool {
		if len(out) == n {
			break
		}
		out = append(out, c.ID)
	}
	return out
}
