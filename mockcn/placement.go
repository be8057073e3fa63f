package mockcn

import (
	"fmt"
	"strings"
)

// Server group policies.
const (
	PolicyAffinity         = "affinity"
	PolicyAntiAffinity     = "anti-affinity"
	PolicySoftAffinity     = "soft-affinity"
	PolicySoftAntiAffinity = "soft-anti-affinity"
)

// hints are what the scheduler is asked to respect besides capacity.
type hints struct {
	group         *group
	differentHost []string // server ids
	sameHost      []string // server ids
	faultDomain   string   // a rack
	host          string   // a forced host (admin's "az:host")
}

// placeLocked picks a CN for v (which is not yet a group member), or explains why none
// fits.
func (c *Cloud) placeLocked(v *vm, az string, h hints) (*cn, string) {
	onCN := map[*cn]int{}
	inRack := map[string]int{}
	if h.group != nil {
		for _, id := range h.group.Members {
			if m := c.vms[id]; m != nil && m.cn != nil && m != v {
				onCN[m.cn]++
				inRack[m.cn.AZ+"/"+m.cn.Rack]++
			}
		}
	}
	hostsOf := func(ids []string) map[*cn]bool {
		out := map[*cn]bool{}
		for _, id := range ids {
			if m := c.vms[id]; m != nil && m.cn != nil {
				out[m.cn] = true
			}
		}
		return out
	}
	different, same := hostsOf(h.differentHost), hostsOf(h.sameHost)

	var rejected = map[string]int{}
	var best *cn
	var bestWeight, bestFree int
	for _, x := range c.cns {
		reason := ""
		switch {
		case az != "" && x.AZ != az:
			continue
		case h.host != "" && x.Hostname != h.host && x.ID != h.host:
			continue
		case x.down:
			reason = "ComputeFilter"
		case x.disabled:
			reason = "ComputeFilter"
		case float64(x.usedCPU+v.CPUs) > float64(x.CPUs)*c.cfg.CPUAllocationRatio:
			reason = "VCPUFilter"
		case float64(x.usedRAM+v.RAMMB) > float64(x.RAMMB)*c.cfg.RAMAllocationRatio:
			reason = "RamFilter"
		case x.usedDisk+v.DiskGB > x.DiskGB:
			reason = "DiskFilter"
		case h.faultDomain != "" && x.Rack != h.faultDomain:
			reason = "FaultDomainFilter"
		case different[x]:
			reason = "DifferentHostFilter"
		case len(h.sameHost) > 0 && !same[x]:
			reason = "SameHostFilter"
		case h.group != nil && h.group.Policy == PolicyAntiAffinity && onCN[x] >= max(h.group.MaxPer, 1):
			reason = "ServerGroupAntiAffinityFilter"
		case h.group != nil && h.group.Policy == PolicyAffinity && len(onCN) > 0 && onCN[x] == 0:
			reason = "ServerGroupAffinityFilter"
		}
		if reason != "" {
			rejected[reason]++
			continue
		}
		weight := 0
		if h.group != nil {
			switch h.group.Policy {
			case PolicyAntiAffinity:
				weight = -inRack[x.AZ+"/"+x.Rack] // spread over fault domains first
			case PolicySoftAntiAffinity:
				weight = -(onCN[x]*1000 + inRack[x.AZ+"/"+x.Rack])
			case PolicySoftAffinity:
				weight = onCN[x]
			}
		}
		free := x.RAMMB - x.usedRAM
		if best == nil || weight > bestWeight || (weight == bestWeight && (free > bestFree || (free == bestFree && x.Seq < best.Seq))) {
			best, bestWeight, bestFree = x, weight, free
		}
	}
	if best != nil {
		return best, ""
	}
	var parts []string
	for _, f := range []string{"ComputeFilter", "VCPUFilter", "RamFilter", "DiskFilter", "FaultDomainFilter", "DifferentHostFilter", "SameHostFilter", "ServerGroupAntiAffinityFilter", "ServerGroupAffinityFilter"} {
		if n := rejected[f]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s rejected %d", f, n))
		}
	}
	zone := az
	if zone == "" {
		zone = "any zone"
	}
	if len(parts) == 0 {
		return nil, "no compute nodes in " + zone
	}
	return nil, "in " + zone + ": " + strings.Join(parts, ", ")
}
