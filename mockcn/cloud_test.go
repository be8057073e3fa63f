package mockcn_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/straas/straas/agent/agenttest"
	"github.com/straas/straas/mockcn"
	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/queue"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// projects of the default users.
var projects = map[string]string{"admin": "admin", "demo": "demo", "demo2": "demo", "other": "other"}

type env struct {
	t     *testing.T
	ctx   context.Context
	cloud *mockcn.Cloud
	srv   *httptest.Server
	q     *agenttest.MemQueue
	root  string
	col   *agenttest.Collector
}

// start runs a cloud (two AZs of four CNs by default) behind a real HTTP server.
func start(t *testing.T, mut func(*mockcn.Config)) *env {
	t.Helper()
	root := t.TempDir()
	q := agenttest.NewMemQueue(nil)
	ctx, cancel := context.WithCancel(context.Background())
	if err := q.Ensure(ctx, queue.Status); err != nil {
		t.Fatal(err)
	}
	cfg := mockcn.Config{Root: root, AZs: []string{"az1", "az2"}, CNsPerAZ: 4, Queue: q, Logger: quiet}
	if mut != nil {
		mut(&cfg)
	}
	e := startWith(t, ctx, cfg)
	e.q = q
	e.col = &agenttest.Collector{Q: q}
	t.Cleanup(cancel)
	return e
}

func startWith(t *testing.T, ctx context.Context, cfg mockcn.Config) *env {
	t.Helper()
	c, err := mockcn.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return &env{t: t, ctx: ctx, cloud: c, srv: srv, root: cfg.Root}
}

func (e *env) provider(user string) *gophercloud.ProviderClient {
	e.t.Helper()
	p, err := openstack.AuthenticatedClient(e.ctx, gophercloud.AuthOptions{
		IdentityEndpoint: e.srv.URL + "/identity/v3", Username: user, Password: user,
		TenantName: projects[user], DomainName: "Default",
	})
	if err != nil {
		e.t.Fatalf("authenticate %s: %v", user, err)
	}
	return p
}

