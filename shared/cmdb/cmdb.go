// Package cmdb is the port to an external configuration management database (seed 000
// §4.1.1.5, "CMS"): straas publishes a topology's model — components, nodes, where they
// run — there on request, reads it back, re-syncs it and removes it. Adapters: Stored
// keeps the copy in straas's own store (embedded mode, or when no CMDB is configured);
// HTTP talks to a CMDB endpoint with the small JSON protocol that Handler serves.
package cmdb

import (
	"context"
	"sort"
	"time"

	"github.com/straas/straas/shared/model"
)

// CMDB is the port. Implementations are safe for concurrent use.
type CMDB interface {
	// Create stores a topology's model; errs.Conflict when one exists.
	Create(ctx context.Context, m Model) error
	// Get returns a topology's model; errs.NotFound when there is none.
	Get(ctx context.Context, topologyID string) (Model, error)
	// Update replaces a topology's model; errs.NotFound when there is none.
	Update(ctx context.Context, m Model) error
	// Delete removes a topology's model; errs.NotFound when there is none.
	Delete(ctx context.Context, topologyID string) error
}

// Model is a topology as a CMDB keeps it.
type Model struct {
	TopologyID       string      `json:"topology_id"`
	Name             string      `json:"name"`
	AvailabilityZone string      `json:"availability_zone"`
	Tenant           string      `json:"tenant"`
	Owner            string      `json:"owner"`
	Status           string      `json:"status"`
	Components       []Component `json:"components"`
	SyncedAt         time.Time   `json:"synced_at"`
}

// Component is one cluster of the model.
type Component struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	Version   string   `json:"version"`
	Status    string   `json:"status"`
	DependsOn []string `json:"depends_on"`
	Nodes     []Node   `json:"nodes"`
}

// Node is one VM of the model: what an operator looks up in a CMDB.
type Node struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Role        string   `json:"role"`
	Index       int      `json:"index"`
	Status      string   `json:"status"`
	ServerID    string   `json:"server_id,omitempty"`
	Hypervisor  string   `json:"hypervisor,omitempty"`
	FaultDomain string   `json:"fault_domain,omitempty"`
	Hostname    string   `json:"hostname,omitempty"`
	CName       string   `json:"cname,omitempty"`
	IPs         []string `json:"ips"`
}

// Build makes the model of a topology from straas's records: components in request
// order, nodes by index.
func Build(t *model.Topology, comps []model.Component, nodes map[string][]model.Node, at time.Time) Model {
	m := Model{TopologyID: t.ID, Name: t.Name, AvailabilityZone: t.AvailabilityZone, Tenant: t.Tenant, Owner: t.Owner,
		Status: t.Status, Components: []Component{}, SyncedAt: at.UTC()}
	for _, c := range comps {
		mc := Component{ID: c.ID, Name: c.Name, Type: c.Type, Version: c.Version, Status: c.Status,
			DependsOn: append([]string{}, c.DependsOn...), Nodes: []Node{}}
		ns := append([]model.Node(nil), nodes[c.ID]...)
		sort.Slice(ns, func(i, j int) bool { return ns[i].Index < ns[j].Index })
		for _, n := range ns {
			mc.Nodes = append(mc.Nodes, Node{ID: n.ID, Name: n.Name, Role: n.Role, Index: n.Index, Status: n.Status,
				ServerID: n.ServerID, Hypervisor: n.Hypervisor, FaultDomain: n.FaultDomain, Hostname: n.Hostname, CName: n.CName,
				IPs: append([]string{}, n.IPs...)})
		}
		m.Components = append(m.Components, mc)
	}
	return m
}
