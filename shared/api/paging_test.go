package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
)

// addTopology writes a topology of owner (a test token) with one component of typ.
func (f *fixture) addTopology(tok, id, name, az, status, typ string, created time.Time) {
	f.t.Helper()
	p := testPrincipals[tok]
	t := model.Topology{ID: id, Name: name, AvailabilityZone: az, Tenant: p.ProjectID, Owner: p.UserID, Status: status,
		Components: []string{id + "-c"}, CreatedAt: created, UpdatedAt: created}
	c := model.Component{ID: id + "-c", TopologyID: id, Tenant: p.ProjectID, Name: "c", Type: typ, Version: "1", Size: 1, DependsOn: []string{}}
	tr, _ := db.TopologyRecord(&t)
	cr, _ := db.ComponentRecord(&c)
	if err := f.st.Write(context.Background(), store.Put(tr, store.Absent), store.Put(cr, store.Absent)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) listTopologies(tok string, q url.Values) (int, []string, string) {
	f.t.Helper()
	w := f.do("GET", Prefix+"/topologies?"+q.Encode(), tok, "")
	if w.Code != 200 {
		return w.Code, nil, ""
	}
	var l TopologyList
	if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, t := range l.Topologies {
		names = append(names, t.Name)
	}
	return w.Code, names, l.NextMarker
}

// all pages through a list with limit n.
func (f *fixture) allPages(tok string, q url.Values, n int) []string {
	f.t.Helper()
	q.Set("limit", fmt.Sprint(n))
	var out []string
	for i := 0; i < 100; i++ {
		code, names, next := f.listTopologies(tok, q)
		if code != 200 {
			f.t.Fatalf("page %d: %d", i, code)
		}
		if len(names) > n {
			f.t.Fatalf("page of %d with limit %d", len(names), n)
		}
		out = append(out, names...)
		if next == "" {
			return out
		}
		q.Set("marker", next)
	}
	f.t.Fatal("paging does not end")
	return nil
}

func TestTopologyList(t *testing.T) {
	f := newFixture(t, testRoutes())
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	// demo's, in a scrambled creation order; ties on status and zone.
	f.addTopology("tok-demo", "topo-a", "alpha", "az2", model.StatusActive, "kafka", t0.Add(3*time.Minute))
	f.addTopology("tok-demo", "topo-b", "bravo", "az1", model.StatusFailed, "zookeeper", t0.Add(1*time.Minute))
	f.addTopology("tok-demo", "topo-c", "charlie", "az1", model.StatusActive, "storm", t0.Add(2*time.Minute))
	f.addTopology("tok-demo", "topo-d", "delta", "az2", model.StatusCreating, "zookeeper", t0.Add(4*time.Minute))
	f.addTopology("tok-demo2", "topo-e", "echo", "az1", model.StatusActive, "zookeeper", t0)
	f.addTopology("tok-other", "topo-f", "foxtrot", "az1", model.StatusActive, "kafka", t0)
	// the fixture's t1 (demo, az1, ACTIVE, zookeeper) is created "now": the newest.

	tests := []struct {
		name  string
		tok   string
		query string
		want  []string
	}{
		{"default: by name", "tok-demo", "", []string{"alpha", "bravo", "charlie", "delta", "t1"}},
		{"only one's own", "tok-demo2", "", []string{"echo"}},
		{"admin sees all", "tok-admin", "", []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "t1"}},
		{"by creation", "tok-demo", "sort=created_at", []string{"bravo", "charlie", "alpha", "delta", "t1"}},
		{"newest first", "tok-demo", "sort=-created_at", []string{"t1", "delta", "alpha", "charlie", "bravo"}},
		{"by status, ties by id", "tok-demo", "sort=status", []string{"t1", "alpha", "charlie", "delta", "bravo"}},
		{"by zone", "tok-demo", "sort=availability_zone", []string{"bravo", "charlie", "t1", "alpha", "delta"}},
		{"status filter", "tok-demo", "status=ACTIVE", []string{"alpha", "charlie", "t1"}},
		{"statuses", "tok-demo", "status=FAILED,CREATING", []string{"bravo", "delta"}},
		{"name filter", "tok-demo", "name=charlie", []string{"charlie"}},
		{"zone filter", "tok-demo", "availability_zone=az2", []string{"alpha", "delta"}},
		{"az alias", "tok-demo", "az=az2", []string{"alpha", "delta"}},
		{"component type", "tok-demo", "component_type=zookeeper", []string{"bravo", "delta", "t1"}},
		{"component types and zone", "tok-admin", "component_type=kafka,storm&availability_zone=az1", []string{"charlie", "foxtrot"}},
		{"name of another's", "tok-demo", "name=echo", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			for _, n := range []int{1, 2, 1000} {
				got := f.allPages(tc.tok, url.Values(cloneValues(q)), n)
				if !slices.Equal(got, tc.want) {
					t.Errorf("limit %d: got %v, want %v", n, got, tc.want)
				}
			}
		})
	}

	bad := []struct{ query, field string }{
		{"limit=0", "limit"}, {"limit=1001", "limit"}, {"limit=x", "limit"},
		{"sort=owner", "sort"}, {"status=SLEEPING", "status"}, {"marker=!!!", "marker"}, {"marker=e30", "marker"},
	}
	for _, b := range bad {
		w := f.do("GET", Prefix+"/topologies?"+b.query, "tok-demo", "")
		if w.Code != 400 || errorOf(t, w).Field != b.field {
			t.Errorf("%s: %d %s, want 400 naming %s", b.query, w.Code, w.Body, b.field)
		}
	}
	// A marker belongs to its sort.
	_, _, next := f.listTopologies("tok-demo", url.Values{"limit": {"1"}, "sort": {"name"}})
	w := f.do("GET", Prefix+"/topologies?sort=-name&marker="+next, "tok-demo", "")
	if w.Code != 400 || errorOf(t, w).Field != "marker" {
		t.Errorf("marker of another sort: %d, want 400", w.Code)
	}
}

