package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	restapi "github.com/straas/straas/shared/api"
	"github.com/straas/straas/test/harness"
)

// The callers of the matrix.
const (
	asAdmin     = "admin"           // the admin project
	asOwner     = "owner"           // demo, who created the topology
	asPeer      = "same-project"    // demo2: demo's project, not the owner
	asOther     = "other-tenant"    // other
	asNone      = "no-token"        // no X-Auth-Token
	asMalformed = "malformed-token" // not a token at all
	asExpired   = "expired-token"   // demo's, expired
	asRevoked   = "revoked-token"   // demo's, revoked before its first use
)

var acCallers = []string{asAdmin, asOwner, asPeer, asOther, asNone, asMalformed, asExpired, asRevoked}

// acFixture is demo's topology, the resources each scope kind addresses.
type acFixture struct {
	byKind map[restapi.ScopeKind]string
	secret []string // what must not show to those who may not see it
}

// TestAuthMatrix calls every route of the route table (restapi.Routes, the table the
// server is built from: a new route is in the matrix by being declared) as each caller,
// and checks the status against what the route's metadata says:
//
//   - public routes: the same answer for everyone, whatever the token (never 401/403);
//   - anyone without a valid token (none, malformed, expired, revoked): 401;
//   - admin-only routes: 403 for everyone but the admin;
//   - routes addressing demo's topology (Scope): 404 for the same-project user and the
//     other tenant, exactly as for a topology that does not exist; for the admin and the
//     owner the route is reached: they send a stale If-Match, answered 412 after auth
//     and tenancy and before the handler, so that nothing changes;
//   - other routes: reached by every valid caller (a read answers its success status; a
//     write with a JSON schema is sent a body that is not an object: 400), and an
//     unscoped read never shows demo's topology to those who may not see it.
func TestAuthMatrix(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	owner := s.Client(t, "demo")
	fx := acNewFixture(t, s)
	tokens := map[string]string{
		asAdmin:     s.Token(t, "admin", "admin", "admin"),
		asOwner:     owner.Token,
		asPeer:      s.Token(t, "demo2", "demo2", "demo"),
		asOther:     s.Token(t, "other", "other", "other"),
		asMalformed: "not a token; DROP TABLE",
		asExpired:   acExpiredToken(t, s, "demo"),
		asRevoked:   acRevokedToken(t, s, "demo", "demo"),
	}

	// Reads that list things go first, before any denied probe lands in an audit trail:
	// the "shows nothing of demo's" check must see what others' lists hold of demo's
	// own doing, not the probes' own paths.
	routes := restapi.Routes()
	sort.SliceStable(routes, func(i, j int) bool { return listsFirst(routes[i]) && !listsFirst(routes[j]) })
	var table []string
	for _, rt := range routes {
		name := rt.Method + " " + rt.Pattern
		path, err := fx.path(rt)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		row := []string{fmt.Sprintf("%-7s %-60s", rt.Method, rt.Pattern)}
		publicStatus := 0
		for _, who := range acCallers {
			want, check := acExpect(rt, who)
			var hdr []string
			var body []byte
			switch {
			case rt.Scope.Kind != restapi.NoScope:
				hdr = []string{"If-Match", `"matrix-stale"`}
			case rt.Method != http.MethodGet && rt.Request != "":
				body = []byte(`"matrix"`)
			}
			a := acCall(t, rt.Method, s.APIURL+path, tokens[who], body, hdr...)
			row = append(row, fmt.Sprintf("%s=%d", who, a.status))
			if rt.Public {
				if publicStatus == 0 {
					publicStatus = a.status
				} else if a.status != publicStatus {
					t.Errorf("%s as %s: %d, but %d for another caller: a public route must ignore tokens", name, who, a.status, publicStatus)
				}
			}
			if !check(a.status) {
				t.Errorf("%s as %s: %s, want %s", name, who, a, want)
				continue
			}
			if a.status >= 400 {
				if e := a.errorBody(); e.Status != a.status || e.Message == "" {
					t.Errorf("%s as %s: %d is not the error schema: %s", name, who, a.status, a.body)
				}
			}
			if a.status == http.StatusUnauthorized && a.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s as %s: 401 without WWW-Authenticate", name, who)
			}
			if (who == asPeer || who == asOther) && a.status < 300 {
				if leak, ok := acFind(a.body, fx.secret...); ok {
					t.Errorf("%s as %s shows %q of demo's topology: %s", name, who, leak, a.body)
				}
			}
		}
		table = append(table, strings.Join(row, " "))
	}
	sort.Strings(table)
	t.Logf("auth matrix (%d routes):\n%s", len(table), strings.Join(table, "\n"))

	// The legacy header is the same token under another name.
	if a := acCall(t, "GET", s.APIURL+restapi.Prefix+"/topologies/"+fx.byKind[restapi.ScopeTopology], "", nil, "token", tokens[asOwner]); a.status != 200 {
		t.Errorf("legacy token header: %s", a)
	}
}

