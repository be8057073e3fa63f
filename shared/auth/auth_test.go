package auth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straas/straas/mockcn/identity"
	"github.com/straas/straas/shared/auth"
	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// keystone is the mock cloud's Keystone on a test server, counting token validations.
type keystone struct {
	svc       *identity.Service
	srv       *httptest.Server
	clk       *clock.Fake
	validates atomic.Int64
	down      atomic.Bool
}

func newKeystone(t *testing.T, ttl time.Duration) *keystone {
	t.Helper()
	k := &keystone{clk: clock.NewFake(t0)}
	var err error
	if k.svc, err = identity.New(identity.Config{Clock: k.clk, TokenTTL: ttl}); err != nil {
		t.Fatal(err)
	}
	catalog := func(r *http.Request) []identity.CatalogEntry {
		return []identity.CatalogEntry{{ID: "k", Type: "identity", Name: "keystone",
			Endpoints: []identity.Endpoint{{ID: "e", Interface: "public", Region: "RegionOne", RegionID: "RegionOne", URL: identity.BaseURL(r) + "/identity/v3"}}}}
	}
	h := k.svc.Handler(catalog)
	k.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/identity/v3/auth/tokens" {
			k.validates.Add(1)
			if k.down.Load() {
				// What a broken proxy in front of Keystone might say: it quotes the token.
				http.Error(w, "upstream failed for "+r.Header.Get("X-Subject-Token"), http.StatusBadGateway)
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(k.srv.Close)
	return k
}

func (k *keystone) token(t *testing.T, user string) string {
	t.Helper()
	project := map[string]string{"admin": "admin", "demo": "demo", "demo2": "demo", "other": "other"}[user]
	tok, _, err := client.Login(context.Background(), k.srv.URL+"/identity/v3", user, user, project, "")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (k *keystone) validator(t *testing.T, cacheTTL time.Duration) *auth.Keystone {
	t.Helper()
	v, err := auth.NewKeystone(context.Background(), auth.KeystoneOptions{AuthURL: k.srv.URL + "/identity/v3",
		Username: "admin", Password: "admin", Project: "admin", CacheTTL: cacheTTL, Clock: k.clk})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestValidatePrincipals(t *testing.T) {
	k := newKeystone(t, time.Hour)
	v := k.validator(t, 30*time.Second)
	tests := []struct {
		user, project string
		admin         bool
	}{
		{"admin", "admin", true},
		{"demo", "demo", false},
		{"demo2", "demo", false},
		{"other", "other", false},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			p, err := v.Validate(context.Background(), k.token(t, tc.user))
			if err != nil {
				t.Fatal(err)
			}
			if p.UserName != tc.user || p.ProjectName != tc.project || p.Admin != tc.admin ||
				p.UserID != identity.ID("user", tc.user) || p.ProjectID != identity.ID("project", tc.project) {
				t.Errorf("got %+v, want user %s project %s admin %v", p, tc.user, tc.project, tc.admin)
			}
			if !p.ExpiresAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("expires %s, want %s", p.ExpiresAt, t0.Add(time.Hour))
			}
		})
	}
}

func TestValidateRefuses(t *testing.T) {
	k := newKeystone(t, time.Hour)
	v := k.validator(t, 30*time.Second)
	good := k.token(t, "demo")
	tests := []struct {
		name     string
		token    string
		asksKeys bool // whether Keystone is asked at all
	}{
		{"empty", "", false},
		{"space inside", "gAAAAA abc", false},
		{"newline", "abc\ndef", false},
		{"non-ascii", "tökén", false},
		{"too long", strings.Repeat("a", 8193), false},
		{"unknown", "gAAAAAnotatoken.sig", true},
		{"tampered", good[:len(good)-2] + "xx", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := k.validates.Load()
			_, err := v.Validate(context.Background(), tc.token)
			if !errs.Is(err, errs.Unauthenticated) {
				t.Fatalf("got %v, want an Unauthenticated error", err)
			}
			if asked := k.validates.Load() > before; asked != tc.asksKeys {
				t.Errorf("asked keystone: %v, want %v", asked, tc.asksKeys)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("error quotes the token: %v", err)
			}
			// A refusal is remembered for the cache TTL: retrying the same bad token
			// does not reach Keystone again until then.
			before = k.validates.Load()
			if _, err := v.Validate(context.Background(), tc.token); !errs.Is(err, errs.Unauthenticated) {
				t.Fatalf("retry: got %v, want an Unauthenticated error", err)
			}
			if k.validates.Load() != before {
				t.Errorf("retry of a refused token asked keystone again within the cache TTL")
			}
		})
	}
	k.clk.Advance(31 * time.Second)
	before := k.validates.Load()
	if _, err := v.Validate(context.Background(), "gAAAAAnotatoken.sig"); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("after the TTL: got %v, want an Unauthenticated error", err)
	}
	if k.validates.Load() != before+1 {
		t.Errorf("after the cache TTL a refused token should be asked about again; keystone asked %d times", k.validates.Load()-before)
	}
}

