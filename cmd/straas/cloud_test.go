package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/straas/straas/agent/agenttest"
	"github.com/straas/straas/agent/dummy"
	"github.com/straas/straas/mockcn"
	"github.com/straas/straas/shared/queue"
)

// cloudFixture is a mock cloud with agents on an in-memory queue, served over HTTP, and
// an admin token in the environment the CLI reads.
func cloudFixture(t *testing.T) (*mockcn.Cloud, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	q := agenttest.NewMemQueue(nil)
	for _, name := range []string{queue.Status, queue.NodeQueue("n-1"), queue.NodeQueue("n-2")} {
		if err := q.Ensure(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := mockcn.New(mockcn.Config{Root: t.TempDir(), AZs: []string{"az1"}, CNsPerAZ: 4, Queue: q,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(cl.Handler())
	done := make(chan struct{})
	go func() { _ = cl.Run(ctx); close(done) }()
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	for _, n := range []string{"n-1", "n-2"} {
		if _, err := cl.CreateServer(mockcn.ServerSpec{Name: "vm-" + n, UserData: mockcn.NewUserData(n, "v1").JSON()}); err != nil {
			t.Fatal(err)
		}
	}
	// Agents boot after the boot latency; the commands below need them up.
	waitVM(t, cl, func(vs []mockcn.VM) bool {
		for _, v := range vs {
			if v.Agent != "up" {
				return false
			}
		}
		return len(vs) == 2
	})
	tok, err := cl.Token("admin", "admin", "admin")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("STRAAS_CONFIG", filepath.Join(t.TempDir(), "session.json"))
	t.Setenv("STRAAS_TOKEN", tok)
	t.Setenv("STRAAS_CLOUD_URL", srv.URL)
	return cl, srv.URL
}

func waitVM(t *testing.T, cl *mockcn.Cloud, ok func([]mockcn.VM) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok(cl.VMs()) {
		if time.Now().After(deadline) {
			t.Fatalf("VMs never reached the state wanted: %+v", cl.VMs())
		}
		time.Sleep(10 * time.Millisecond) // polling the cloud with a deadline
	}
}

func straas(args ...string) error {
	root := rootCmd()
	root.SetArgs(args)
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	return root.ExecuteContext(context.Background())
}

func vmNamed(cl *mockcn.Cloud, name string) mockcn.VM {
	for _, v := range cl.VMs() {
		if v.Name == name {
			return v
		}
	}
	return mockcn.VM{}
}

// agentKnobs returns the knobs an agent runs with (its own, else the fleet's).
func agentKnobs(cl *mockcn.Cloud, node string) dummy.Knobs {
	a := cl.Fleet().Get(node)
	if a == nil {
		return dummy.Knobs{}
	}
	be, ok := a.Backend().(*dummy.Backend)
	if !ok || be.Knobs() == nil {
		return dummy.Knobs{}
	}
	return *be.Knobs()
}

func TestCloudCommands(t *testing.T) {
	cl, _ := cloudFixture(t)
	firstCN := cl.CNs()[0]
	tests := []struct {
		name  string
		args  []string
		check func() bool // the cloud's state afterwards (polled: agents act on the fleet's workers)
	}{
		{"add CNs with a profile", []string{"cloud", "cn", "add", "--count", "2", "--az", "az2", "--profile", "large"}, func() bool {
			n := 0
			for _, x := range cl.CNs() {
				if x.AZ == "az2" && x.Hardware == (mockcn.Hardware{CPUs: 64, RAMMB: 512 * 1024, DiskGB: 4000}) {
					n++
				}
			}
			return n == 2
		}},
		{"add a CN with explicit hardware", []string{"cloud", "cn", "add", "--az", "az2", "--rack", "az2-rack09", "--profile", "small", "--cpus", "12"}, func() bool {
			for _, x := range cl.CNs() {
				if x.Rack == "az2-rack09" {
					return x.Hardware == mockcn.Hardware{CPUs: 12, RAMMB: 32 * 1024, DiskGB: 500}
				}
			}
			return false
		}},
		{"CN down by hostname", []string{"cloud", "cn", "down", firstCN.Hostname}, func() bool {
			x, _ := cl.GetCN(firstCN.ID)
			return x.Down
		}},
		{"CN up by id", []string{"cloud", "cn", "up", firstCN.ID}, func() bool {
			x, _ := cl.GetCN(firstCN.ID)
			return !x.Down
		}},
		{"rack down", []string{"cloud", "rack", "down", mockcn.RackName("az1", 1), "--az", "az1"}, func() bool {
			for _, x := range cl.CNs() {
				if x.Rack == mockcn.RackName("az1", 1) && !x.Down {
					return false
				}
			}
			return true
		}},
		{"rack up", []string{"cloud", "rack", "up", mockcn.RackName("az1", 1)}, func() bool {
			for _, x := range cl.CNs() {
				if x.Down {
					return false
				}
			}
			return true
		}},
		{"agent silent by node id", []string{"cloud", "agent", "silent", "n-1"}, func() bool { return vmNamed(cl, "vm-n-1").Agent == "silent" }},
		{"agent speaks again by server name", []string{"cloud", "agent", "silent", "--off", "vm-n-1"}, func() bool { return vmNamed(cl, "vm-n-1").Agent == "up" }},
		{"agent crash", []string{"cloud", "agent", "crash", "n-2"}, func() bool { return vmNamed(cl, "vm-n-2").Agent == "crashed" }},
		{"agent restart", []string{"cloud", "agent", "restart", "n-2"}, func() bool { return vmNamed(cl, "vm-n-2").Agent == "up" }},
		{"agent slow", []string{"cloud", "agent", "slow", "n-1", "--factor", "20"}, func() bool { return agentKnobs(cl, "n-1").Slow == 20 }},
		{"agent knobs", []string{"cloud", "agent", "knobs", "vm-n-1", "--set", `{"fail":{"configure":"disk full"}}`}, func() bool {
			k := agentKnobs(cl, "n-1")
			return k.Slow == 0 && k.Fail["configure"] == "disk full"
		}},
		{"agent install failure", []string{"cloud", "install-failure", "--package", "zookeeper", "--vm", "n-1"}, func() bool {
			return slices.Contains(agentKnobs(cl, "n-1").FailInstall, dummy.Package{Name: "zookeeper"}) && len(cl.Knobs().FailInstall) == 0
		}},
		{"agent knobs cleared", []string{"cloud", "agent", "knobs", "n-1", "--clear"}, func() bool {
			k := agentKnobs(cl, "n-1")
			return k.Fail == nil && k.FailInstall == nil
		}},
		{"fleet knobs", []string{"cloud", "knobs", "--set", `{"slow":3,"hang":["validate"]}`}, func() bool {
			k := cl.Knobs()
			return k.Slow == 3 && slices.Equal(k.Hang, []string{"validate"})
		}},
		{"install failure fleet-wide", []string{"cloud", "install-failure", "--package", "kafka", "--version", "0.10.2.1"}, func() bool {
			k := cl.Knobs()
			return k.Slow == 3 && slices.Contains(k.FailInstall, dummy.Package{Name: "kafka", Version: "0.10.2.1"})
		}},
		{"install failure cleared", []string{"cloud", "install-failure", "--package", "kafka", "--version", "0.10.2.1", "--clear"}, func() bool {
			return len(cl.Knobs().FailInstall) == 0 && cl.Knobs().Slow == 3
		}},
		{"knobs cleared", []string{"cloud", "knobs", "--clear"}, func() bool { k := cl.Knobs(); return k.Slow == 0 && len(k.Hang) == 0 }},
		{"boot latency", []string{"cloud", "boot-latency", "--min", "1s", "--max", "3s"}, func() bool {
			return cl.BootLatency() == mockcn.Latency{Min: dummy.Duration(time.Second), Max: dummy.Duration(3 * time.Second)}
		}},
		{"VM crash to ERROR", []string{"cloud", "vm", "crash", "--error", "vm-n-2"}, func() bool {
			v := vmNamed(cl, "vm-n-2")
			return v.Status == mockcn.StatusError && v.Agent == "none" && v.Fault != ""
		}},
		{"remove a CN with its VMs", []string{"cloud", "cn", "remove", "--force", vmNamed(cl, "vm-n-1").CN}, func() bool {
			return vmNamed(cl, "vm-n-1").ID == "" && len(cl.CNs()) == 4+3-1
		}},
		{"stats and lists read", []string{"cloud", "stats"}, func() bool { return true }},
		{"CN list", []string{"cloud", "cn", "list", "-o", "json"}, func() bool { return true }},
		{"VM list", []string{"cloud", "vm", "list"}, func() bool { return true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := straas(tt.args...); err != nil {
				t.Fatalf("straas %v: %v", tt.args, err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for !tt.check() {
				if time.Now().After(deadline) {
					t.Fatalf("after straas %v the cloud is not as expected: CNs %+v VMs %+v knobs %+v", tt.args, cl.CNs(), cl.VMs(), cl.Knobs())
				}
				time.Sleep(10 * time.Millisecond) // polling the cloud with a deadline
			}
		})
	}
}

func TestCloudCommandErrors(t *testing.T) {
	cl, _ := cloudFixture(t)
	tests := []struct {
		name string
		args []string
	}{
		{"unknown CN", []string{"cloud", "cn", "down", "no-such-cn"}},
		{"unknown VM", []string{"cloud", "vm", "crash", "no-such-vm"}},
		{"unknown profile", []string{"cloud", "cn", "add", "--profile", "huge"}},
		{"bad knobs JSON", []string{"cloud", "knobs", "--set", `{"slowness": 2}`}},
		{"bad boot latency", []string{"cloud", "boot-latency", "--min", "5s", "--max", "1s"}},
		{"install failure without a package", []string{"cloud", "install-failure"}},
		{"CN with VMs without --force", []string{"cloud", "cn", "remove", vmNamed(cl, "vm-n-1").CN}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := straas(tt.args...); err == nil {
				t.Fatalf("straas %v succeeded, want an error", tt.args)
			}
		})
	}
	demo, err := cl.Token("demo", "demo", "demo")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("STRAAS_TOKEN", demo)
	if err := straas("cloud", "cn", "list"); err == nil {
		t.Fatal("a non-admin token listed compute nodes")
	}
}
