package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/model"
)

// testRoutes are the real routes plus one of each kind the real table may not have yet.
func testRoutes(extra ...Route) []Route {
	ok := func(s *Server, w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, Health{Status: "ok"})
		return nil
	}
	accepted := func(s *Server, w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusAccepted, ActionAccepted{Action: actionRef("act-new")})
		return nil
	}
	rs := append(Routes(),
		Route{Method: "GET", Pattern: "/t/admin", Admin: true, Handler: ok, Summary: "admin only", Response: Health{}},
		Route{Method: "POST", Pattern: "/t/components/{cid}", Scope: Scope{Param: "cid", Kind: ScopeComponent}, Handler: accepted,
			Summary: "component op", Status: 202, Response: ActionAccepted{}},
		Route{Method: "GET", Pattern: "/t/nodes/{nid}", Scope: Scope{Param: "nid", Kind: ScopeNode}, Handler: ok, Summary: "node", Response: Health{}},
		Route{Method: "GET", Pattern: "/t/tree/{ref}/{path...}", Scope: Scope{Param: "ref", Kind: ScopeBranch}, Handler: ok, Summary: "config",
			Params: []Param{{Name: "path", Description: "file"}}, Response: Health{}},
	)
	return append(rs, extra...)
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t, testRoutes())
	tests := []struct {
		name   string
		hdr    []string
		status int
	}{
		{"no token", nil, 401},
		{"unknown token", []string{"X-Auth-Token", "nope"}, 401},
		{"X-Auth-Token", []string{"X-Auth-Token", "tok-demo"}, 200},
		{"legacy token header", []string{"token", "tok-demo"}, 200},
		{"X-Auth-Token wins over token", []string{"X-Auth-Token", "nope", "token", "tok-demo"}, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := f.do("GET", Prefix+"/topologies", "", "", tc.hdr...)
			if w.Code != tc.status {
				t.Fatalf("got %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status == 401 {
				errorOf(t, w)
				if w.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			}
		})
	}
	// Public routes need nothing, and ignore a bad token.
	for _, path := range []string{"/healthz", "/straas/openapi.json"} {
		if w := f.do("GET", path, "garbage", ""); w.Code != 200 {
			t.Errorf("GET %s: %d, want 200", path, w.Code)
		}
	}
}

// TestTenancy: who sees what, through every scope kind; hidden is exactly like absent.
func TestTenancy(t *testing.T) {
	f := newFixture(t, testRoutes())
	visible := map[string]bool{"tok-admin": true, "tok-demo": true, "tok-demo2": false, "tok-other": false}
	paths := []string{
		Prefix + "/topologies/topo-1",
		Prefix + "/actions/act-1",
		"/t/nodes/node-1",
		"/t/tree/t1@az1/app/zookeeper/3.4.6/user.json",
		"/t/tree/t1@az1&v1/app",
	}
	for _, path := range paths {
		for tok, see := range visible {
			w := f.do("GET", path, tok, "")
			want := 404
			if see {
				want = 200
			}
			if w.Code != want {
				t.Errorf("%s GET %s: %d, want %d: %s", tok, path, w.Code, want, w.Body)
			}
		}
	}
	// Absent and hidden answer alike (the id aside).
	hidden := errorOf(t, f.do("GET", Prefix+"/topologies/topo-1", "tok-other", ""))
	absent := errorOf(t, f.do("GET", Prefix+"/topologies/topo-9", "tok-other", ""))
	if strings.ReplaceAll(hidden.Message, "topo-1", "X") != strings.ReplaceAll(absent.Message, "topo-9", "X") {
		t.Errorf("hidden %q and absent %q differ", hidden.Message, absent.Message)
	}
	// An admin branch is no topology's: the handler decides.
	if w := f.do("GET", "/t/tree/master/service", "tok-other", ""); w.Code != 200 {
		t.Errorf("master branch: %d, want 200 (left to the handler)", w.Code)
	}
	// Mutating through a component: same rule, before the handler.
	for tok, see := range visible {
		want := 404
		if see {
			want = 202
		}
		if w := f.do("POST", "/t/components/comp-1", tok, ""); w.Code != want {
			t.Errorf("%s POST component: %d, want %d", tok, w.Code, want)
		}
	}
	// Admin-only routes.
	for tok, want := range map[string]int{"tok-admin": 200, "tok-demo": 403, "tok-other": 403} {
		if w := f.do("GET", "/t/admin", tok, ""); w.Code != want {
			t.Errorf("%s GET /t/admin: %d, want %d", tok, w.Code, want)
		}
	}
}

