package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	restapi "github.com/straas/straas/shared/api"
	"github.com/straas/straas/test/harness"
)

// TestTokenExpiry runs straas with tokens that live 4 s: a token the API validated (and
// cached, for 30 s) is refused as soon as it expires, not when its cache entry does; a
// new login works again (straas's own service token to Keystone expires too, and is
// renewed); `straas login` saves a session the other commands use, and refuses to use
// it once expired.
func TestTokenExpiry(t *testing.T) {
	const ttl = 4 * time.Second
	s := harness.Start(t, harness.Options{Args: []string{"--token-ttl", ttl.String()}})
	list := s.APIURL + restapi.Prefix + "/topologies"

	cfg := filepath.Join(t.TempDir(), "session.json")
	straas := s.CLI(t, "STRAAS_CONFIG="+cfg) // the last of a key wins in exec's environment
	if out, err := straas("login", "--auth-url", s.AuthURL(), "--url", s.APIURL, "--user", "demo", "--password", "demo", "-o", "json"); err != nil {
		t.Fatalf("straas login: %v\n%s", err, out)
	}
	st, err := os.Stat(cfg)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("session file: %v, mode %v; want 0600", err, st.Mode())
	}
	var sess struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	raw, _ := os.ReadFile(cfg)
	acDecode(t, raw, &sess)
	if out, err := straas("topology", "list", "-o", "json"); err != nil || !strings.Contains(out, `"topologies"`) {
		t.Fatalf("straas topology list after login: %v\n%s", err, out)
	}

	// The API's view: valid (and now cached) until the expiry, refused right after.
	if a := acCall(t, "GET", list, sess.Token, nil); a.status != 200 {
		t.Fatalf("fresh token: %s", a)
	}
	var refusedAt time.Time
	harness.Eventually(t, ttl+10*time.Second, "the token is refused after it expires", func() bool {
		a := acCall(t, "GET", list, sess.Token, nil)
		if a.status == 401 {
			refusedAt = time.Now()
			return true
		}
		if a.status != 200 {
			t.Fatalf("while valid: %s", a)
		}
		return false
	})
	if refusedAt.Before(sess.ExpiresAt) {
		t.Errorf("refused at %s, before its expiry %s", refusedAt, sess.ExpiresAt)
	}
	if late := refusedAt.Sub(sess.ExpiresAt); late > 2*time.Second {
		t.Errorf("refused %s after its expiry: the cache outlived the token", late)
	}
	if out, err := straas("topology", "list"); err == nil || !strings.Contains(out, "expired") {
		t.Errorf("straas topology list with an expired session: %v\n%s", err, out)
	}

	// Several service-token lifetimes later, new logins work.
	for _, user := range []string{"demo", "admin"} {
		c := s.Client(t, user)
		if a := acCall(t, "GET", list, c.Token, nil); a.status != 200 {
			t.Errorf("new login of %s: %s", user, a)
		}
	}
}
