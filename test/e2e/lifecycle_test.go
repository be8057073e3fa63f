package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/test/harness"
)

// TestCreateAndDeleteExample creates the zookeeper + kafka + storm example, checks what
// a user sees (nodes, roles, computed configuration, dependency order), deletes it and
// checks it is gone from the API and from Nova.
func TestCreateAndDeleteExample(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	ctx := context.Background()

	topo, act := create(t, c, readExample(t, "zk-kafka-storm.json"), 90*time.Second)
	if act.Status != "SUCCEEDED" {
		t.Fatalf("creation %s: %+v", act.Status, act.Error)
	}
	if topo.Status != "ACTIVE" {
		t.Fatalf("topology status %s, want ACTIVE", topo.Status)
	}

	comps := map[string]client.Component{}
	for _, comp := range topo.Components {
		comps[comp.Name] = comp
		if comp.Status != "ACTIVE" {
			t.Errorf("component %s is %s", comp.Name, comp.Status)
		}
	}
	roles := func(name string) map[string]int {
		m := map[string]int{}
		for _, n := range comps[name].Nodes {
			m[n.Role]++
		}
		return m
	}
	for name, want := range map[string]map[string]int{
		"zk": {"zookeeper": 3}, "kafka": {"kafka": 3}, "strm": {"nimbus": 1, "supervisor": 2},
	} {
		if got := roles(name); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s roles = %v, want %v", name, got, want)
		}
	}

	// Every node: ACTIVE, a server in Nova on a CN, IPs, a heartbeat, its configuration.
	nova := s.Nova(t)
	servers, err := nova.ListServers(ctx, "^"+topo.Name+"-")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]string{}
	for _, sv := range servers {
		byID[sv.ID] = sv.Name
	}
	if len(servers) != 9 {
		t.Errorf("Nova lists %d servers of the topology, want 9", len(servers))
	}
	var zkIPs []string
	for _, n := range comps["zk"].Nodes {
		zkIPs = append(zkIPs, n.IPs...)
	}
	harness.Eventually(t, 10*time.Second, "every node has a heartbeat", func() bool {
		tp, err := c.Topology(ctx, topo.ID)
		if err != nil {
			return false
		}
		for _, comp := range tp.Components {
			for _, n := range comp.Nodes {
				if n.LastHeartbeat == nil {
					return false
				}
			}
		}
		return true
	})
	brokerIDs := map[string]bool{}
	for _, comp := range topo.Components {
		for _, n := range comp.Nodes {
			if n.Status != "ACTIVE" || n.ServerID == "" || n.Hypervisor == "" || len(n.IPs) == 0 {
				t.Errorf("node %s: status %s server %q CN %q IPs %v", n.Name, n.Status, n.ServerID, n.Hypervisor, n.IPs)
			}
			if byID[n.ServerID] != n.Name {
				t.Errorf("node %s: server %s is %q in Nova", n.Name, n.ServerID, byID[n.ServerID])
			}
			if n.Config == nil || n.Config.SitePP == "" || len(n.Config.Sections) == 0 {
				t.Errorf("node %s received no configuration", n.Name)
				continue
			}
			if comp.Name == "kafka" {
				flat := fmt.Sprint(n.Config.Sections)
				for _, ip := range zkIPs {
					if !strings.Contains(flat, ip+":2181") {
						t.Errorf("kafka node %s: zk_list lacks %s:2181: %s", n.Name, ip, flat)
					}
				}
				id := findOption(n.Config.Sections, "broker_id")
				if id == "" || brokerIDs[id] {
					t.Errorf("kafka node %s: broker_id %q missing or duplicated", n.Name, id)
				}
				brokerIDs[id] = true
			}
		}
	}

	// Dependency order: kafka's and storm's pre-config started after zookeeper validated.
	stage := func(comp, name string) client.Stage {
		for _, st := range act.Stages {
			if st.Component == comp && st.Name == name {
				return st
			}
		}
		t.Fatalf("action has no stage %s of %s", name, comp)
		return client.Stage{}
	}
	zkValidated := stage("zk", "validate").FinishedAt
	if zkValidated == nil {
		t.Fatal("zk validate has no end")
	}
	for _, dep := range []string{"kafka", "strm"} {
		if pc := stage(dep, "pre_config"); pc.StartedAt.Before(*zkValidated) {
			t.Errorf("%s pre_config started %s, before zk validate finished %s", dep, pc.StartedAt, *zkValidated)
		}
	}
	for _, st := range act.Stages {
		if st.Status != "SUCCEEDED" {
			t.Errorf("stage %s/%s is %s", st.Component, st.Name, st.Status)
		}
	}

	// Delete: gone from the API and from Nova.
	ref, err := c.DeleteTopology(ctx, topo.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a := harness.WaitAction(t, c, ref.ID, 60*time.Second); a.Status != "SUCCEEDED" {
		t.Fatalf("deletion %s: %+v", a.Status, a.Error)
	}
	_, err = c.Topology(ctx, topo.ID)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusNotFound {
		t.Errorf("GET after delete: %v, want 404", err)
	}
	left, err := nova.ListServers(ctx, "^"+topo.Name+"-")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("Nova still lists %d servers of the deleted topology", len(left))
	}
	list, err := c.Topologies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range list {
		if tp.ID == topo.ID {
			t.Errorf("deleted topology still listed")
		}
	}
}

func findOption(secs map[string]map[string]any, key string) string {
	names := make([]string, 0, len(secs))
	for n := range secs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if v, ok := secs[n][key]; ok {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// TestSeedExample creates seed 000's example body as written (depends_on as a string,
// "enable cname", a zookeeper of one node and storm's nimbus + supervisors).
func TestSeedExample(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "admin")
	topo, act := create(t, c, readExample(t, "seed-example.json"), 90*time.Second)
	if act.Status != "SUCCEEDED" || topo.Status != "ACTIVE" {
		t.Fatalf("seed example: action %s topology %s: %+v", act.Status, topo.Status, act.Error)
	}
	for _, comp := range topo.Components {
		if comp.Name != "strm" {
			continue
		}
		for _, n := range comp.Nodes {
			if n.Role == "nimbus" && n.CName == "" {
				t.Errorf("nimbus node %s has no cname though its submodule enables it", n.Name)
			}
			if n.Role == "supervisor" && n.CName != "" {
				t.Errorf("supervisor node %s has a cname though the component disables it", n.Name)
			}
		}
	}
}
