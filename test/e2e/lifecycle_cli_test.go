package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/straas/straas/test/harness"
)

// TestLifecycleCLI drives the lifecycle operations through the straas CLI, as a user
// would: flexup, guest commands, services, storage, replace and delete, each --wait
// command exiting 0 only when its action succeeded.
func TestLifecycleCLI(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, lcTopology("cli-1", 3, 0, 1))
	zk, strm := lcComp(t, topo, "zk"), lcComp(t, topo, "strm")
	cli := s.CLI(t, "STRAAS_TOKEN="+c.Token)
	run := func(wantOK bool, args ...string) string {
		t.Helper()
		out, err := cli(args...)
		if (err == nil) != wantOK {
			t.Fatalf("straas %s: %v (want ok=%v)\n%s", strings.Join(args, " "), err, wantOK, out)
		}
		return out
	}

	out := run(true, "component", "flexup", strm.ID, "--count", "2", "--role", "supervisor", "--wait")
	if !strings.Contains(out, "SUCCEEDED") || !strings.Contains(out, "membership") {
		t.Errorf("flexup output:\n%s", out)
	}
	if got := len(lcComp(t, lcTopo(t, c, topo.ID), "strm").Nodes); got != 4 {
		t.Errorf("storm has %d nodes after the CLI flexup, want 4", got)
	}
	if out := run(true, "node", "cmd", lcNode(t, zk, 1).ID, "zk-cmd/ruok"); strings.TrimSpace(out) != "ok" {
		t.Errorf("node cmd output %q, want ok", out)
	}
	if out := run(false, "node", "cmd", lcNode(t, zk, 1).ID, "zk-cmd/nope"); !strings.Contains(out, "400") || !strings.Contains(out, "zk-cmd/srvr") {
		t.Errorf("unknown command output:\n%s", out)
	}
	if out := run(true, "component", "cmd", zk.ID, "zk-cmd/ruok"); !strings.Contains(out, "3 ok, 0 failed") {
		t.Errorf("component cmd output:\n%s", out)
	}
	run(true, "node", "services", "restart", lcNode(t, zk, 2).ID, "--wait")

	file := filepath.Join(t.TempDir(), "wc.jar")
	if err := os.WriteFile(file, []byte("jar bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	run(true, "storage", "put", "jars/wc.jar", file)
	if out := run(true, "storage", "ls", "jars/"); !strings.Contains(out, "jars/wc.jar") {
		t.Errorf("storage ls:\n%s", out)
	}
	if out := run(true, "storage", "get", "jars/wc.jar"); out != "jar bytes" {
		t.Errorf("storage get: %q", out)
	}
	run(true, "storage", "rm", "jars/wc.jar")
	if out := run(true, "storage", "ls", "jars/"); strings.Contains(out, "wc.jar") {
		t.Errorf("storage ls after rm:\n%s", out)
	}

	out = run(true, "node", "replace", lcNode(t, zk, 3).ID, "--wait")
	if !strings.Contains(out, "restart:cli-1-zk-") {
		t.Errorf("replace output shows no rolling restart:\n%s", out)
	}
	if out := run(false, "node", "delete", lcNode(t, zk, 1).ID, "--wait"); !strings.Contains(out, "409") || !strings.Contains(out, "quorum") {
		t.Errorf("delete below quorum:\n%s", out)
	}
	sup := lcNode(t, lcComp(t, lcTopo(t, c, topo.ID), "strm"), 4)
	run(true, "node", "delete", sup.ID, "--wait")
	if got := len(lcComp(t, lcTopo(t, c, topo.ID), "strm").Nodes); got != 3 {
		t.Errorf("storm has %d nodes after the CLI delete, want 3", got)
	}
	if out := run(true, "component", "deps", zk.ID); !strings.Contains(out, "strm") {
		t.Errorf("deps:\n%s", out)
	}
}