// TestSystemActionVisibility: an action without a user (started by the checker) on
// demo's topology is demo's, not demo2's.
func TestSystemActionVisibility(t *testing.T) {
	f := newFixture(t, testRoutes())
	a := model.Action{ID: "act-sys", Kind: "heal", Tenant: f.topo.Tenant, TopologyID: f.topo.ID, Status: model.ActionRunning, CreatedAt: f.srv.DB.Now()}
	r, _ := db.ActionRecord(&a)
	if err := f.st.Write(context.Background(), putAbsent(r)); err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]int{"tok-demo": 200, "tok-demo2": 404, "tok-admin": 200} {
		if w := f.do("GET", Prefix+"/actions/act-sys", tok, ""); w.Code != want {
			t.Errorf("%s: %d, want %d", tok, w.Code, want)
		}
	}
}

func TestETagIfMatch(t *testing.T) {
	f := newFixture(t, testRoutes())
	w := f.do("GET", Prefix+"/topologies/topo-1", "tok-demo", "")
	tag := w.Header().Get("ETag")
	if w.Code != 200 || !strings.HasPrefix(tag, `"`) || !strings.HasSuffix(tag, `"`) || len(tag) < 10 {
		t.Fatalf("GET: %d, ETag %q; want 200 with a strong ETag", w.Code, tag)
	}
	if again := f.do("GET", Prefix+"/topologies/topo-1", "tok-admin", "").Header().Get("ETag"); again != tag {
		t.Errorf("ETag changed without a write: %s then %s", tag, again)
	}
	// A write to a component changes the topology's ETag.
	if _, err := f.srv.DB.UpdateComponent(context.Background(), "comp-1", func(c *model.Component) error { c.Size = 3; return nil }); err != nil {
		t.Fatal(err)
	}
	fresh := f.do("GET", Prefix+"/topologies/topo-1", "tok-demo", "").Header().Get("ETag")
	if fresh == tag {
		t.Fatal("ETag unchanged after a component changed")
	}
	tests := []struct {
		name    string
		ifMatch string
		status  int
	}{
		{"stale", tag, 412},
		{"weak never matches", "W/" + fresh, 412},
		{"garbage", "xyz", 412},
		{"one of a list", `"nope", ` + fresh, 202},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := f
			if tc.status == 202 {
				f = newFixture(t, testRoutes()) // the same seed: the same ETag
				if _, err := f.srv.DB.UpdateComponent(context.Background(), "comp-1", func(c *model.Component) error { c.Size = 3; return nil }); err != nil {
					t.Fatal(err)
				}
				cur := f.do("GET", Prefix+"/topologies/topo-1", "tok-demo", "").Header().Get("ETag")
				tc.ifMatch = strings.Replace(tc.ifMatch, fresh, cur, 1)
			}
			w := f.do("DELETE", Prefix+"/topologies/topo-1", "tok-demo", "", "If-Match", tc.ifMatch)
			if w.Code != tc.status {
				t.Fatalf("got %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.status == 412 && errorOf(t, w).Field != "If-Match" {
				t.Errorf("412 without field If-Match: %s", w.Body)
			}
		})
	}
	// A GET may be conditional too; sub-resources compare with their scope's ETag.
	if w := f.do("GET", Prefix+"/topologies/topo-1", "tok-demo", "", "If-Match", tag); w.Code != 412 {
		t.Errorf("GET with a stale If-Match: %d, want 412", w.Code)
	}
	if w := f.do("GET", Prefix+"/topologies/topo-1", "tok-demo", "", "If-Match", fresh); w.Code != 200 {
		t.Errorf("GET with the current If-Match: %d, want 200", w.Code)
	}
	// Without If-Match, no precondition; a hidden topology is 404 before any precondition.
	if w := f.do("DELETE", Prefix+"/topologies/topo-1", "tok-other", "", "If-Match", tag); w.Code != 404 {
		t.Errorf("other tenant with If-Match: %d, want 404", w.Code)
	}
	if w := f.do("DELETE", Prefix+"/topologies/topo-1", "tok-demo", ""); w.Code != 202 {
		t.Errorf("delete without If-Match: %d, want 202: %s", w.Code, w.Body)
	}
}

