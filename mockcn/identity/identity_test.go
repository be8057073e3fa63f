package identity_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/straas/straas/mockcn/identity"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func serve(t *testing.T, s *identity.Service) *httptest.Server {
	t.Helper()
	catalog := func(r *http.Request) []identity.CatalogEntry {
		return []identity.CatalogEntry{{ID: "c", Type: "compute", Name: "nova", Endpoints: []identity.Endpoint{{ID: "e", Interface: "public", Region: "RegionOne", RegionID: "RegionOne", URL: identity.BaseURL(r) + "/compute/v2.1"}}}}
	}
	srv := httptest.NewServer(s.Handler(catalog))
	t.Cleanup(srv.Close)
	return srv
}

func client(t *testing.T, srv *httptest.Server, user, project string) *gophercloud.ServiceClient {
	t.Helper()
	p, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{IdentityEndpoint: srv.URL + "/identity/v3", Username: user, Password: user, TenantName: project, DomainName: "Default"})
	if err != nil {
		t.Fatalf("authenticate %s: %v", user, err)
	}
	c, err := openstack.NewIdentityV3(p, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTokens(t *testing.T) {
	clk := clock.NewFake(t0)
	s, err := identity.New(identity.Config{Clock: clk, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	srv := serve(t, s)
	ctx := context.Background()
	admin, demo := client(t, srv, "admin", "admin"), client(t, srv, "demo", "demo")
	demoTok := demo.TokenID

	// Issue: body with user, project, roles, catalog, expiry.
	r := tokens.Get(ctx, admin, demoTok)
	tok, err := r.ExtractToken()
	if err != nil || tok.ID != demoTok || !tok.ExpiresAt.Equal(t0.Add(identity.DefaultTTL)) {
		t.Fatalf("token = %+v, %v", tok, err)
	}
	u, _ := r.ExtractUser()
	p, _ := r.ExtractProject()
	roles, _ := r.ExtractRoles()
	cat, _ := r.ExtractServiceCatalog()
	if u.Name != "demo" || u.Domain.ID != "default" || p.Name != "demo" || p.ID != identity.ID("project", "demo") || len(roles) != 2 || roles[0].Name != "member" || len(cat.Entries) != 1 || cat.Entries[0].Endpoints[0].URL != srv.URL+"/compute/v2.1" {
		t.Fatalf("user %+v project %+v roles %+v catalog %+v", u, p, roles, cat)
	}

	// Validate: anyone may check their own token, an admin anyone's, a member not another's.
	for _, tc := range []struct {
		caller *gophercloud.ServiceClient
		token  string
		ok     bool
		code   int
	}{
		{admin, demoTok, true, 0},
		{demo, demoTok, true, 0},
		{demo, admin.TokenID, false, 403},
		{admin, "gAAAAAforged.sig", false, 0},
	} {
		ok, err := tokens.Validate(ctx, tc.caller, tc.token)
		if ok != tc.ok || (tc.code != 0 && !gophercloud.ResponseCodeIs(err, tc.code)) || (tc.code == 0 && err != nil) {
			t.Fatalf("validate %.12s: ok=%v err=%v; want ok=%v code=%d", tc.token, ok, err, tc.ok, tc.code)
		}
	}

	// Revoke: the token is gone, for Nova too (Validate in Go).
	demo2 := client(t, srv, "demo2", "demo")
	if err := tokens.Revoke(ctx, demo2, demo2.TokenID).Err; err != nil {
		t.Fatal(err)
	}
	if ok, _ := tokens.Validate(ctx, admin, demo2.TokenID); ok {
		t.Fatal("revoked token validates")
	}
	if _, err := s.Validate(demo2.TokenID); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("revoked token: %v", err)
	}
	if _, err := tokens.Get(ctx, admin, demo2.TokenID).ExtractToken(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("get revoked: %v", err)
	}

	// Expiry.
	clk.Advance(identity.DefaultTTL)
	if _, err := s.Validate(demoTok); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("expired token: %v", err)
	}
	if ok, err := tokens.Validate(ctx, client(t, srv, "admin", "admin"), demoTok); ok || err != nil {
		t.Fatalf("expired token over HTTP: ok=%v err=%v", ok, err)
	}
}

func TestRestartKeepsTokens(t *testing.T) {
	dir := t.TempDir()
	clk := clock.NewFake(t0)
	s1, err := identity.New(identity.Config{Clock: clk, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	keep, _ := s1.Authenticate("demo", "demo", "")
	gone, _ := s1.Authenticate("demo", "demo", "demo")
	if err := s1.Revoke(gone.ID); err != nil {
		t.Fatal(err)
	}
	s2, err := identity.New(identity.Config{Clock: clk, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := s2.Validate(keep.ID); err != nil || tok.ProjectName != "demo" || !tok.HasRole(identity.RoleMember) || tok.IsAdmin() {
		t.Fatalf("token after restart: %+v, %v", tok, err)
	}
	if _, err := s2.Validate(gone.ID); err == nil {
		t.Fatal("revocation lost on restart")
	}
	// Another key: tokens of another instance are forgeries.
	s3, _ := identity.New(identity.Config{Clock: clk, Dir: t.TempDir()})
	if _, err := s3.Validate(keep.ID); err == nil {
		t.Fatal("token of another key validates")
	}
}

func TestRescopeAndUnscoped(t *testing.T) {
	s, _ := identity.New(identity.Config{})
	srv := serve(t, s)
	ctx := context.Background()
	admin := client(t, srv, "admin", "admin")
	// Token method: a new token from an old one, same user and audit trail.
	p, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: srv.URL + "/identity/v3", TokenID: admin.TokenID, Scope: &gophercloud.AuthScope{ProjectName: "admin", DomainName: "Default"}})
	if err != nil {
		t.Fatal(err)
	}
	t1, _ := s.Validate(admin.TokenID)
	t2, err := s.Validate(p.TokenID)
	if err != nil || t2.UserName != "admin" || t2.AuditID != t1.AuditID || t2.Methods[0] != "token" {
		t.Fatalf("rescoped = %+v, %v", t2, err)
	}
	// Revoking the first revokes the chain.
	if err := s.Revoke(admin.TokenID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Validate(p.TokenID); err == nil {
		t.Fatal("rescoped token outlives the revoked original")
	}
	if _, err := s.Authenticate("admin", "admin", "other"); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("admin on a project it has no role on: %v", err)
	}
}

func TestProjectsAndUsers(t *testing.T) {
	s, _ := identity.New(identity.Config{})
	srv := serve(t, s)
	ctx := context.Background()
	admin, demo := client(t, srv, "admin", "admin"), client(t, srv, "demo", "demo")
	pages, err := projects.List(admin, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := projects.ExtractProjects(pages)
	if len(ps) != 3 || ps[0].Name != "admin" || ps[1].Name != "demo" || ps[2].Name != "other" || ps[1].DomainID != "default" {
		t.Fatalf("projects = %+v", ps)
	}
	if _, err := projects.List(demo, nil).AllPages(ctx); !gophercloud.ResponseCodeIs(err, 403) {
		t.Fatalf("member lists projects: %v", err)
	}
	demoID := identity.ID("project", "demo")
	if p, err := projects.Get(ctx, demo, demoID).Extract(); err != nil || p.Name != "demo" {
		t.Fatalf("own project: %+v, %v", p, err)
	}
	if _, err := projects.Get(ctx, demo, identity.ID("project", "other")).Extract(); !gophercloud.ResponseCodeIs(err, 403) {
		t.Fatalf("member gets another project: %v", err)
	}
	pages, err = projects.ListAvailable(demo).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps, _ := projects.ExtractProjects(pages); len(ps) != 1 || ps[0].ID != demoID {
		t.Fatalf("available projects = %+v", ps)
	}
	pages, err = users.List(admin, users.ListOpts{Name: "demo2"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if us, _ := users.ExtractUsers(pages); len(us) != 1 || us[0].DefaultProjectID != demoID {
		t.Fatalf("users = %+v", us)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, users := range [][]identity.User{
		{{Name: "a", Password: "a", Project: "p", Role: "king"}},
		{{Name: "", Password: "a", Project: "p", Role: "member"}},
		{{Name: "a", Password: "a", Project: "p", Role: "member"}, {Name: "a", Password: "b", Project: "q", Role: "member"}},
	} {
		if _, err := identity.New(identity.Config{Users: users}); !errs.Is(err, errs.Invalid) {
			t.Fatalf("users %+v: %v", users, err)
		}
	}
}
