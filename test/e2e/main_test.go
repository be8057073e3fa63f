// Package e2e drives `straas up` (a subprocess on free ports) over HTTP only.
package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/test/harness"
)

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// create posts a topology and waits for its action to end.
func create(t *testing.T, c *client.Client, body []byte, within time.Duration) (client.Topology, client.Action) {
	t.Helper()
	topo, ref, err := c.CreateTopology(context.Background(), body)
	if err != nil {
		t.Fatalf("create topology: %v", err)
	}
	a := harness.WaitAction(t, c, ref.ID, within)
	got, err := c.Topology(context.Background(), topo.ID)
	if err != nil {
		t.Fatalf("show topology %s: %v", topo.ID, err)
	}
	return got, a
}
