package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	restapi "github.com/straas/straas/shared/api"
	"github.com/straas/straas/test/harness"
)

func acZK(name string) []byte {
	return []byte(fmt.Sprintf(`{"name":%q,"availability_zone":"az1","components":[{"name":"zk","type":"zookeeper","version":"3.4.6","size":1}]}`, name))
}

// TestAPIContract: Idempotency-Key, ETag/If-Match, and list paging, sorting and filters,
// on the real system.
func TestAPIContract(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	demo := s.Client(t, "demo")
	topos := s.APIURL + restapi.Prefix + "/topologies"

	t.Run("Idempotency-Key", func(t *testing.T) {
		first := acCall(t, "POST", topos, demo.Token, acZK("idem-1"), restapi.IdempotencyHeader, "e2e-key-1")
		if first.status != 202 {
			t.Fatalf("create: %s", first)
		}
		// The client timed out and retries: the same answer, no second topology.
		again := acCall(t, "POST", topos, demo.Token, acZK("idem-1"), restapi.IdempotencyHeader, "e2e-key-1")
		if again.status != 202 || string(again.body) != string(first.body) || again.header.Get(restapi.ReplayedHeader) != "true" {
			t.Fatalf("retry: %s (replayed %q), want the first answer", again, again.header.Get(restapi.ReplayedHeader))
		}
		if other := acCall(t, "POST", topos, demo.Token, acZK("idem-2"), restapi.IdempotencyHeader, "e2e-key-1"); other.status != 422 {
			t.Errorf("same key, another body: %s, want 422", other)
		}
		a := acCall(t, "GET", topos+"?name=idem-1", demo.Token, nil)
		var l restapi.TopologyList
		acDecode(t, a.body, &l)
		if len(l.Topologies) != 1 {
			t.Errorf("topologies named idem-1: %d, want 1", len(l.Topologies))
		}
		// Without a key the same body is a second request: a conflict on the name.
		if dup := acCall(t, "POST", topos, demo.Token, acZK("idem-1")); dup.status != 409 {
			t.Errorf("without a key: %s, want 409", dup)
		}
		var created restapi.TopologyCreated
		acDecode(t, first.body, &created)
		if a := harness.WaitAction(t, demo, created.Action.ID, 90*time.Second); a.Status != "SUCCEEDED" {
			t.Fatalf("idem-1: %s", a.Status)
		}
	})

	t.Run("ETag and If-Match", func(t *testing.T) {
		var created restapi.TopologyCreated
		acDecode(t, acCall(t, "POST", topos, demo.Token, acZK("etag-1")).body, &created)
		id := created.Topology.ID
		early := acCall(t, "GET", topos+"/"+id, demo.Token, nil).header.Get("ETag")
		if early == "" {
			t.Fatal("GET a topology: no ETag")
		}
		if a := harness.WaitAction(t, demo, created.Action.ID, 90*time.Second); a.Status != "SUCCEEDED" {
			t.Fatalf("etag-1: %s", a.Status)
		}
		// The creation changed it since: a delete based on the early read is stale.
		now := acCall(t, "GET", topos+"/"+id, demo.Token, nil).header.Get("ETag")
		if now == early {
			t.Fatalf("ETag %s unchanged by the creation", now)
		}
		stale := acCall(t, "DELETE", topos+"/"+id, demo.Token, nil, "If-Match", early)
		if stale.status != 412 || stale.errorBody().Field != "If-Match" {
			t.Fatalf("stale delete: %s, want 412 naming If-Match", stale)
		}
		if got := acCall(t, "GET", topos+"/"+id, demo.Token, nil); got.status != 200 || got.header.Get("ETag") != now {
			t.Fatalf("after the refused delete: %s, ETag %s", got, got.header.Get("ETag"))
		}
		if ok := acCall(t, "DELETE", topos+"/"+id, demo.Token, nil, "If-Match", now); ok.status != 202 {
			t.Fatalf("delete with the current ETag: %s", ok)
		}
	})

	t.Run("paging, sort and filters", func(t *testing.T) {
		other := s.Client(t, "other")
		for _, n := range []string{"page-c", "page-a", "page-b"} {
			if a := acCall(t, "POST", topos, other.Token, acZK(n)); a.status != 202 {
				t.Fatalf("create %s: %s", n, a)
			}
		}
		var names []string
		q := "?limit=1&sort=-name&name=page-a,page-b,page-c"
		for page := 0; page < 10; page++ {
			a := acCall(t, "GET", topos+q, other.Token, nil)
			var l restapi.TopologyList
			acDecode(t, a.body, &l)
			if a.status != 200 || len(l.Topologies) > 1 {
				t.Fatalf("page %d: %s", page, a)
			}
			for _, tp := range l.Topologies {
				names = append(names, tp.Name)
			}
			if l.NextMarker == "" {
				break
			}
			q = "?limit=1&sort=-name&name=page-a,page-b,page-c&marker=" + l.NextMarker
		}
		if got := strings.Join(names, ","); got != "page-c,page-b,page-a" {
			t.Errorf("pages: %s, want page-c,page-b,page-a", got)
		}
		for _, q := range []string{"?component_type=kafka&name=page-a", "?availability_zone=az9", "?status=DELETED&name=page-a"} {
			var l restapi.TopologyList
			acDecode(t, acCall(t, "GET", topos+q, other.Token, nil).body, &l)
			if len(l.Topologies) != 0 {
				t.Errorf("%s: %d topologies, want none", q, len(l.Topologies))
			}
		}
		var l restapi.TopologyList
		acDecode(t, acCall(t, "GET", topos+"?component_type=zookeeper&az=az1&name=page-b", other.Token, nil).body, &l)
		if len(l.Topologies) != 1 {
			t.Errorf("zookeeper topologies named page-b in az1: %d, want 1", len(l.Topologies))
		}
		if a := acCall(t, "GET", topos+"?sort=colour", other.Token, nil); a.status != 400 || a.errorBody().Field != "sort" {
			t.Errorf("bad sort: %s", a)
		}
	})
}

// TestAPIRateLimit runs straas with a low per-project limit: past the burst, a project
// gets 429 with Retry-After, other projects do not, and it passes once waited.
func TestAPIRateLimit(t *testing.T) {
	s := harness.Start(t, harness.Options{Args: []string{"--api-rate-limit", "1", "--api-rate-burst", "3"}})
	demo, other := s.Client(t, "demo"), s.Client(t, "other")
	list := s.APIURL + restapi.Prefix + "/topologies"
	var limited acAnswer
	for i := 0; i < 20; i++ {
		a := acCall(t, "GET", list, demo.Token, nil)
		if a.status == http.StatusTooManyRequests {
			limited = a
			break
		}
		if a.status != 200 {
			t.Fatalf("request %d: %s", i, a)
		}
	}
	if limited.status != http.StatusTooManyRequests {
		t.Fatal("20 requests at once, never a 429")
	}
	ra, err := strconv.Atoi(limited.header.Get("Retry-After"))
	if err != nil || ra < 1 {
		t.Fatalf("429 with Retry-After %q, want whole seconds", limited.header.Get("Retry-After"))
	}
	if e := limited.errorBody(); e.Status != 429 || e.Message == "" {
		t.Errorf("429 body: %s", limited.body)
	}
	if a := acCall(t, "GET", list, other.Token, nil); a.status != 200 {
		t.Errorf("another project: %s, want 200", a)
	}
	harness.Eventually(t, time.Duration(ra+5)*time.Second, "demo is served again after Retry-After", func() bool {
		return acCall(t, "GET", list, demo.Token, nil).status == 200
	})
}
