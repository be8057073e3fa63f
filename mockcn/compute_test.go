package mockcn_test

import (
	"context"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/hypervisors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/straas/straas/mockcn"
)

func (e *env) group(c *gophercloud.ServiceClient, name, policy string) *servergroups.ServerGroup {
	e.t.Helper()
	g, err := servergroups.Create(e.ctx, c, servergroups.CreateOpts{Name: name, Policies: []string{policy}}).Extract()
	if err != nil {
		e.t.Fatalf("create group: %v", err)
	}
	return g
}

func TestAntiAffinity(t *testing.T) {
	e := start(t, nil) // az1: 4 CNs over 2 racks
	demo, admin := e.compute("demo"), e.compute("admin")
	g := e.group(demo, "zk", "anti-affinity")
	if len(g.Policies) != 1 || g.Policies[0] != "anti-affinity" || len(g.Members) != 0 {
		t.Fatalf("group = %+v", g)
	}
	hosts, racks := map[string]bool{}, map[string]int{}
	var ids []string
	for i := 0; i < 4; i++ {
		s := e.create(demo, servers.CreateOpts{Name: "zk", AvailabilityZone: "az1"}, servers.SchedulerHintOpts{Group: g.ID})
		as := e.waitStatus(admin, s.ID, mockcn.StatusActive)
		if hosts[as.Host] {
			t.Fatalf("two members of an anti-affinity group on %s", as.Host)
		}
		hosts[as.Host] = true
		vm, _ := e.cloud.GetVM(s.ID)
		racks[vm.Rack]++
		if i == 1 && len(racks) != 2 {
			t.Fatalf("the first two members share rack %v: fault domains are not spread first", racks)
		}
		ids = append(ids, s.ID)
	}
	// A fifth member has no host left in az1: ERROR with Nova's fault, at once.
	s := e.create(demo, servers.CreateOpts{Name: "zk-5", AvailabilityZone: "az1"}, servers.SchedulerHintOpts{Group: g.ID})
	got := e.waitStatus(demo, s.ID, mockcn.StatusError)
	if !strings.Contains(got.Fault.Message, "No valid host was found") || got.Fault.Code != 500 {
		t.Fatalf("fault = %+v", got.Fault)
	}
	g, err := servergroups.Get(e.ctx, demo, g.ID).Extract()
	if err != nil || len(g.Members) != 5 {
		t.Fatalf("group members = %v, %v", g.Members, err)
	}
	// Other projects do not see the group, nor may they use it.
	other := e.compute("other")
	if _, err := servergroups.Get(e.ctx, other, g.ID).Extract(); !is404(err) {
		t.Fatalf("other project gets the group: %v", err)
	}
	if _, err := servers.Create(e.ctx, other, servers.CreateOpts{Name: "x", FlavorRef: "1", ImageRef: "i"}, servers.SchedulerHintOpts{Group: g.ID}).Extract(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("other project uses the group: %v", err)
	}
	// Deleting a member frees its host for a new one.
	if err := servers.Delete(e.ctx, demo, ids[0]).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	s = e.create(demo, servers.CreateOpts{Name: "zk-6", AvailabilityZone: "az1"}, servers.SchedulerHintOpts{Group: g.ID})
	e.waitStatus(demo, s.ID, mockcn.StatusActive)
	if err := servergroups.Delete(e.ctx, demo, g.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
}

func TestAffinityAndHints(t *testing.T) {
	e := start(t, nil)
	demo, admin := e.compute("demo"), e.compute("admin")
	g := e.group(demo, "together", "affinity")
	var host string
	for i := 0; i < 3; i++ {
		s := e.create(demo, servers.CreateOpts{Name: "a", AvailabilityZone: "az2"}, servers.SchedulerHintOpts{Group: g.ID})
		as := e.waitStatus(admin, s.ID, mockcn.StatusActive)
		if host != "" && as.Host != host {
			t.Fatalf("affinity members on %s and %s", host, as.Host)
		}
		host = as.Host
	}
	first := e.create(demo, servers.CreateOpts{Name: "b", AvailabilityZone: "az1"}, nil)
	a := e.waitStatus(admin, first.ID, mockcn.StatusActive)
	s := e.create(demo, servers.CreateOpts{Name: "c"}, servers.SchedulerHintOpts{DifferentHost: []string{first.ID}})
	if b := e.waitStatus(admin, s.ID, mockcn.StatusActive); b.Host == a.Host {
		t.Fatal("different_host ignored")
	}
	s = e.create(demo, servers.CreateOpts{Name: "d"}, servers.SchedulerHintOpts{SameHost: []string{first.ID}})
	if b := e.waitStatus(admin, s.ID, mockcn.StatusActive); b.Host != a.Host {
		t.Fatal("same_host ignored")
	}
	rack := mockcn.RackName("az1", 2)
	s = e.create(demo, servers.CreateOpts{Name: "e"}, servers.SchedulerHintOpts{AdditionalProperties: map[string]any{"fault_domain": rack}})
	e.waitStatus(demo, s.ID, mockcn.StatusActive)
	if vm, _ := e.cloud.GetVM(s.ID); vm.Rack != rack {
		t.Fatalf("fault_domain hint: placed in %s, want %s", vm.Rack, rack)
	}
	// The admin can force a host.
	s = e.create(admin, servers.CreateOpts{Name: "f", AvailabilityZone: "az2:cn-az2-0003"}, nil)
	if b := e.waitStatus(admin, s.ID, mockcn.StatusActive); b.Host != "cn-az2-0003" {
		t.Fatalf("forced host: on %s", b.Host)
	}
}

func TestFullAZ(t *testing.T) {
	e := start(t, func(c *mockcn.Config) {
		c.AZs = []string{"tiny-az"}
		c.CNsPerAZ = 1
		c.Hardware = mockcn.Hardware{CPUs: 4, RAMMB: 16384, DiskGB: 200}
	})
	demo := e.compute("demo")
	var ok []string
	for i := 0; i < 2; i++ { // large is 4 vCPUs: the first takes all of the CN's
		s := e.create(demo, servers.CreateOpts{Name: "big", FlavorRef: "104", AvailabilityZone: "tiny-az"}, nil)
		ok = append(ok, s.ID)
	}
	e.waitStatus(demo, ok[0], mockcn.StatusActive)
	got := e.waitStatus(demo, ok[1], mockcn.StatusError)
	if !strings.Contains(got.Fault.Message, "No valid host was found") {
		t.Fatalf("fault = %+v", got.Fault)
	}
	// An ERROR server uses nothing and can be deleted.
	if err := servers.Delete(e.ctx, demo, ok[1]).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	for _, x := range e.cloud.CNs() {
		if x.Used.CPUs != 4 || x.Used.RAMMB != 8192 {
			t.Fatalf("used = %+v, want one large", x.Used)
		}
	}
	// A new CN makes room.
	if _, err := e.cloud.AddCNs(mockcn.CNSpec{Count: 1, AZ: "tiny-az"}); err != nil {
		t.Fatal(err)
	}
	s := e.create(demo, servers.CreateOpts{Name: "big", FlavorRef: "104", AvailabilityZone: "tiny-az"}, nil)
	e.waitStatus(demo, s.ID, mockcn.StatusActive)
}

func TestQuota(t *testing.T) {
	e := start(t, func(c *mockcn.Config) { c.Quota = mockcn.Quota{Instances: 2} })
	demo := e.compute("demo")
	e.create(demo, servers.CreateOpts{Name: "a"}, nil)
	e.create(demo, servers.CreateOpts{Name: "b"}, nil)
	_, err := servers.Create(e.ctx, demo, servers.CreateOpts{Name: "c", FlavorRef: "1", ImageRef: "i"}, nil).Extract()
	if !gophercloud.ResponseCodeIs(err, 403) {
		t.Fatalf("over quota: %v, want 403", err)
	}
	l, err := limits.Get(e.ctx, demo, nil).Extract()
	if err != nil || l.Absolute.MaxTotalInstances != 2 || l.Absolute.TotalInstancesUsed != 2 || l.Absolute.MaxTotalCores != -1 {
		t.Fatalf("limits = %+v, %v", l.Absolute, err)
	}
}

func TestHypervisors(t *testing.T) {
	e := start(t, nil)
	admin, demo := e.compute("admin"), e.compute("demo")
	s := e.create(demo, servers.CreateOpts{Name: "x", FlavorRef: "103", AvailabilityZone: "az1"}, nil)
	e.waitStatus(demo, s.ID, mockcn.StatusActive)
	vm, _ := e.cloud.GetVM(s.ID)

	for _, mv := range []string{"", "2.53", "2.79"} {
		admin.Microversion = mv
		pages, err := hypervisors.List(admin, hypervisors.ListOpts{}).AllPages(e.ctx)
		if err != nil {
			t.Fatalf("microversion %q: %v", mv, err)
		}
		hs, err := hypervisors.ExtractHypervisors(pages)
		if err != nil || len(hs) != 8 {
			t.Fatalf("microversion %q: %d hypervisors, %v", mv, len(hs), err)
		}
		var used *hypervisors.Hypervisor
		for i, h := range hs {
			if h.HypervisorHostname == vm.Host {
				used = &hs[i]
			}
			if h.State != "up" || h.Status != "enabled" || h.VCPUs != 32 || h.HypervisorType != "QEMU" || h.HypervisorVersion == 0 {
				t.Fatalf("hypervisor = %+v", h)
			}
		}
		if used == nil || used.VCPUsUsed != 2 || used.MemoryMBUsed != 4096 || used.RunningVMs != 1 || used.FreeRamMB != 128*1024-4096 {
			t.Fatalf("hypervisor of the server = %+v", used)
		}
		h, err := hypervisors.Get(e.ctx, admin, used.ID).Extract()
		if err != nil || h.HypervisorHostname != vm.Host {
			t.Fatalf("get hypervisor %s: %+v, %v", used.ID, h, err)
		}
		if mv == "2.53" && h.ID != vm.CN {
			t.Fatalf("2.53 hypervisor id %q, want the CN uuid %q", h.ID, vm.CN)
		}
	}
	admin.Microversion = ""
	// A CN taken down shows as down.
	if err := e.cloud.SetCNDown(vm.CN, true); err != nil {
		t.Fatal(err)
	}
	pages, _ := hypervisors.List(admin, hypervisors.ListOpts{}).AllPages(e.ctx)
	hs, _ := hypervisors.ExtractHypervisors(pages)
	down := 0
	for _, h := range hs {
		if h.State == "down" {
			down++
		}
	}
	if down != 1 {
		t.Fatalf("%d hypervisors down, want 1", down)
	}
	if _, err := hypervisors.List(demo, hypervisors.ListOpts{}).AllPages(e.ctx); !gophercloud.ResponseCodeIs(err, 403) {
		t.Fatalf("member lists hypervisors: %v", err)
	}
	stats, err := hypervisors.GetStatistics(e.ctx, admin).Extract()
	if err != nil || stats.Count != 8 || stats.RunningVMs != 1 {
		t.Fatalf("statistics = %+v, %v", stats, err)
	}
	// Racks are host aggregates carrying the fault domain.
	pages, err = aggregates.List(admin).AllPages(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	aggs, _ := aggregates.ExtractAggregates(pages)
	if len(aggs) != 4 || aggs[0].Metadata["fault_domain"] == "" || len(aggs[0].Hosts) != 2 {
		t.Fatalf("aggregates = %+v", aggs)
	}
	found := false
	for _, a := range aggs {
		for _, h := range a.Hosts {
			if h == vm.Host && a.Metadata["fault_domain"] == vm.Rack && a.AvailabilityZone == "az1" {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("no aggregate puts %s in %s", vm.Host, vm.Rack)
	}
}

func TestFlavorsAndZones(t *testing.T) {
	e := start(t, nil)
	demo, admin := e.compute("demo"), e.compute("admin")
	pages, err := flavors.ListDetail(demo, flavors.ListOpts{}).AllPages(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := flavors.ExtractFlavors(pages)
	names := map[string]flavors.Flavor{}
	for _, f := range fs {
		names[f.Name] = f
	}
	for _, n := range []string{"tiny", "small", "medium", "large", "xlarge", "m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"} {
		if f, ok := names[n]; !ok || f.VCPUs == 0 || f.RAM == 0 || f.Disk == 0 || !f.IsPublic {
			t.Fatalf("flavor %s = %+v (present %v)", n, f, ok)
		}
	}
	f, err := flavors.Get(e.ctx, demo, "2").Extract()
	if err != nil || f.Name != "m1.small" || f.RAM != 2048 {
		t.Fatalf("flavor 2 = %+v, %v", f, err)
	}
	if _, err := flavors.Get(e.ctx, demo, "999").Extract(); !is404(err) {
		t.Fatalf("missing flavor: %v", err)
	}
	pages, _ = flavors.ListDetail(demo, flavors.ListOpts{MinRAM: 8192}).AllPages(e.ctx)
	if fs, _ := flavors.ExtractFlavors(pages); len(fs) != 4 {
		t.Fatalf("%d flavors with >= 8 GiB, want 4", len(fs))
	}

	pages, err = availabilityzones.List(demo).AllPages(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	zones, _ := availabilityzones.ExtractAvailabilityZones(pages)
	if len(zones) != 2 || zones[0].ZoneName != "az1" || !zones[0].ZoneState.Available {
		t.Fatalf("zones = %+v", zones)
	}
	pages, err = availabilityzones.ListDetail(admin).AllPages(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	zones, _ = availabilityzones.ExtractAvailabilityZones(pages)
	if len(zones) != 3 || len(zones[0].Hosts) != 4 || !zones[0].Hosts["cn-az1-0001"]["nova-compute"].Available {
		t.Fatalf("zone detail = %+v", zones)
	}
	if _, err := availabilityzones.ListDetail(demo).AllPages(context.Background()); !gophercloud.ResponseCodeIs(err, 403) {
		t.Fatalf("member lists zone detail: %v", err)
	}
	// A zone whose CNs are all down is unavailable.
	if _, err := e.cloud.SetRackDown("az2", mockcn.RackName("az2", 1), true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cloud.SetRackDown("az2", mockcn.RackName("az2", 2), true); err != nil {
		t.Fatal(err)
	}
	pages, _ = availabilityzones.List(demo).AllPages(e.ctx)
	zones, _ = availabilityzones.ExtractAvailabilityZones(pages)
	if zones[1].ZoneName != "az2" || zones[1].ZoneState.Available {
		t.Fatalf("az2 with every rack down = %+v", zones[1])
	}
	s := e.create(demo, servers.CreateOpts{Name: "nowhere", AvailabilityZone: "az2"}, nil)
	if got := e.waitStatus(demo, s.ID, mockcn.StatusError); !strings.Contains(got.Fault.Message, "No valid host") {
		t.Fatalf("fault = %+v", got.Fault)
	}
}

func TestServerGroupMicroversions(t *testing.T) {
	e := start(t, nil)
	demo := e.compute("demo")
	demo.Microversion = "2.64"
	g, err := servergroups.Create(e.ctx, demo, servergroups.CreateOpts{Name: "g", Policy: "anti-affinity", Rules: &servergroups.Rules{MaxServerPerHost: 2}}).Extract()
	if err != nil || g.Policy == nil || *g.Policy != "anti-affinity" || g.Rules.MaxServerPerHost != 2 {
		t.Fatalf("2.64 group = %+v, %v", g, err)
	}
	_, err = servergroups.Create(e.ctx, demo, servergroups.CreateOpts{Name: "g", Policy: "sideways"}).Extract()
	if !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("bad policy: %v", err)
	}
	demo.Microversion = ""
	pages, err := servergroups.List(demo, nil).AllPages(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	gs, _ := servergroups.ExtractServerGroups(pages)
	if len(gs) != 1 || gs[0].Policies[0] != "anti-affinity" {
		t.Fatalf("groups = %+v", gs)
	}
	// Two per host: 9 members fit 4 hosts of az1 with one left over.
	var last string
	for i := 0; i < 9; i++ {
		last = e.create(demo, servers.CreateOpts{Name: "m", AvailabilityZone: "az1"}, servers.SchedulerHintOpts{Group: g.ID}).ID
	}
	e.waitStatus(demo, last, mockcn.StatusError)
}

func TestConcurrentCreatesKeepAntiAffinity(t *testing.T) {
	e := start(t, func(c *mockcn.Config) { c.AZs = []string{"az1"}; c.CNsPerAZ = 6 })
	demo, admin := e.compute("demo"), e.compute("admin")
	g := e.group(demo, "par", "anti-affinity")
	ids := make(chan string, 8)
	errc := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			s, err := servers.Create(e.ctx, demo, servers.CreateOpts{Name: "p", FlavorRef: "1", ImageRef: "i"}, servers.SchedulerHintOpts{Group: g.ID}).Extract()
			if err != nil {
				errc <- err
				return
			}
			ids <- s.ID
		}()
	}
	hosts := map[string]bool{}
	errored := 0
	for i := 0; i < 8; i++ {
		select {
		case err := <-errc:
			t.Fatal(err)
		case id := <-ids:
			s, err := servers.Get(e.ctx, admin, id).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if s.Status == mockcn.StatusError {
				errored++
				continue
			}
			if hosts[s.Host] {
				t.Fatalf("two members on %s", s.Host)
			}
			hosts[s.Host] = true
		}
	}
	if len(hosts) != 6 || errored != 2 {
		t.Fatalf("%d hosts used, %d errors; want 6 and 2", len(hosts), errored)
	}
}
