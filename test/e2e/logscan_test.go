package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	restapi "github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/test/harness"
)

func acRandHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// TestSecretsNeverLogged runs a session of straas with every kind of credential in
// play (valid tokens in both headers and in a query string, malformed, forged, expired
// and revoked tokens, wrong passwords, a password in a request body), then looks for
// each secret in the process's log, in every answer the API gave, and in every file
// straas keeps (the store with its events and actions, the queues, the mock cloud's
// VMs, the git repos). Tokens are looked for whole and by their signature, which no
// other token shares.
func TestSecretsNeverLogged(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	ctx := context.Background()
	base := s.APIURL + restapi.Prefix
	var secrets []string
	addToken := func(tok string) string {
		secrets = append(secrets, tok)
		if i := strings.LastIndex(tok, "."); i >= 0 && len(tok)-i > 16 {
			secrets = append(secrets, tok[i+1:])
		}
		return tok
	}
	var answers []acAnswer
	do := func(method, url, tok string, body []byte, hdr ...string) acAnswer {
		a := acCall(t, method, url, tok, body, hdr...)
		answers = append(answers, a)
		return a
	}

	demo := addToken(s.Token(t, "demo", "demo", "demo"))
	admin := addToken(s.Token(t, "admin", "admin", "admin"))
	other := addToken(s.Token(t, "other", "other", "other"))
	expired := addToken(acExpiredToken(t, s, "demo2"))
	revoked := addToken(acRevokedToken(t, s, "demo2", "demo"))
	malformed := addToken("malformed-" + acRandHex(12))
	forged := addToken("gAAAAA" + acRandHex(40) + "." + acRandHex(20))
	password := "pw-" + acRandHex(10)
	bodySecret := "body-secret-" + acRandHex(10)
	secrets = append(secrets, password, bodySecret)

	// Wrong passwords at Keystone.
	for _, user := range []string{"demo", "nobody"} {
		if _, _, err := client.Login(ctx, s.AuthURL(), user, password, "demo", ""); err == nil {
			t.Fatalf("login of %s with a wrong password succeeded", user)
		}
	}
	// A whole life of a topology, through the legacy header.
	created := do("POST", base+"/topologies", "", acZK("secrets-1"), "token", demo, restapi.IdempotencyHeader, "k-"+acRandHex(4))
	if created.status != 202 {
		t.Fatalf("create: %s", created)
	}
	var c restapi.TopologyCreated
	acDecode(t, created.body, &c)
	if a := harness.WaitAction(t, client.New(s.APIURL, demo), c.Action.ID, 90*time.Second); a.Status != "SUCCEEDED" {
		t.Fatalf("creation: %s", a.Status)
	}
	topo := base + "/topologies/" + c.Topology.ID
	do("GET", topo, demo, nil)
	do("GET", base+"/actions/"+c.Action.ID, demo, nil)
	do("GET", base+"/actions?topology_id="+c.Topology.ID, admin, nil)
	do("GET", base+"/topologies?token="+demo+"&password="+password, demo, nil)
	do("POST", base+"/topologies", demo, []byte(`{"name":"secrets-2","password":"`+bodySecret+`","availability_zone":"az1","components":[]}`))
	for _, tok := range []string{malformed, forged, expired, revoked} {
		do("GET", topo, tok, nil)
		do("DELETE", topo, "", nil, "token", tok)
		do("POST", base+"/topologies", tok, acZK("secrets-3"))
	}
	do("GET", topo, other, nil)
	deleted := do("DELETE", topo, demo, nil)
	var d restapi.TopologyDeleted
	acDecode(t, deleted.body, &d)
	if a := harness.WaitAction(t, client.New(s.APIURL, demo), d.Action.ID, 90*time.Second); a.Status != "SUCCEEDED" {
		t.Fatalf("deletion: %s", a.Status)
	}
	do("GET", base+"/actions/"+d.Action.ID, demo, nil)
	s.Stop() // flushes everything to disk

	if leak, ok := acFind(s.Log(), secrets...); ok {
		t.Errorf("the log holds the secret %s", acBrief(leak))
	}
	for _, a := range answers {
		if leak, ok := acFind(a.body, secrets...); ok {
			t.Errorf("an answer holds the secret %s: %.300s", acBrief(leak), a.body)
		}
		for k, vs := range a.header {
			if leak, ok := acFind([]byte(k+": "+strings.Join(vs, ",")), secrets...); ok {
				t.Errorf("an answer's header %s holds the secret %s", k, acBrief(leak))
			}
		}
	}
	files := 0
	err := filepath.WalkDir(s.DataDir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || p == s.LogPath {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		if leak, ok := acFind(b, secrets...); ok {
			rel, _ := filepath.Rel(s.DataDir, p)
			t.Errorf("%s holds the secret %s", rel, acBrief(leak))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 3 {
		t.Fatalf("only %d files under the data directory: the scan looked at nothing", files)
	}
	// The scan is not vacuous: the log does record the calls.
	if !strings.Contains(string(s.Log()), c.Topology.ID) && !strings.Contains(string(s.Log()), "/topologies") {
		t.Error("the log shows no request at all")
	}
}

// acBrief names a secret in a failure without printing it whole.
func acBrief(secret string) string {
	if len(secret) > 12 {
		return secret[:6] + "..." + secret[len(secret)-4:]
	}
	return secret[:min(len(secret), 4)] + "..."
}
