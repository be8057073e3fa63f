package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/mockcn/identity"
	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/test/harness"
)

// acAnswer is a raw HTTP answer.
type acAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (a acAnswer) String() string { return fmt.Sprintf("%d %s", a.status, bytes.TrimSpace(a.body)) }

// errorBody decodes the API's error schema ("" fields when it is not one).
func (a acAnswer) errorBody() client.Error {
	var e struct {
		Error client.Error `json:"error"`
	}
	_ = json.Unmarshal(a.body, &e)
	return e.Error
}

// acCall sends one request. hdr holds header name/value pairs; a body that is not nil is
// sent as JSON.
func acCall(t testing.TB, method, url, token string, body []byte, hdr ...string) acAnswer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return acAnswer{status: resp.StatusCode, header: resp.Header, body: b}
}

// acExpiredToken mints a token of user that expired an hour ago, signed with the running
// mock Keystone's key (found in its data directory): a real token, only old.
func acExpiredToken(t testing.TB, s *harness.Straas, user string) string {
	t.Helper()
	past := clock.NewFake(time.Now().Add(-2 * time.Hour))
	id, err := identity.New(identity.Config{Dir: filepath.Join(s.DataDir, "cloud", "identity"), Clock: past, TokenTTL: time.Hour})
	if err != nil {
		t.Fatalf("open the mock Keystone's key: %v", err)
	}
	tok, err := id.Authenticate(user, user, "")
	if err != nil {
		t.Fatal(err)
	}
	if !tok.ExpiresAt.Before(time.Now()) {
		t.Fatalf("minted token expires at %s: not in the past", tok.ExpiresAt)
	}
	return tok.ID
}

// acRevokedToken logs user in and has the admin revoke the token before its first use.
func acRevokedToken(t testing.TB, s *harness.Straas, user, project string) string {
	t.Helper()
	tok := s.Token(t, user, user, project)
	a := acCall(t, "DELETE", s.AuthURL()+"/auth/tokens", s.Token(t, "admin", "admin", "admin"), nil, "X-Subject-Token", tok)
	if a.status != http.StatusNoContent {
		t.Fatalf("revoke: %s", a)
	}
	return tok
}

// contains reports whether any of needles is in hay.
func acFind(hay []byte, needles ...string) (string, bool) {
	for _, n := range needles {
		if n != "" && bytes.Contains(hay, []byte(n)) {
			return n, true
		}
	}
	return "", false
}

func acDecode(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", strings.TrimSpace(string(b)), err)
	}
}
