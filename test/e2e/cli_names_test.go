package e2e

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/test/harness"
)

// TestCLITopologyNames: the CLI takes a topology's name wherever it takes its id (show,
// delete), says clearly when no topology has that name, and the client follows
// next_marker so that a list is whole whatever the page size.
func TestCLITopologyNames(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	ids := map[string]string{}
	for _, name := range []string{"names-1", "names-2", "names-3"} {
		ids[name] = lcCreate(t, c, lcTopology(name, 1, 0, -1)).ID
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	all, err := c.TopologiesWhere(ctx, url.Values{"limit": {"1"}})
	if err != nil || len(all) != 3 {
		t.Fatalf("list with pages of 1: %d topologies, %v; want 3", len(all), err)
	}

	cli := s.CLI(t)
	if out, err := cli("login", "--auth-url", s.AuthURL(), "--url", s.APIURL, "--user", "demo", "--password", "demo"); err != nil {
		t.Fatalf("straas login: %v\n%s", err, out)
	}
	tests := []struct {
		args []string
		ok   bool
		want string // the output must contain it
	}{
		{[]string{"topology", "show", "names-2"}, true, ids["names-2"]},
		{[]string{"topology", "show", ids["names-3"]}, true, "names-3@az1"},
		{[]string{"topology", "show", "nope"}, false, `no topology named "nope"`},
		{[]string{"topology", "delete", "nope"}, false, `no topology named "nope"`},
		{[]string{"topology", "delete", "names-1", "--wait"}, true, "deleted"},
	}
	for _, tc := range tests {
		out, err := cli(tc.args...)
		if (err == nil) != tc.ok || !strings.Contains(out, tc.want) {
			t.Errorf("straas %s: %v\n%s\nwant ok=%v and %q in the output", strings.Join(tc.args, " "), err, out, tc.ok, tc.want)
		}
	}
	left, err := c.Topologies(ctx)
	if err != nil || len(left) != 2 {
		t.Fatalf("after deleting names-1 by name: %d topologies, %v; want 2", len(left), err)
	}
}
