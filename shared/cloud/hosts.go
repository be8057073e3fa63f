package cloud

import (
	"context"
	"fmt"
	"sort"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
)

// Host statuses (Nova's host_status of a server).
const (
	HostUp          = "UP"
	HostDown        = "DOWN"
	HostMaintenance = "MAINTENANCE"
	HostUnknown     = "UNKNOWN"
)

// hostStatusMicroversion is the first compute microversion that shows host_status.
const hostStatusMicroversion = "2.16"

// HostStatus says whether the host of a server is up: UP, DOWN, MAINTENANCE (its compute
// service is disabled) or UNKNOWN (Nova does not know, the server has no host, or the
// policy hides host_status from this user — by default only admins see it). A missing
// server is an errs.NotFound error.
func (c *Cloud) HostStatus(ctx context.Context, serverID string) (string, error) {
	// A copy of the client carries the microversion for this call only: the other calls
	// keep the 2.1 responses they parse.
	sc := *c.compute
	sc.Microversion = hostStatusMicroversion
	var srv struct {
		HostStatus *string `json:"host_status"`
	}
	if err := servers.Get(ctx, &sc, serverID).ExtractInto(&srv); err != nil {
		return "", classify("host status of server "+serverID, err)
	}
	if srv.HostStatus == nil || *srv.HostStatus == "" {
		return HostUnknown, nil
	}
	return *srv.HostStatus, nil
}

// FaultDomains maps each hypervisor host to its fault domain, read from the host
// aggregates' fault_domain metadata (the mock cloud publishes its racks so). A host in
// several such aggregates takes the one with the lowest id. Listing aggregates is an
// admin operation: other users get an errs.Permission error.
func (c *Cloud) FaultDomains(ctx context.Context) (map[string]string, error) {
	pages, err := aggregates.List(c.compute).AllPages(ctx)
	if err != nil {
		return nil, classify("list host aggregates", err)
	}
	aggs, err := aggregates.ExtractAggregates(pages)
	if err != nil {
		return nil, fmt.Errorf("list host aggregates: %w", err)
	}
	sort.Slice(aggs, func(i, j int) bool { return aggs[i].ID < aggs[j].ID })
	out := map[string]string{}
	for _, a := range aggs {
		fd := a.Metadata["fault_domain"]
		if fd == "" {
			continue
		}
		for _, h := range a.Hosts {
			if _, seen := out[h]; !seen {
				out[h] = fd
			}
		}
	}
	return out, nil
}
