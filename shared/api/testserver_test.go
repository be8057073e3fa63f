package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straas/straas/shared/asl/asltest"
	"github.com/straas/straas/shared/auth"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/cloud"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/jobs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/workflow"
)

// The principals of the unit tests, by token.
var testPrincipals = map[string]auth.Principal{
	"tok-admin": {UserID: "u-admin", UserName: "admin", ProjectID: "p-admin", ProjectName: "admin", Admin: true},
	"tok-demo":  {UserID: "u-demo", UserName: "demo", ProjectID: "p-demo", ProjectName: "demo"},
	"tok-demo2": {UserID: "u-demo2", UserName: "demo2", ProjectID: "p-demo", ProjectName: "demo"},
	"tok-other": {UserID: "u-other", UserName: "other", ProjectID: "p-other", ProjectName: "other"},
}

// staticAuth validates the test tokens (a fake of Keystone for pure-logic tests; the
// Keystone validator has its own tests against the mock Keystone).
type staticAuth struct{}

func (staticAuth) Validate(_ context.Context, tok string) (auth.Principal, error) {
	if p, ok := testPrincipals[tok]; ok {
		p.ExpiresAt = time.Now().Add(time.Hour)
		return p, nil
	}
	return auth.Principal{}, errs.E(errs.Unauthenticated, "", "token is not valid")
}

// fakeWorkflow records starts; executions never run.
type fakeWorkflow struct {
	mu     sync.Mutex
	starts []string
}

func (f *fakeWorkflow) Start(_ context.Context, m, name string, _ []byte) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, m+"/"+name)
	return "exec-" + name, nil
}
func (f *fakeWorkflow) Describe(context.Context, string) (workflow.Execution, error) {
	return workflow.Execution{}, errs.NotFoundf("no execution")
}
func (f *fakeWorkflow) Stop(context.Context, string, string, string) error            { return nil }
func (f *fakeWorkflow) SendTaskSuccess(context.Context, string, []byte) error         { return nil }
func (f *fakeWorkflow) SendTaskFailure(context.Context, string, string, string) error { return nil }
func (f *fakeWorkflow) SendTaskHeartbeat(context.Context, string) error               { return nil }
func (f *fakeWorkflow) started() int                                                  { f.mu.Lock(); defer f.mu.Unlock(); return len(f.starts) }
func (f *fakeWorkflow) names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.starts...)
}
func (staticCatalog) Zones(context.Context) ([]string, error) { return []string{"az1", "az2"}, nil }
func (staticCatalog) Flavors(context.Context, string) ([]cloud.Flavor, error) {
	return testFlavors, nil
}
func (staticCatalog) ComponentTypes(context.Context) ([]model.ComponentType, error) {
	return testTypes, nil
}

type staticCatalog struct{}

var testFlavors = []cloud.Flavor{{ID: "1", Name: "m1.small", VCPUs: 1, RAM: 2048, Disk: 20}, {ID: "2", Name: "m1.large", VCPUs: 4, RAM: 8192, Disk: 80}}

var testTypes = []model.ComponentType{
	{Type: "zookeeper", Versions: []string{"3.4.6"}, Roles: []string{"zookeeper"}, DefaultFlavor: "m1.small"},
	{Type: "kafka", Versions: []string{"0.10.2.1"}, Roles: []string{"kafka"}, DefaultFlavor: "m1.small"},
	{Type: "storm", Versions: []string{"1.0.2"}, Roles: []string{"nimbus", "supervisor"}, DefaultFlavor: "m1.small"},
}

// fixture is a Server on an in-memory store holding one topology of demo's (with a
// component, a node and its creation action).
type fixture struct {
	t      testing.TB
	srv    *Server
	h      http.Handler
	st     *asltest.MemStore
	wf     *fakeWorkflow
	topo   model.Topology
	comp   model.Component
	node   model.Node
	action model.Action
}

func newFixture(t testing.TB, routes []Route, opts ...func(*Server)) *fixture {
	t.Helper()
	st := asltest.NewMemStore()
	d := db.New(st, nil)
	wf := &fakeWorkflow{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &Server{DB: d, Launcher: &jobs.Launcher{DB: d, Workflow: wf, Log: log}, Workflow: wf,
		Batches: &batch.Service{DB: d, Workflow: wf, Log: log}, Auth: staticAuth{}, Catalog: staticCatalog{}, Log: log}
	for _, o := range opts {
		o(s)
	}
	f := &fixture{t: t, srv: s, st: st, wf: wf}
	f.h = s.handler(routes)
	f.seed(d)
	return f
}

// seed writes demo's topology directly: the fixture must not depend on the routes under test.
func (f *fixture) seed(d *db.DB) {
	now := d.Now()
	owner := testPrincipals["tok-demo"]
	f.topo = model.Topology{ID: "topo-1", Name: "t1", AvailabilityZone: "az1", Tenant: owner.ProjectID, Owner: owner.UserID,
		OwnerName: owner.UserName, Status: model.StatusActive, ConfigBranch: "t1@az1", Components: []string{"comp-1"}, CreatedAt: now, UpdatedAt: now}
	f.comp = model.Component{ID: "comp-1", TopologyID: "topo-1", Tenant: owner.ProjectID, Name: "zk", Type: "zookeeper", Version: "3.4.6",
		Size: 1, Flavor: "m1.small", DependsOn: []string{}, Status: model.StatusActive, CreatedAt: now, UpdatedAt: now}
	f.node = model.Node{ID: "node-1", Name: "t1-zk-1", TopologyID: "topo-1", ComponentID: "comp-1", Tenant: owner.ProjectID, Role: "zookeeper",
		Index: 1, Status: model.NodeActive, CreatedAt: now, UpdatedAt: now}
	f.action = model.Action{ID: "act-1", Kind: "create_topology", Tenant: owner.ProjectID, User: owner.UserID, TopologyID: "topo-1",
		Status: model.ActionSucceeded, Machine: "creation", CreatedAt: now}
	tr, _ := db.TopologyRecord(&f.topo)
	cr, _ := db.ComponentRecord(&f.comp)
	nr, _ := db.NodeRecord(&f.node)
	ar, _ := db.ActionRecord(&f.action)
	if err := d.S.Write(context.Background(), store.Put(tr, store.Absent), store.Put(db.NameClaimRecord(&f.topo), store.Absent),
		store.Put(cr, store.Absent), store.Put(nr, store.Absent), store.Put(ar, store.Absent)); err != nil {
		f.t.Fatal(err)
	}
}

// do sends a request; hdr holds extra headers.
func (f *fixture) do(method, path, token, body string, hdr ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	if token != "" {
		r.Header.Set("X-Auth-Token", token)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// errorOf decodes an error answer.
func errorOf(t testing.TB, w *httptest.ResponseRecorder) ErrorBody {
	t.Helper()
	var e Error
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code != w.Code {
		t.Fatalf("answer %d is not the error schema: %s", w.Code, w.Body)
	}
	return e.Error
}

func putAbsent(r store.Record) store.Op { return store.Put(r, store.Absent) }