func listsFirst(rt restapi.Route) bool {
	return rt.Method == http.MethodGet && rt.Scope.Kind == restapi.NoScope && !rt.Public
}

// acExpect says what a caller must get from a route, and a check of the status.
func acExpect(rt restapi.Route, who string) (string, func(int) bool) {
	is := func(code int) (string, func(int) bool) {
		return fmt.Sprint(code), func(got int) bool { return got == code }
	}
	success := rt.Status
	if success == 0 {
		success = http.StatusOK
	}
	if rt.Public {
		// Whoever calls, with whatever token: the route's own answer (a public route
		// addressing something by id may well answer 404 on the fixture).
		if rt.Pattern == "/healthz" || rt.Pattern == "/straas/openapi.json" {
			return is(success)
		}
		return "the route's own answer (not 401/403/405, not 5xx)", func(got int) bool {
			return got != 401 && got != 403 && got != 405 && got < 500
		}
	}
	switch who {
	case asNone, asMalformed, asExpired, asRevoked:
		return is(http.StatusUnauthorized)
	}
	if rt.Admin && who != asAdmin {
		return is(http.StatusForbidden)
	}
	if rt.Scope.Kind != restapi.NoScope {
		if who == asPeer || who == asOther {
			return is(http.StatusNotFound)
		}
		return is(http.StatusPreconditionFailed)
	}
	switch {
	case rt.Method == http.MethodGet:
		return is(success)
	case rt.Request != "":
		return is(http.StatusBadRequest)
	}
	// A write without a schema or a scope is really sent: it must get past auth.
	return "reached (not 401/403/404, not 5xx)", func(got int) bool {
		return got != 401 && got != 403 && got != 404 && got < 500
	}
}

func acNewFixture(t *testing.T, s *harness.Straas) *acFixture {
	t.Helper()
	owner := s.Client(t, "demo")
	body := []byte(`{"name":"matrix-1","availability_zone":"az1","components":[{"name":"zk","type":"zookeeper","version":"3.4.6","size":1}]}`)
	topo, a := create(t, owner, body, 90*time.Second)
	if a.Status != "SUCCEEDED" {
		t.Fatalf("fixture topology: %s %+v", a.Status, a.Error)
	}
	if len(topo.Components) == 0 || len(topo.Components[0].Nodes) == 0 {
		t.Fatalf("fixture topology has no component or node: %+v", topo)
	}
	comp, node := topo.Components[0], topo.Components[0].Nodes[0]
	return &acFixture{
		byKind: map[restapi.ScopeKind]string{
			restapi.ScopeTopology: topo.ID, restapi.ScopeComponent: comp.ID, restapi.ScopeNode: node.ID,
			restapi.ScopeAction: a.ID, restapi.ScopeBranch: topo.ConfigBranch,
		},
		secret: []string{topo.ID, comp.ID, node.ID, a.ID, "matrix-1"},
	}
}

// path fills a route's pattern: the scoped parameter with the fixture's resource,
// others with their declared Example; required query parameters too.
func (fx *acFixture) path(rt restapi.Route) (string, error) {
	examples := map[string]string{}
	for _, p := range rt.Params {
		examples[p.Name] = p.Example
	}
	p := strings.TrimSuffix(rt.Pattern, "{$}")
	for _, name := range restapi.PathParams(rt.Pattern) {
		v := examples[name]
		if name == rt.Scope.Param && rt.Scope.Kind != restapi.NoScope {
			v = fx.byKind[rt.Scope.Kind]
		}
		if v == "" {
			return "", fmt.Errorf("path parameter {%s} has no Example to call the route with", name)
		}
		esc := url.PathEscape(v)
		if strings.Contains(p, "{"+name+"...}") {
			esc = strings.ReplaceAll(url.PathEscape(v), "%2F", "/")
			p = strings.Replace(p, "{"+name+"...}", esc, 1)
			continue
		}
		p = strings.Replace(p, "{"+name+"}", esc, 1)
	}
	q := url.Values{}
	for _, prm := range rt.Params {
		if prm.Required && prm.In == "query" {
			if prm.Example == "" {
				return "", fmt.Errorf("required query parameter %s has no Example", prm.Name)
			}
			q.Set(prm.Name, prm.Example)
		}
	}
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return p, nil
}