const zkBody = `{"name":"%s","availability_zone":"az1","components":[{"name":"zk","type":"zookeeper","version":"3.4.6","size":1}]}`

func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t, testRoutes())
	body := fmt.Sprintf(zkBody, "idem-1")
	first := f.do("POST", Prefix+"/topologies", "tok-demo", body, IdempotencyHeader, "k-1")
	if first.Code != 202 || first.Header().Get(ReplayedHeader) != "" {
		t.Fatalf("first: %d %s", first.Code, first.Body)
	}
	// The same request again, even spaced differently: the first answer, no second topology.
	spaced := strings.ReplaceAll(body, ",", " , ")
	again := f.do("POST", Prefix+"/topologies", "tok-demo", spaced, IdempotencyHeader, "k-1")
	if again.Code != 202 || again.Body.String() != first.Body.String() || again.Header().Get(ReplayedHeader) != "true" ||
		again.Header().Get("Location") != first.Header().Get("Location") {
		t.Fatalf("retry: %d %q replayed=%q; want the first answer replayed", again.Code, again.Body, again.Header().Get(ReplayedHeader))
	}
	if n := f.wf.started(); n != 1 {
		t.Errorf("%d workflows started, want 1", n)
	}
	tests := []struct {
		name, tok, key, body string
		status               int
		field                string
	}{
		{"same key, other body", "tok-demo", "k-1", fmt.Sprintf(zkBody, "idem-2"), 422, IdempotencyHeader},
		{"same key, another user", "tok-demo2", "k-1", fmt.Sprintf(zkBody, "idem-3"), 202, ""},
		{"same key, another tenant", "tok-other", "k-1", fmt.Sprintf(zkBody, "idem-4"), 202, ""},
		{"bad key", "tok-demo", "k\x01", fmt.Sprintf(zkBody, "idem-5"), 400, IdempotencyHeader},
		{"too long key", "tok-demo", strings.Repeat("k", 256), fmt.Sprintf(zkBody, "idem-5"), 400, IdempotencyHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := f.do("POST", Prefix+"/topologies", tc.tok, tc.body, IdempotencyHeader, tc.key)
			if w.Code != tc.status {
				t.Fatalf("got %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.field != "" && errorOf(t, w).Field != tc.field {
				t.Errorf("field %q, want %q", errorOf(t, w).Field, tc.field)
			}
		})
	}
	// A failure is not kept: after a 409 (name taken) the same key may try again.
	dup := fmt.Sprintf(zkBody, "idem-1")
	if w := f.do("POST", Prefix+"/topologies", "tok-demo", dup, IdempotencyHeader, "k-2"); w.Code != 409 {
		t.Fatalf("duplicate name: %d, want 409", w.Code)
	}
	if w := f.do("POST", Prefix+"/topologies", "tok-demo", dup, IdempotencyHeader, "k-2"); w.Code != 409 || w.Header().Get(ReplayedHeader) != "" {
		t.Errorf("retry of a failure: %d replayed=%q, want a fresh 409", w.Code, w.Header().Get(ReplayedHeader))
	}
}