// TestCache: a validation is trusted for CacheTTL, never past the token's expiry; a
// revoked token is refused once its cache entry is gone.
func TestCache(t *testing.T) {
	k := newKeystone(t, 2*time.Minute)
	v := k.validator(t, 30*time.Second)
	ctx := context.Background()

	tok := k.token(t, "demo")
	if _, err := v.Validate(ctx, tok); err != nil {
		t.Fatal(err)
	}
	n := k.validates.Load()
	if _, err := v.Validate(ctx, tok); err != nil || k.validates.Load() != n {
		t.Fatalf("second validation: %v, keystone asked %d times more; want a cache hit", err, k.validates.Load()-n)
	}

	// Revoked: still trusted while cached, refused at the first miss.
	if err := k.svc.Revoke(tok); err != nil {
		t.Fatal(err)
	}
	k.clk.Advance(29 * time.Second)
	if _, err := v.Validate(ctx, tok); err != nil {
		t.Fatalf("within the cache TTL: %v", err)
	}
	k.clk.Advance(2 * time.Second)
	if _, err := v.Validate(ctx, tok); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("revoked token after the cache TTL: %v, want Unauthenticated", err)
	}

	// Revoked before its first use: refused at once.
	tok2 := k.token(t, "demo2")
	if err := k.svc.Revoke(tok2); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Validate(ctx, tok2); !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("revoked token: %v, want Unauthenticated", err)
	}

	// Expiry wins over the cache: a token cached 10 s before it expires is refused
	// right after it expires.
	tok3 := k.token(t, "other")
	k.clk.Advance(2*time.Minute - 10*time.Second)
	if _, err := v.Validate(ctx, tok3); err != nil {
		t.Fatal(err)
	}
	k.clk.Advance(11 * time.Second)
	_, err := v.Validate(ctx, tok3)
	if !errs.Is(err, errs.Unauthenticated) {
		t.Fatalf("expired token: %v, want Unauthenticated", err)
	}
}

// TestKeystoneDown: an unavailable Keystone is a 503-kind error that never quotes the token.
func TestKeystoneDown(t *testing.T) {
	k := newKeystone(t, time.Hour)
	v := k.validator(t, 30*time.Second)
	tok := k.token(t, "demo")
	k.down.Store(true)
	_, err := v.Validate(context.Background(), tok)
	if !errs.Is(err, errs.Unavailable) {
		t.Fatalf("got %v, want Unavailable", err)
	}
	if strings.Contains(err.Error(), tok[:20]) {
		t.Errorf("error quotes the token: %v", err)
	}
}

func TestCanSee(t *testing.T) {
	admin := auth.Principal{UserID: "u-admin", ProjectID: "p-admin", Admin: true}
	owner := auth.Principal{UserID: "u-demo", ProjectID: "p-demo"}
	peer := auth.Principal{UserID: "u-demo2", ProjectID: "p-demo"}
	other := auth.Principal{UserID: "u-other", ProjectID: "p-other"}
	tests := []struct {
		name          string
		p             auth.Principal
		tenant, owner string
		want          bool
	}{
		{"admin, anyone's", admin, "p-demo", "u-demo", true},
		{"owner", owner, "p-demo", "u-demo", true},
		{"same project, not the owner", peer, "p-demo", "u-demo", false},
		{"other tenant", other, "p-demo", "u-demo", false},
		{"project's, no owner", peer, "p-demo", "", true},
		{"other tenant, no owner", other, "p-demo", "", false},
	}
	for _, tc := range tests {
		if got := tc.p.CanSee(tc.tenant, tc.owner); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	tok := "gAAAAABsecretsecretsecret.signature"
	tests := []struct{ in, want string }{
		{"bad " + tok + " here", "bad [redacted] here"},
		{"Could not find token: " + tok[:16] + "...", "Could not find token: [redacted]..."},
		{"nothing " + tok[:5], "nothing " + tok[:5]},
	}
	for _, tc := range tests {
		if got := auth.Redact(tc.in, tok); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
