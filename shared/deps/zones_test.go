package deps

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straas/straas/agent"
	"github.com/straas/straas/mockcn"
	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/shared/cloud"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
)

func TestParseZone(t *testing.T) {
	env := map[string]string{"STRAAS_ZONE_PASSWORD_AZ_3": "from-env"}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		spec    string
		name    string
		want    cloud.Options
		invalid bool
	}{
		{spec: "az2=http://10.0.0.2:8090/identity/v3", name: "az2",
			want: cloud.Options{AuthURL: "http://10.0.0.2:8090/identity/v3", Username: "admin", Password: "admin", Project: "admin"}},
		{spec: "az-3=https://keystone.example/v3,user=svc,project=ops", name: "az-3",
			want: cloud.Options{AuthURL: "https://keystone.example/v3", Username: "svc", Password: "from-env", Project: "ops"}},
		{spec: "dc1.a=http://k/v3,user=u,password=p,domain=D,region=R1", name: "dc1.a",
			want: cloud.Options{AuthURL: "http://k/v3", Username: "u", Password: "p", Project: "u", Domain: "D", Region: "R1"}},
		{spec: "az2", invalid: true},
		{spec: "=http://k/v3", invalid: true},
		{spec: "az2=ftp://k/v3", invalid: true},
		{spec: "az2=not a url", invalid: true},
		{spec: "az2=http://k/v3,colour=blue", invalid: true},
		{spec: "az2=http://k/v3,user", invalid: true},
		{spec: "a z=http://k/v3", invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			name, o, err := ParseZone(tt.spec, getenv)
			if tt.invalid {
				if !errs.Is(err, errs.Invalid) {
					t.Fatalf("ParseZone(%q) error = %v, want an Invalid error", tt.spec, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if name != tt.name || o != tt.want {
				t.Fatalf("ParseZone(%q) = %q, %+v; want %q, %+v", tt.spec, name, o, tt.name, tt.want)
			}
		})
	}
}

func TestLoadZones(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zones.json")
	body := `{"az3": {"auth_url": "http://10.0.0.3:8090/identity/v3", "username": "demo", "password": "pw"},
	          "az4": {"auth_url": "http://10.0.0.4:8090/identity/v3", "project": "ops", "region": "R2"}}`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadZones(path, func(k string) string {
		if k == ZoneEnvPassword("az4") {
			return "secret4"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]cloud.Options{
		"az3": {AuthURL: "http://10.0.0.3:8090/identity/v3", Username: "demo", Password: "pw", Project: "demo"},
		"az4": {AuthURL: "http://10.0.0.4:8090/identity/v3", Username: "admin", Password: "secret4", Project: "ops", Region: "R2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("LoadZones = %+v, want %+v", got, want)
	}
	for _, bad := range []string{`{"az3": {"auth_url": "http://k/v3", "colour": "blue"}}`, `{"az3": {"auth_url": "k"}}`, `[1]`} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadZones(path, nil); !errs.Is(err, errs.Invalid) {
			t.Errorf("LoadZones(%s) error = %v, want Invalid", bad, err)
		}
	}
}

// system runs the embedded control plane for a test and logs in as admin.
func system(t *testing.T, cfg Config) (*Embedded, *client.Client) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.DataDir, cfg.Listen, cfg.CloudListen = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := New(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-e.Ready():
	case err := <-done:
		t.Fatalf("Run ended before it was ready: %v", err)
	}
	tok, _, err := client.Login(ctx, e.CloudURL+"/identity/v3", "admin", "admin", "admin", "")
	if err != nil {
		t.Fatal(err)
	}
	return e, client.New(e.APIURL, tok)
}

// createIn creates a 3-node ZooKeeper in az and waits for its action to succeed.
func createIn(t *testing.T, c *client.Client, name, az string) client.Topology {
	t.Helper()
	ctx := context.Background()
	body := `{"name":"` + name + `","availability_zone":"` + az + `","components":[{"name":"zk","type":"zookeeper","version":"3.4.6","size":3,"flavor":"small","enable_fault_domain":true}]}`
	topo, ref, err := c.CreateTopology(ctx, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		a, err := c.Action(ctx, ref.ID)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status == model.ActionSucceeded {
			break
		}
		if a.Status != model.ActionPending && a.Status != model.ActionRunning {
			t.Fatalf("create %s in %s: action %s: %+v", name, az, a.Status, a.Error)
		}
		if time.Now().After(deadline) {
			t.Fatalf("create %s in %s: action still %s after 60s", name, az, a.Status)
		}
		time.Sleep(20 * time.Millisecond) // polling the API with a deadline
	}
	full, err := c.Topology(ctx, topo.ID)
	if err != nil {
		t.Fatal(err)
	}
	return full
}

// hostsOf maps the topology's servers to the CNs they run on, as the cloud sees them.
func hostsOf(t *testing.T, cl *mockcn.Cloud, topo client.Topology) map[string]mockcn.VM {
	t.Helper()
	byID := map[string]mockcn.VM{}
	for _, v := range cl.VMs() {
		byID[v.ID] = v
	}
	out := map[string]mockcn.VM{}
	for _, comp := range topo.Components {
		for _, n := range comp.Nodes {
			if v, ok := byID[n.ServerID]; ok {
				out[n.Name] = v
			}
		}
	}
	return out
}

// `straas up --azs az1,az2`: Nova's zones are the configured ones, and a topology in
// az2 lands on az2's compute nodes, spread over its racks.
func TestTopologyLandsOnItsZonesCNs(t *testing.T) {
	e, c := system(t, Config{AZs: []string{"az1", "az2"}, CNs: 2})
	ctx := context.Background()
	nova, err := cloud.Connect(ctx, cloud.Options{AuthURL: e.CloudURL + "/identity/v3", Username: "admin", Password: "admin", Project: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	zones, err := nova.Zones(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"az1", "az2"}; !reflect.DeepEqual(zones, want) {
		t.Fatalf("Nova's availability zones = %v, want %v", zones, want)
	}

	topo := createIn(t, c, "in-az2", "az2")
	if topo.AvailabilityZone != "az2" {
		t.Fatalf("topology availability_zone = %q", topo.AvailabilityZone)
	}
	hosts := hostsOf(t, e.Cloud, topo)
	if len(hosts) != 3 {
		t.Fatalf("found %d of 3 servers in the mock cloud", len(hosts))
	}
	racks := map[string]bool{}
	for name, v := range hosts {
		if v.AZ != "az2" || !strings.HasPrefix(v.Host, "cn-az2-") || !strings.HasPrefix(v.Rack, "az2-") {
			t.Errorf("node %s runs in zone %s on %s (rack %s), want an az2 CN", name, v.AZ, v.Host, v.Rack)
		}
		racks[v.Rack] = true
	}
	if len(racks) < 2 {
		t.Errorf("fault-domain component on racks %v, want both of az2's racks", racks)
	}
	for _, comp := range topo.Components {
		for _, n := range comp.Nodes {
			if n.AvailabilityZone != "az2" || !strings.HasPrefix(n.Hypervisor, "cn-az2-") {
				t.Errorf("node %s: availability_zone %q, hypervisor %q", n.Name, n.AvailabilityZone, n.Hypervisor)
			}
		}
	}
	for _, x := range e.Cloud.CNs() {
		if x.AZ == "az1" && len(x.VMs) > 0 {
			t.Errorf("az1 CN %s has VMs %v", x.Hostname, x.VMs)
		}
	}
}

// --zone az3=<another cloud>: a topology in az3 is created in that cloud, not in the
// in-process mock.
func TestZoneServedByAnotherCloud(t *testing.T) {
	// The other cloud: a second mock cloud on its own listener, its agents on the
	// embedded queue (as a mockcn binary's agents would be on SQS). It needs the queue,
	// so it is built after the control plane; zones connect lazily.
	other := &lateCloud{}
	srv := httptest.NewServer(other)
	t.Cleanup(srv.Close)
	e, c := system(t, Config{AZs: []string{"az1"}, CNs: 2,
		Zones: map[string]cloud.Options{"az3": {AuthURL: srv.URL + "/identity/v3", Username: "admin", Password: "admin", Project: "admin"}}})
	push := NewFleetPush(e.Queue, 0)
	fc := agent.FleetConfig{}
	push.Configure(&fc)
	cl, err := mockcn.New(mockcn.Config{Root: t.TempDir(), AZs: []string{"az3"}, CNsPerAZ: 2, Queue: push.Queue(), Fleet: fc,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PublicURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	push.Bind(cl.Fleet())
	other.set(cl)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{}, 2)
	go func() { _ = cl.Run(ctx); ran <- struct{}{} }()
	go func() { _ = push.Run(ctx); ran <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-ran; <-ran })

	topo := createIn(t, c, "in-az3", "az3")
	hosts := hostsOf(t, cl, topo)
	if len(hosts) != 3 {
		t.Fatalf("found %d of 3 servers in az3's cloud", len(hosts))
	}
	for name, v := range hosts {
		if v.AZ != "az3" || !strings.HasPrefix(v.Host, "cn-az3-") {
			t.Errorf("node %s runs in %s on %s, want an az3 CN", name, v.AZ, v.Host)
		}
	}
	if n := len(e.Cloud.VMs()); n != 0 {
		t.Errorf("the in-process mock cloud has %d servers, want none", n)
	}
}

// lateCloud serves a mock cloud set after the listener exists (503 before).
type lateCloud struct{ h atomic.Value } // http.Handler

func (l *lateCloud) set(c *mockcn.Cloud) { l.h.Store(c.Handler()) }

func (l *lateCloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, _ := l.h.Load().(http.Handler)
	if h == nil {
		http.Error(w, "not yet", http.StatusServiceUnavailable)
		return
	}
	h.ServeHTTP(w, r)
}