// TestIdempotencyInFlight: a retry while the first is still running is a 409, and only
// one runs.
func TestIdempotencyInFlight(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var runs sync.WaitGroup
	slow := Route{Method: "POST", Pattern: "/t/slow", Summary: "slow", Status: 201, Response: Health{},
		Handler: func(s *Server, w http.ResponseWriter, r *http.Request) error {
			close(entered)
			<-release
			writeJSON(w, http.StatusCreated, Health{Status: "made"})
			return nil
		}}
	f := newFixture(t, testRoutes(slow))
	runs.Add(1)
	go func() {
		defer runs.Done()
		if w := f.do("POST", "/t/slow", "tok-demo", "", IdempotencyHeader, "k"); w.Code != 201 {
			t.Errorf("first: %d", w.Code)
		}
	}()
	<-entered
	w := f.do("POST", "/t/slow", "tok-demo", "", IdempotencyHeader, "k")
	if w.Code != 409 || w.Header().Get("Retry-After") == "" {
		t.Errorf("concurrent retry: %d (Retry-After %q), want 409 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	close(release)
	runs.Wait()
	if w := f.do("POST", "/t/slow", "tok-demo", "", IdempotencyHeader, "k"); w.Code != 201 || w.Header().Get(ReplayedHeader) != "true" {
		t.Errorf("retry after: %d replayed=%q", w.Code, w.Header().Get(ReplayedHeader))
	}
}

func TestRateLimit(t *testing.T) {
	clk := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	f := newFixture(t, testRoutes(), func(s *Server) {
		s.DB.Clock = clk
		s.RateLimit = RateLimit{PerSecond: 0.5, Burst: 2}
	})
	get := func(tok string) (int, string) {
		w := f.do("GET", Prefix+"/topologies", tok, "")
		return w.Code, w.Header().Get("Retry-After")
	}
	for i := 0; i < 2; i++ {
		if c, _ := get("tok-demo"); c != 200 {
			t.Fatalf("request %d: %d", i, c)
		}
	}
	c, ra := get("tok-demo")
	if c != 429 || ra != "2" {
		t.Fatalf("third: %d Retry-After %q, want 429 with Retry-After 2", c, ra)
	}
	// The bucket is the project's: demo2 shares it, other does not.
	if c, _ := get("tok-demo2"); c != 429 {
		t.Errorf("demo2: %d, want 429", c)
	}
	if c, _ := get("tok-other"); c != 200 {
		t.Errorf("other tenant: %d, want 200", c)
	}
	// Public routes and unauthenticated calls are not counted against a tenant.
	if w := f.do("GET", "/healthz", "", ""); w.Code != 200 {
		t.Errorf("healthz: %d", w.Code)
	}
	clk.Advance(2 * time.Second)
	if c, _ := get("tok-demo"); c != 200 {
		t.Errorf("after Retry-After: %d, want 200", c)
	}
	// Off by default.
	g := newFixture(t, testRoutes())
	for i := 0; i < 50; i++ {
		if w := g.do("GET", Prefix+"/topologies", "tok-demo", ""); w.Code != 200 {
			t.Fatalf("no limit configured, request %d: %d", i, w.Code)
		}
	}
}

// TestAudit: every mutating call of a known caller is an event with who, what, when and
// from where; reads are not; nothing secret is in it.
func TestAudit(t *testing.T) {
	f := newFixture(t, testRoutes())
	ctx := context.Background()
	if w := f.do("GET", Prefix+"/topologies/topo-1", "tok-demo", ""); w.Code != 200 {
		t.Fatal(w.Code)
	}
	created := f.do("POST", Prefix+"/topologies", "tok-demo", fmt.Sprintf(zkBody, "audited"), "X-Request-Id", "req-abc")
	if created.Code != 202 {
		t.Fatal(created.Code, created.Body)
	}
	var ans TopologyCreated
	_ = json.Unmarshal(created.Body.Bytes(), &ans)
	if w := f.do("DELETE", Prefix+"/topologies/topo-1", "tok-other", ""); w.Code != 404 {
		t.Fatal(w.Code)
	}
	if w := f.do("DELETE", Prefix+"/topologies/topo-1", "", ""); w.Code != 401 {
		t.Fatal(w.Code)
	}

	demo, _, err := f.srv.DB.Events(ctx, db.EventFilter{Tenant: "p-demo", Type: AuditEvent})
	if err != nil {
		t.Fatal(err)
	}
	if len(demo) != 1 {
		t.Fatalf("demo's audit events: %+v, want the creation only", demo)
	}
	e := demo[0]
	if e.User != "demo" || e.Source != "192.0.2.1" || e.At.IsZero() || e.TopologyID != ans.Topology.ID || e.ActionID != ans.Action.ID ||
		e.Data["method"] != "POST" || e.Data["route"] != Prefix+"/topologies" || e.Data["request_id"] != "req-abc" || e.Level != model.LevelInfo {
		t.Errorf("creation event: %+v", e)
	}
	other, _, _ := f.srv.DB.Events(ctx, db.EventFilter{Tenant: "p-other", Type: AuditEvent})
	if len(other) != 1 || other[0].TopologyID != "" || other[0].Level != model.LevelWarning || !strings.Contains(other[0].Message, "404") {
		t.Errorf("denied call's event: %+v, want one warning without the topology", other)
	}
	byTopo, _, _ := f.srv.DB.Events(ctx, db.EventFilter{TopologyID: "topo-1"})
	for _, e := range byTopo {
		if e.Type == AuditEvent {
			t.Errorf("a denied probe landed in the topology's timeline: %+v", e)
		}
	}
	for _, e := range append(demo, other...) {
		b, _ := json.Marshal(e)
		for _, secret := range []string{"tok-demo", "tok-other"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("event holds %q: %s", secret, b)
			}
		}
	}
}

func TestBodyValidation(t *testing.T) {
	f := newFixture(t, testRoutes())
	tests := []struct {
		name, body, ctype string
		status            int
		field             string
	}{
		{"unknown field", `{"name":"x","availability_zone":"az1","colour":1,"components":[{"name":"zk","type":"zookeeper","version":"3.4.6","size":1}]}`, "", 400, "colour"},
		{"wrong type", `{"name":7,"availability_zone":"az1","components":[{"name":"zk","type":"zookeeper","version":"3.4.6","size":1}]}`, "", 400, "name"},
		{"not json", `{"name":`, "", 400, "body"},
		{"empty", ``, "", 400, "body"},
		{"content type", `{}`, "text/plain", 400, "Content-Type"},
		{"too large", `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, "", 413, "body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hdr := []string{}
			if tc.ctype != "" {
				hdr = []string{"Content-Type", tc.ctype}
			}
			w := f.do("POST", Prefix+"/topologies", "tok-demo", tc.body, hdr...)
			if w.Code != tc.status || errorOf(t, w).Field != tc.field {
				t.Errorf("got %d field %q (%s), want %d field %q", w.Code, errorOf(t, w).Field, w.Body, tc.status, tc.field)
			}
		})
	}
	if n := f.wf.started(); n != 0 {
		t.Errorf("%d workflows started by bad requests", n)
	}
}

func TestUnknownRoutes(t *testing.T) {
	f := newFixture(t, testRoutes())
	w := f.do("PATCH", Prefix+"/topologies", "tok-demo", "")
	if w.Code != 405 || w.Header().Get("Allow") != "GET, POST" {
		t.Errorf("PATCH collection: %d Allow %q, want 405 with Allow: GET, POST", w.Code, w.Header().Get("Allow"))
	}
	errorOf(t, w)
	w = f.do("GET", "/straas/v1.0/nowhere", "", "")
	if w.Code != 404 {
		t.Errorf("unknown path: %d, want 404", w.Code)
	}
	errorOf(t, w)
}

func TestRequestID(t *testing.T) {
	f := newFixture(t, testRoutes())
	if got := f.do("GET", "/healthz", "", "", "X-Request-Id", "abc-1").Header().Get(RequestIDHeader); got != "abc-1" {
		t.Errorf("echoed request id %q, want abc-1", got)
	}
	if got := f.do("GET", "/healthz", "", "", "X-Request-Id", "bad id\x01").Header().Get(RequestIDHeader); got == "" || strings.Contains(got, "bad") {
		t.Errorf("request id %q, want a fresh one", got)
	}
}

// TestIdempotencyAfterPanic: a handler that crashed did nothing a retry could repeat,
// so the key is free again at once.
func TestIdempotencyAfterPanic(t *testing.T) {
	runs := 0
	flaky := Route{Method: "POST", Pattern: "/t/flaky", Summary: "flaky", Status: 201, Response: Health{},
		Handler: func(s *Server, w http.ResponseWriter, r *http.Request) error {
			runs++
			if runs == 1 {
				panic("first run crashes")
			}
			writeJSON(w, http.StatusCreated, Health{Status: "made"})
			return nil
		}}
	f := newFixture(t, testRoutes(flaky))
	if w := f.do("POST", "/t/flaky", "tok-demo", "", IdempotencyHeader, "k"); w.Code != 500 {
		t.Fatalf("crashing run: %d, want 500", w.Code)
	}
	if w := f.do("POST", "/t/flaky", "tok-demo", "", IdempotencyHeader, "k"); w.Code != 201 || w.Header().Get(ReplayedHeader) != "" {
		t.Fatalf("retry: %d replayed=%q, want a fresh 201", w.Code, w.Header().Get(ReplayedHeader))
	}
	if runs != 2 {
		t.Errorf("%d runs, want 2", runs)
	}
}
