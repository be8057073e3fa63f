package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/test/harness"
)

// TestBadInput: every malformed or impossible request is a 4xx naming the problem, and
// nothing is created by it.
func TestBadInput(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	ctx := context.Background()
	zk := `{"name":"zk","type":"zookeeper","version":"3.4.6","size":1}`
	body := func(comps ...string) string {
		return `{"name":"bad-1","availability_zone":"az1","components":[` + strings.Join(comps, ",") + `]}`
	}
	tests := []struct {
		name, body string
		status     int
		field      string
	}{
		{"malformed json", `{"name":`, 400, "body"},
		{"unknown field", `{"name":"bad-1","availability_zone":"az1","colour":"red","components":[` + zk + `]}`, 400, "colour"},
		{"unknown component field", body(`{"name":"zk","type":"zookeeper","version":"3.4.6","size":1,"sise":2}`), 400, "components[0].sise"},
		{"missing name", `{"availability_zone":"az1","components":[` + zk + `]}`, 400, "name"},
		{"missing az", `{"name":"bad-1","components":[` + zk + `]}`, 400, "availability_zone"},
		{"missing components", `{"name":"bad-1","availability_zone":"az1"}`, 400, "components"},
		{"unknown az", `{"name":"bad-1","availability_zone":"mars","components":[` + zk + `]}`, 400, "availability_zone"},
		{"duplicate component names", body(zk, zk), 400, "components[1].name"},
		{"unknown dependency", body(zk, `{"name":"k","type":"kafka","version":"0.10.2.1","size":1,"depends_on":"nope"}`), 400, "components[1].depends_on"},
		{"dependency cycle", body(`{"name":"a","type":"kafka","version":"0.10.2.1","size":1,"depends_on":"b"}`, `{"name":"b","type":"kafka","version":"0.10.2.1","size":1,"depends_on":"a"}`), 400, "components[1].depends_on"},
		{"size zero", body(`{"name":"zk","type":"zookeeper","version":"3.4.6","size":0}`), 400, "components[0].size"},
		{"unknown type", body(`{"name":"x","type":"mongodb","version":"4","size":1}`), 400, "components[0].type"},
		{"unknown version", body(`{"name":"zk","type":"zookeeper","version":"9.9.9","size":1}`), 400, "components[0].version"},
		{"unknown flavor", body(`{"name":"zk","type":"zookeeper","version":"3.4.6","size":1,"flavor":"gigantic"}`), 400, "components[0].flavor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := c.CreateTopology(ctx, []byte(tc.body))
			var ce *client.Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a %d", err, tc.status)
			}
			if ce.Status != tc.status || ce.Field != tc.field || ce.Message == "" || ce.Title == "" {
				t.Errorf("got %d field %q (%s), want %d field %q", ce.Status, ce.Field, ce.Message, tc.status, tc.field)
			}
		})
	}

	// Same name and zone twice: 409; the first is unaffected.
	ok := `{"name":"dup-1","availability_zone":"az1","components":[` + zk + `]}`
	first, ref, err := c.CreateTopology(ctx, []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.CreateTopology(ctx, []byte(ok))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusConflict {
		t.Errorf("second create of dup-1: %v, want 409", err)
	}
	// Another tenant cannot take the name in the zone either (names are global per AZ).
	_, _, err = s.Client(t, "other").CreateTopology(ctx, []byte(ok))
	if !errors.As(err, &ce) || ce.Status != http.StatusConflict {
		t.Errorf("other tenant's create of dup-1: %v, want 409", err)
	}
	if a := harness.WaitAction(t, c, ref.ID, 60*time.Second); a.Status != "SUCCEEDED" {
		t.Fatalf("dup-1 creation %s: %+v", a.Status, a.Error)
	}

	// Auth and unknown ids.
	for _, tc := range []struct {
		name   string
		cl     *client.Client
		method string
		path   string
		status int
	}{
		{"no token", client.New(s.APIURL, ""), "GET", "/straas/v1.0/topologies", 401},
		{"bad token", client.New(s.APIURL, "not-a-token"), "GET", "/straas/v1.0/topologies", 401},
		{"no token on create", client.New(s.APIURL, ""), "POST", "/straas/v1.0/topologies", 401},
		{"unknown topology", c, "GET", "/straas/v1.0/topologies/topo-nope", 404},
		{"delete unknown topology", c, "DELETE", "/straas/v1.0/topologies/topo-nope", 404},
		{"unknown action", c, "GET", "/straas/v1.0/actions/act-nope", 404},
		{"unknown component type flavors", c, "GET", "/straas/v1.0/components/mongodb/nova_flavors", 404},
		{"other tenant's topology", s.Client(t, "other"), "GET", "/straas/v1.0/topologies/" + first.ID, 404},
		{"other tenant deletes", s.Client(t, "other"), "DELETE", "/straas/v1.0/topologies/" + first.ID, 404},
		{"no route", c, "GET", "/straas/v1.0/nothing-here", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.method == "POST" {
				body = []byte(ok)
			}
			_, err := tc.cl.Do(ctx, tc.method, tc.path, body, nil)
			if !errors.As(err, &ce) || ce.Status != tc.status {
				t.Errorf("got %v, want %d", err, tc.status)
			}
		})
	}

	// Nothing was half-created: one topology (dup-1) and one server.
	list, err := s.Client(t, "admin").Topologies(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "dup-1" {
		t.Errorf("topologies after bad input: %+v, want only dup-1", list)
	}
	servers, err := s.Nova(t).ListServers(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(servers) != 1 {
		t.Errorf("Nova has %d servers, want 1 (dup-1's zookeeper)", len(servers))
	}
}

// TestTenancy: users see their own topologies; the admin project sees all.
func TestTenancy(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	ctx := context.Background()
	demo, other, admin := s.Client(t, "demo"), s.Client(t, "other"), s.Client(t, "admin")
	topo, _, err := demo.CreateTopology(ctx, []byte(`{"name":"mine","availability_zone":"az1","components":[{"name":"zk","type":"zookeeper","version":"3.4.6","size":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	count := func(c *client.Client) int {
		l, err := c.Topologies(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	if n := count(demo); n != 1 {
		t.Errorf("demo sees %d topologies, want 1", n)
	}
	if n := count(other); n != 0 {
		t.Errorf("other sees %d topologies, want 0", n)
	}
	if n := count(admin); n != 1 {
		t.Errorf("admin sees %d topologies, want 1", n)
	}
	if _, err := admin.Topology(ctx, topo.ID); err != nil {
		t.Errorf("admin cannot show demo's topology: %v", err)
	}
	if _, err := demo.Action(ctx, topo.Action); err != nil {
		t.Errorf("demo cannot see its own action: %v", err)
	}
	var ce *client.Error
	if _, err := other.Action(ctx, topo.Action); !errors.As(err, &ce) || ce.Status != 404 {
		t.Errorf("other sees demo's action: %v", err)
	}
}