// TestPagingStable: items created or deleted between pages neither repeat nor skip the
// items that were there all along.
func TestPagingStable(t *testing.T) {
	f := newFixture(t, testRoutes())
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 6; i++ {
		f.addTopology("tok-other", fmt.Sprintf("topo-s%d", i), fmt.Sprintf("n%d", i), "az1", model.StatusActive, "kafka", t0.Add(time.Duration(i)*time.Minute))
	}
	q := url.Values{"limit": {"2"}, "sort": {"created_at"}}
	_, first, next := f.listTopologies("tok-other", q)
	// Meanwhile: one earlier than the marker appears, one of the first page goes.
	f.addTopology("tok-other", "topo-early", "early", "az1", model.StatusActive, "kafka", t0.Add(-time.Hour))
	if err := f.st.Write(context.Background(), store.Del(db.KindTopology, "topo-s0", store.Any, 0)); err != nil {
		t.Fatal(err)
	}
	q.Set("marker", next)
	rest := f.allPages("tok-other", q, 2)
	if got := append(first, rest...); !slices.Equal(got, []string{"n0", "n1", "n2", "n3", "n4", "n5"}) {
		t.Errorf("pages: %v", got)
	}
}

func TestActionList(t *testing.T) {
	f := newFixture(t, testRoutes())
	ctx := context.Background()
	t0 := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(a model.Action) {
		r, _ := db.ActionRecord(&a)
		if err := f.st.Write(ctx, store.Put(r, store.Absent)); err != nil {
			t.Fatal(err)
		}
	}
	demo, admin := testPrincipals["tok-demo"], testPrincipals["tok-admin"]
	add(model.Action{ID: "act-2", Kind: "delete_topology", Tenant: demo.ProjectID, User: admin.UserID, TopologyID: "topo-1", Status: model.ActionRunning, CreatedAt: t0.Add(time.Minute)})
	add(model.Action{ID: "act-3", Kind: "flexup", Tenant: demo.ProjectID, User: testPrincipals["tok-demo2"].UserID, Status: model.ActionFailed, CreatedAt: t0.Add(2 * time.Minute)})
	ids := func(tok, query string) (int, []string) {
		w := f.do("GET", Prefix+"/actions?"+query, tok, "")
		var l ActionList
		_ = json.Unmarshal(w.Body.Bytes(), &l)
		var out []string
		for _, a := range l.Actions {
			if a.Input != nil {
				t.Errorf("action %s shows its input", a.ID)
			}
			out = append(out, a.ID)
		}
		return w.Code, out
	}
	tests := []struct {
		name, tok, query string
		status           int
		want             []string
	}{
		// act-1 was created "now" by the fixture: the newest.
		{"demo: own topology's, also the admin's action on it", "tok-demo", "", 200, []string{"act-2", "act-1"}},
		{"demo2: its own action only", "tok-demo2", "", 200, []string{"act-3"}},
		{"other: none", "tok-other", "", 200, nil},
		{"admin: all", "tok-admin", "sort=-created_at", 200, []string{"act-1", "act-3", "act-2"}},
		{"by topology", "tok-demo", "topology_id=topo-1&sort=kind", 200, []string{"act-1", "act-2"}},
		{"another's topology", "tok-demo2", "topology_id=topo-1", 404, nil},
		{"status filter", "tok-admin", "status=FAILED,RUNNING", 200, []string{"act-2", "act-3"}},
		{"kind filter", "tok-admin", "kind=flexup", 200, []string{"act-3"}},
		{"bad status", "tok-admin", "status=DONE", 400, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, got := ids(tc.tok, tc.query)
			if code != tc.status || !slices.Equal(got, tc.want) {
				t.Errorf("got %d %v, want %d %v", code, got, tc.status, tc.want)
			}
		})
	}
}

func cloneValues(v url.Values) map[string][]string {
	out := map[string][]string{}
	for k, x := range v {
		out[k] = slices.Clone(x)
	}
	return out
}