func (e *env) compute(user string) *gophercloud.ServiceClient {
	e.t.Helper()
	c, err := openstack.NewComputeV2(e.provider(user), gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) create(c *gophercloud.ServiceClient, opts servers.CreateOpts, hints servers.SchedulerHintOptsBuilder) *servers.Server {
	e.t.Helper()
	if opts.FlavorRef == "" {
		opts.FlavorRef = "102" // small
	}
	if opts.ImageRef == "" {
		opts.ImageRef = "img-ubuntu"
	}
	s, err := servers.Create(e.ctx, c, opts, hints).Extract()
	if err != nil {
		e.t.Fatalf("create %s: %v", opts.Name, err)
	}
	return s
}

// waitStatus polls a server through gophercloud until it has status.
func (e *env) waitStatus(c *gophercloud.ServiceClient, id, status string) *servers.Server {
	e.t.Helper()
	end := time.Now().Add(10 * time.Second)
	for {
		s, err := servers.Get(e.ctx, c, id).Extract()
		if err != nil {
			e.t.Fatalf("get %s: %v", id, err)
		}
		if s.Status == status {
			return s
		}
		if time.Now().After(end) {
			e.t.Fatalf("server %s is %s, want %s", id, s.Status, status)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

func is404(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusNotFound) }

func TestKeystoneThroughGophercloud(t *testing.T) {
	e := start(t, nil)
	for _, user := range []string{"admin", "demo", "demo2", "other"} {
		p := e.provider(user)
		if p.TokenID == "" {
			t.Fatalf("%s: no token", user)
		}
	}
	// A versionless endpoint is discovered.
	if _, err := openstack.AuthenticatedClient(e.ctx, gophercloud.AuthOptions{IdentityEndpoint: e.srv.URL + "/identity", Username: "demo", Password: "demo", TenantName: "demo", DomainName: "Default"}); err != nil {
		t.Fatalf("versionless endpoint: %v", err)
	}
	// Bad credentials, unknown project, a project the user has no role on.
	for _, o := range []gophercloud.AuthOptions{
		{Username: "demo", Password: "wrong", TenantName: "demo", DomainName: "Default"},
		{Username: "nobody", Password: "x", TenantName: "demo", DomainName: "Default"},
		{Username: "demo", Password: "demo", TenantName: "nope", DomainName: "Default"},
		{Username: "demo", Password: "demo", TenantName: "other", DomainName: "Default"},
	} {
		o.IdentityEndpoint = e.srv.URL + "/identity/v3"
		_, err := openstack.AuthenticatedClient(e.ctx, o)
		if !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Fatalf("auth %s/%s on %s: %v, want 401", o.Username, o.Password, o.TenantName, err)
		}
	}
}

func TestServerLifecycle(t *testing.T) {
	e := start(t, nil)
	demo := e.compute("demo")
	created := e.create(demo, servers.CreateOpts{
		Name: "zk-1", AvailabilityZone: "az2", Metadata: map[string]string{"topology": "t1", "role": "zookeeper"},
		UserData: mockcn.NewUserData("node-zk-1", "v1").JSON(),
	}, nil)
	if created.ID == "" || created.AdminPass == "" {
		t.Fatalf("create response = %+v", created)
	}
	s, err := servers.Get(e.ctx, demo, created.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != mockcn.StatusBuild && s.Status != mockcn.StatusActive {
		t.Fatalf("new server is %s", s.Status)
	}
	s = e.waitStatus(demo, created.ID, mockcn.StatusActive)
	if s.Name != "zk-1" || s.AvailabilityZone != "az2" || s.Flavor["id"] != "102" || s.Image["id"] != "img-ubuntu" ||
		s.Metadata["role"] != "zookeeper" || s.HostID == "" || s.LaunchedAt.IsZero() || s.Created.IsZero() || s.PowerState != 1 {
		t.Fatalf("active server = %+v", s)
	}
	if s.Host != "" {
		t.Fatalf("a member sees the host %q (admin only)", s.Host)
	}
	addrs := s.Addresses["private"].([]any)
	ip := addrs[0].(map[string]any)["addr"].(string)
	if !strings.HasPrefix(ip, "10.") {
		t.Fatalf("address %q", ip)
	}
	// The admin sees where it runs; its files are where seed 003 puts them.
	admin := e.compute("admin")
	as, err := servers.Get(e.ctx, admin, created.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(as.Host, "cn-az2-") || as.HypervisorHostname != as.Host {
		t.Fatalf("admin view host = %q", as.Host)
	}
	vm, _ := e.cloud.GetVM(created.ID)
	vmFile := filepath.Join(e.root, "servers", vm.CN, "vms", created.ID+".json")
	var onDisk map[string]any
	raw, err := os.ReadFile(vmFile)
	if err != nil || json.Unmarshal(raw, &onDisk) != nil || onDisk["nova_status"] != "ACTIVE" || onDisk["alias"] != "zk-1" {
		t.Fatalf("VM file %s: %s %v", vmFile, raw, err)
	}
	var sysinfo map[string]any
	raw, err = os.ReadFile(filepath.Join(e.root, "servers", vm.CN, "sysinfo.json"))
	if err != nil || json.Unmarshal(raw, &sysinfo) != nil || sysinfo["System Type"] != "Virtual" || sysinfo["UUID"] != vm.CN || sysinfo["Admin IP"] == "" || sysinfo["Agent IP"] == "" {
		t.Fatalf("sysinfo: %s %v", raw, err)
	}

	// Lists: simple and detailed, filtered by name (a regex, as Nova) and status.
	e.create(demo, servers.CreateOpts{Name: "kafka-1"}, nil)
	for _, tc := range []struct {
		opts servers.ListOpts
		want int
	}{
		{servers.ListOpts{}, 2},
		{servers.ListOpts{Name: "^zk-"}, 1},
		{servers.ListOpts{Name: "-1$"}, 2},
		{servers.ListOpts{Name: "zk", Status: "ACTIVE"}, 1},
		{servers.ListOpts{Status: "ERROR"}, 0},
		{servers.ListOpts{AvailabilityZone: "az2", Name: "zk"}, 1},
	} {
		pages, err := servers.List(demo, tc.opts).AllPages(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := servers.ExtractServers(pages)
		pages, err = servers.ListSimple(demo, tc.opts).AllPages(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		simple, _ := servers.ExtractServers(pages)
		if len(got) != tc.want || len(simple) != tc.want {
			t.Fatalf("list %+v: %d detailed, %d simple, want %d", tc.opts, len(got), len(simple), tc.want)
		}
	}

	// Delete: the server disappears with its files.
	if err := servers.Delete(e.ctx, demo, created.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := servers.Get(e.ctx, demo, created.ID).Extract(); !is404(err) {
		t.Fatalf("get after delete: %v, want 404", err)
	}
	if err := servers.Delete(e.ctx, demo, created.ID).ExtractErr(); !is404(err) {
		t.Fatalf("second delete: %v, want 404", err)
	}
	if _, err := os.Stat(vmFile); !os.IsNotExist(err) {
		t.Fatalf("VM file still there: %v", err)
	}
}

func TestNovaErrors(t *testing.T) {
	e := start(t, nil)
	demo := e.compute("demo")
	tests := []struct {
		name string
		opts servers.CreateOpts
		code int
		msg  string
	}{
		{"unknown flavor", servers.CreateOpts{Name: "x", FlavorRef: "nope", ImageRef: "i"}, 400, "Flavor nope could not be found."},
		{"flavor by name", servers.CreateOpts{Name: "x", FlavorRef: "small", ImageRef: "i"}, 400, "could not be found"},
		{"unknown zone", servers.CreateOpts{Name: "x", FlavorRef: "1", ImageRef: "i", AvailabilityZone: "mars"}, 400, "availability zone is not available"},
		{"forced host by a member", servers.CreateOpts{Name: "x", FlavorRef: "1", ImageRef: "i", AvailabilityZone: "az1:cn-az1-0001"}, 403, "Policy doesn't allow"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := servers.Create(e.ctx, demo, tc.opts, nil).Extract()
			var ue gophercloud.ErrUnexpectedResponseCode
			if !errors.As(err, &ue) || ue.Actual != tc.code || !strings.Contains(string(ue.Body), tc.msg) {
				t.Fatalf("err = %v, want %d ~%q", err, tc.code, tc.msg)
			}
		})
	}
	// A missing server: Nova's error body.
	_, err := servers.Get(e.ctx, demo, "00000000-0000-0000-0000-000000000000").Extract()
	var ue gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &ue) || ue.Actual != 404 {
		t.Fatalf("get missing: %v", err)
	}
	var body map[string]map[string]any
	if json.Unmarshal(ue.Body, &body) != nil || body["itemNotFound"]["code"] != 404.0 || !strings.Contains(body["itemNotFound"]["message"].(string), "could not be found") {
		t.Fatalf("404 body = %s", ue.Body)
	}
	// Bad user data.
	_, err = servers.Create(e.ctx, demo, rawUserData{servers.CreateOpts{Name: "x", FlavorRef: "1", ImageRef: "i"}, "***"}, nil).Extract()
	if !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("bad user data: %v", err)
	}
	// No token.
	resp, err := http.Get(e.srv.URL + "/compute/v2.1/servers")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
}

// rawUserData sends user_data verbatim.
type rawUserData struct {
	servers.CreateOpts
	ud string
}

func (r rawUserData) ToServerCreateMap() (map[string]any, error) {
	m, err := r.CreateOpts.ToServerCreateMap()
	if err == nil {
		m["server"].(map[string]any)["user_data"] = r.ud
	}
	return m, err
}

func TestTenancy(t *testing.T) {
	e := start(t, nil)
	demo, demo2, other, admin := e.compute("demo"), e.compute("demo2"), e.compute("other"), e.compute("admin")
	s := e.create(demo, servers.CreateOpts{Name: "mine"}, nil)
	if _, err := servers.Get(e.ctx, demo2, s.ID).Extract(); err != nil {
		t.Fatalf("same project: %v", err)
	}
	if _, err := servers.Get(e.ctx, other, s.ID).Extract(); !is404(err) {
		t.Fatalf("other project sees it: %v", err)
	}
	if err := servers.Delete(e.ctx, other, s.ID).ExtractErr(); !is404(err) {
		t.Fatalf("other project deletes it: %v", err)
	}
	count := func(c *gophercloud.ServiceClient, o servers.ListOpts) int {
		pages, err := servers.List(c, o).AllPages(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := servers.ExtractServers(pages)
		return len(got)
	}
	if n := count(other, servers.ListOpts{}); n != 0 {
		t.Fatalf("other lists %d", n)
	}
	if n := count(other, servers.ListOpts{AllTenants: true}); n != 0 {
		t.Fatalf("other lists %d with all_tenants", n)
	}
	if n := count(admin, servers.ListOpts{}); n != 0 {
		t.Fatalf("admin lists %d of its own", n)
	}
	if n := count(admin, servers.ListOpts{AllTenants: true}); n != 1 {
		t.Fatalf("admin lists %d with all_tenants", n)
	}
	if _, err := servers.Get(e.ctx, admin, s.ID).Extract(); err != nil {
		t.Fatalf("admin get: %v", err)
	}
}

func TestPagination(t *testing.T) {
	e := start(t, nil)
	demo := e.compute("demo")
	for i := 0; i < 7; i++ {
		e.create(demo, servers.CreateOpts{Name: "p"}, nil)
	}
	var pages, total int
	err := servers.List(demo, servers.ListOpts{Limit: 3}).EachPage(e.ctx, func(ctx context.Context, p pagination.Page) (bool, error) {
		got, err := servers.ExtractServers(p)
		pages++
		total += len(got)
		return true, err
	})
	if err != nil || total != 7 || pages < 3 {
		t.Fatalf("paged list: %d servers in %d pages, err %v", total, pages, err)
	}
}

func TestUserDataReachesAgent(t *testing.T) {
	e := start(t, nil)
	demo := e.compute("demo")
	if err := e.q.Ensure(e.ctx, queue.NodeQueue("n-7")); err != nil {
		t.Fatal(err)
	}
	ud := mockcn.NewUserData("n-7", "scripts-v3")
	ud.LeaseSeconds = 30
	s := e.create(demo, servers.CreateOpts{Name: "Kafka_Broker.1", UserData: ud.JSON()}, nil)
	got, ok := e.col.WaitFor(e.ctx, 5*time.Second, func(envs []agentproto.Envelope) bool {
		return agenttest.Count(envs, agentproto.TypeHeartbeat) >= 1
	})
	if !ok {
		t.Fatal("no hello and heartbeat from the agent")
	}
	hello := got[0]
	vm, _ := e.cloud.GetVM(s.ID)
	if hello.Type != agentproto.TypeHello || hello.Node != "n-7" || hello.Hello.ServerID != s.ID || hello.Hello.Hostname != "kafka-broker-1" || hello.Hello.IPs[0] != vm.IP {
		t.Fatalf("hello = %+v %+v", hello, hello.Hello)
	}
	if hb := got[1].Heartbeat; hb.ScriptsRef != "scripts-v3" || hb.LeaseSeconds != 30 {
		t.Fatalf("heartbeat = %+v", got[1].Heartbeat)
	}
	if vm.Agent != "up" || vm.NodeID != "n-7" {
		t.Fatalf("vm = %+v", vm)
	}
	// Commands reach it through its node queue; its state lives in the VM's directory.
	cmd := agentproto.Command{ID: "c1", Kind: agentproto.CmdInstall, Reply: "tok", Type: "kafka", Version: "3.7.0"}
	if err := e.q.Send(e.ctx, queue.NodeQueue("n-7"), agenttest.Command(t, "n-7", cmd)); err != nil {
		t.Fatal(err)
	}
	got, ok = e.col.WaitFor(e.ctx, 5*time.Second, func(envs []agentproto.Envelope) bool { return len(agenttest.Results(envs)) == 1 })
	if !ok {
		t.Fatal("no result")
	}
	if r := agenttest.Results(got)[0]; !r.OK || r.Code != agentproto.InstallSuccess || r.Reply != "tok" {
		t.Fatalf("result = %+v", r)
	}
	state, err := os.ReadFile(filepath.Join(e.root, "servers", vm.CN, "vms", s.ID, "state.json"))
	if err != nil || !strings.Contains(string(state), `"version": "3.7.0"`) {
		t.Fatalf("agent state file: %s %v", state, err)
	}
	// Deleting the server stops its agent.
	if err := servers.Delete(e.ctx, demo, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if e.cloud.Fleet().Get("n-7") != nil {
		t.Fatal("agent of a deleted server still in the fleet")
	}
}

func TestMount(t *testing.T) {
	c, err := mockcn.New(mockcn.Config{Root: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/straas/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	c.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for path, want := range map[string]int{"/identity": 300, "/identity/v3": 200, "/compute": 200, "/compute/v2.1/": 200, "/mockcn/v1/cns": 401, "/straas/x": 418} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
