package cloud_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/straas/straas/mockcn"
	"github.com/straas/straas/shared/cloud"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/stages"
)

// The stages probe the compute for these capabilities; the adapter must have them.
var (
	_ stages.HostStater    = (*cloud.Cloud)(nil)
	_ stages.FaultDomainer = (*cloud.Cloud)(nil)
	_ stages.Rebooter      = (*cloud.Cloud)(nil)
)

// mock runs the mock cloud behind a real HTTP server: two AZs of three small CNs.
func mock(t *testing.T) (*mockcn.Cloud, string) {
	t.Helper()
	mc, err := mockcn.New(mockcn.Config{
		Root: t.TempDir(), AZs: []string{"az1", "az2"}, CNsPerAZ: 3,
		Hardware:    mockcn.Hardware{CPUs: 2, RAMMB: 4096, DiskGB: 40},
		BootLatency: mockcn.Latency{Min: 0, Max: 0},
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mc.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = mc.Run(ctx); close(done) }()
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return mc, srv.URL + "/identity/v3"
}

func connect(t *testing.T, authURL, user string) *cloud.Cloud {
	t.Helper()
	project := map[string]string{"admin": "admin", "demo": "demo"}[user]
	c, err := cloud.Connect(context.Background(), cloud.Options{AuthURL: authURL, Username: user, Password: user, Project: project})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// boot creates a server and waits until Nova has decided (ACTIVE or ERROR).
func boot(t *testing.T, c *cloud.Cloud, name, flavor string) cloud.Server {
	t.Helper()
	ctx := context.Background()
	id, err := c.CreateServer(ctx, cloud.ServerSpec{Name: name, Flavor: flavor, Image: "img", AZ: "az1"})
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); ; {
		s, err := c.GetServer(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Status == "ACTIVE" || s.Status == "ERROR" {
			return s
		}
		if time.Now().After(end) {
			t.Fatalf("server %s still %s", name, s.Status)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

func TestHostStatus(t *testing.T) {
	mc, authURL := mock(t)
	ctx := context.Background()
	admin, demo := connect(t, authURL, "admin"), connect(t, authURL, "demo")
	adminSrv := boot(t, admin, "a1", "tiny")
	demoSrv := boot(t, demo, "d1", "tiny")
	unplaced := boot(t, admin, "big", "xlarge") // no CN is large enough: ERROR without a host
	if unplaced.Status != "ERROR" {
		t.Fatalf("xlarge server is %s, want ERROR", unplaced.Status)
	}
	vm, err := mc.GetVM(adminSrv.ID)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		c      *cloud.Cloud
		server string
		cnDown bool
		want   string
	}{
		{"admin sees an up host", admin, adminSrv.ID, false, cloud.HostUp},
		{"admin sees a down host", admin, adminSrv.ID, true, cloud.HostDown},
		{"the host is back", admin, adminSrv.ID, false, cloud.HostUp},
		{"a server without a host", admin, unplaced.ID, false, cloud.HostUnknown},
		{"a member does not see host_status", demo, demoSrv.ID, false, cloud.HostUnknown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := mc.SetCNDown(vm.CN, tc.cnDown); err != nil {
				t.Fatal(err)
			}
			got, err := tc.c.HostStatus(ctx, tc.server)
			if err != nil || got != tc.want {
				t.Fatalf("HostStatus = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := admin.HostStatus(ctx, "no-such-server"); !errs.Is(err, errs.NotFound) {
		t.Fatalf("HostStatus of a missing server: %v, want NotFound", err)
	}
	// The microversion was for that call only: the client's other calls still work.
	if _, err := admin.GetServer(ctx, adminSrv.ID); err != nil {
		t.Fatal(err)
	}
}

func TestFaultDomains(t *testing.T) {
	mc, authURL := mock(t)
	ctx := context.Background()
	admin := connect(t, authURL, "admin")
	got, err := admin.FaultDomains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cns := mc.CNs()
	if len(got) != len(cns) {
		t.Fatalf("FaultDomains has %d hosts, want %d: %v", len(got), len(cns), got)
	}
	racks := map[string]bool{}
	for _, x := range cns {
		if got[x.Hostname] != x.Rack {
			t.Errorf("host %s: fault domain %q, want %q", x.Hostname, got[x.Hostname], x.Rack)
		}
		racks[x.Rack] = true
	}
	if len(racks) != 4 { // two racks per AZ
		t.Fatalf("%d racks, want 4", len(racks))
	}
	// A booted server's hypervisor is one of those hosts: what the creation stage records.
	s := boot(t, admin, "a1", "tiny")
	if got[s.Hypervisor] == "" {
		t.Fatalf("server on %q: no fault domain in %v", s.Hypervisor, got)
	}
	// Aggregates are an admin's business.
	if _, err := connect(t, authURL, "demo").FaultDomains(ctx); !errs.Is(err, errs.Permission) {
		t.Fatalf("FaultDomains as a member: %v, want Permission", err)
	}
}
