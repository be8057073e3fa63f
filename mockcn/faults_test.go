package mockcn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/straas/straas/agent"
	"github.com/straas/straas/agent/agenttest"
	"github.com/straas/straas/agent/dummy"
	"github.com/straas/straas/mockcn"
	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/queue"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeEnv runs a cloud on a fake clock with one fleet worker, so that Sync is a barrier.
type fakeEnv struct {
	*env
	clk *clock.Fake
}

func startFake(t *testing.T) *fakeEnv {
	t.Helper()
	clk := clock.NewFake(t0)
	q := agenttest.NewMemQueue(clk)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := q.Ensure(ctx, queue.Status); err != nil {
		t.Fatal(err)
	}
	zero := 0.0
	e := startWith(t, ctx, mockcn.Config{
		Root: t.TempDir(), AZs: []string{"az1"}, CNsPerAZ: 2, Queue: q, Clock: clk, Logger: quiet,
		Fleet: agent.FleetConfig{Workers: 1},
		Knobs: dummy.Knobs{Jitter: &zero},
	})
	e.q, e.col = q, &agenttest.Collector{Q: q}
	return &fakeEnv{env: e, clk: clk}
}

func (f *fakeEnv) sync() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
	defer cancel()
	if err := f.cloud.Fleet().Sync(ctx); err != nil {
		f.t.Fatal(err)
	}
}

// boot creates a server for node and lets it become ACTIVE.
func (f *fakeEnv) boot(c *gophercloud.ServiceClient, node string) string {
	f.t.Helper()
	if err := f.q.Ensure(f.ctx, queue.NodeQueue(node)); err != nil {
		f.t.Fatal(err)
	}
	s := f.create(c, servers.CreateOpts{Name: node, UserData: mockcn.NewUserData(node, "v1").JSON()}, nil)
	f.sync()
	f.clk.Advance(100 * time.Millisecond)
	f.waitStatus(c, s.ID, mockcn.StatusActive)
	return s.ID
}

func (f *fakeEnv) waitAgent(vm, state string) {
	f.t.Helper()
	end := time.Now().Add(5 * time.Second)
	for v, _ := f.cloud.GetVM(vm); v.Agent != state; v, _ = f.cloud.GetVM(vm) {
		if time.Now().After(end) {
			f.t.Fatalf("agent of %s is %q, want %q", vm, v.Agent, state)
		}
		time.Sleep(time.Millisecond) // polling interval
	}
}

func (f *fakeEnv) waitMsgs(what string, pred func([]agentproto.Envelope) bool) []agentproto.Envelope {
	f.t.Helper()
	got, ok := f.col.WaitFor(f.ctx, 5*time.Second, pred)
	if !ok {
		f.t.Fatalf("timed out waiting for %s; have %d messages", what, len(got))
	}
	return got
}

func countOf(typ string, n int) func([]agentproto.Envelope) bool {
	return func(e []agentproto.Envelope) bool { return agenttest.Count(e, typ) >= n }
}

func (f *fakeEnv) heartbeats() int {
	f.sync()
	got, _ := f.col.Poll(f.ctx)
	return agenttest.Count(got, agentproto.TypeHeartbeat)
}

// command sends a command and waits until an agent has received it, so that the clock
// is advanced only once its work is scheduled.
func (f *fakeEnv) command(node string, c agentproto.Command) {
	f.t.Helper()
	before := f.cloud.Fleet().Stats().Commands
	if err := f.q.Send(f.ctx, queue.NodeQueue(node), agenttest.Command(f.t, node, c)); err != nil {
		f.t.Fatal(err)
	}
	end := time.Now().Add(5 * time.Second)
	for f.cloud.Fleet().Stats().Commands == before {
		if time.Now().After(end) {
			f.t.Fatalf("command %s not received", c.ID)
		}
		time.Sleep(time.Millisecond) // polling interval
	}
}

// beat is more than a heartbeat interval with its jitter.
const beat = 12 * time.Second

func resultOf(envs []agentproto.Envelope, id string) *agentproto.Result {
	for _, r := range agenttest.Results(envs) {
		if r.CommandID == id {
			return &r
		}
	}
	return nil
}

func TestCNDownSilencesAgents(t *testing.T) {
	f := startFake(t)
	demo := f.compute("demo")
	id := f.boot(demo, "n1")
	f.waitMsgs("first heartbeat", countOf(agentproto.TypeHeartbeat, 1))
	vm, _ := f.cloud.GetVM(id)
	if err := f.cloud.SetCNDown(vm.CN, true); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.cloud.GetVM(id); v.Agent != "silent" {
		t.Fatalf("agent on a down CN is %q", v.Agent)
	}
	f.clk.Advance(30 * time.Second)
	if n := f.heartbeats(); n != 1 {
		t.Fatalf("%d heartbeats from a down CN, want 1", n)
	}
	// Nova keeps the server; the admin sees its host down.
	admin := f.compute("admin")
	admin.Microversion = "2.16"
	s, err := servers.Get(f.ctx, admin, id).Extract()
	if err != nil || s.Status != mockcn.StatusActive {
		t.Fatalf("server on a down CN: %+v, %v", s, err)
	}
	var raw struct {
		HostStatus string `json:"host_status"`
	}
	if err := servers.Get(f.ctx, admin, id).ExtractInto(&raw); err != nil || raw.HostStatus != "DOWN" {
		t.Fatalf("host_status = %q, %v", raw.HostStatus, err)
	}
	// Nothing new lands on it.
	other := f.create(demo, servers.CreateOpts{Name: "x"}, nil)
	if v, _ := f.cloud.GetVM(other.ID); v.CN == vm.CN {
		t.Fatal("placed on a down CN")
	}
	if err := f.cloud.SetCNDown(vm.CN, false); err != nil {
		t.Fatal(err)
	}
	f.sync()
	f.clk.Advance(beat)
	f.waitMsgs("heartbeats again", countOf(agentproto.TypeHeartbeat, 2))
}

func TestAgentFaultsThroughTheCloud(t *testing.T) {
	f := startFake(t)
	demo := f.compute("demo")
	id := f.boot(demo, "n1")
	f.waitMsgs("hello", countOf(agentproto.TypeHello, 1))

	// Install failure of one version on this node only.
	if err := f.cloud.SetAgentKnobs(id, &dummy.Knobs{FailInstall: []dummy.Package{{Name: "kafka", Version: "0.8"}}}); err != nil {
		t.Fatal(err)
	}
	f.command("n1", agentproto.Command{ID: "bad", Kind: agentproto.CmdInstall, Type: "kafka", Version: "0.8"})
	f.sync()
	f.clk.Advance(time.Second)
	got := f.waitMsgs("install result", func(e []agentproto.Envelope) bool { return resultOf(e, "bad") != nil })
	if r := resultOf(got, "bad"); r.OK || r.Code != agentproto.InstallFailure {
		t.Fatalf("failed install = %+v", r)
	}

	// Slow: 100x the default install time (40ms) is 4s.
	if err := f.cloud.SetAgentKnobs(id, &dummy.Knobs{Slow: 100}); err != nil {
		t.Fatal(err)
	}
	f.command("n1", agentproto.Command{ID: "slow", Kind: agentproto.CmdInstall, Type: "kafka", Version: "3.7"})
	f.sync()
	f.clk.Advance(3 * time.Second)
	f.sync()
	if got, _ := f.col.Poll(f.ctx); resultOf(got, "slow") != nil {
		t.Fatal("slow install finished early")
	}
	f.clk.Advance(2 * time.Second)
	f.waitMsgs("slow result", func(e []agentproto.Envelope) bool { return resultOf(e, "slow") != nil })
	if err := f.cloud.SetAgentKnobs(id, nil); err != nil {
		t.Fatal(err)
	}

	// Silent: no heartbeats; the result of a command sent meanwhile comes after.
	if err := f.cloud.SetAgentSilent(id, true); err != nil {
		t.Fatal(err)
	}
	before := f.heartbeats()
	received := f.cloud.Fleet().Stats().Commands
	if err := f.q.Send(f.ctx, queue.NodeQueue("n1"), agenttest.Command(t, "n1", agentproto.Command{ID: "quiet", Kind: agentproto.CmdSyncScripts, Ref: "v2"})); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(20 * time.Second)
	if n := f.heartbeats(); n != before {
		t.Fatalf("silent agent heartbeated (%d -> %d)", before, n)
	}
	if n := f.cloud.Fleet().Stats().Commands; n != received {
		t.Fatal("silent agent received a command")
	}
	if err := f.cloud.SetAgentSilent(id, false); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(5 * time.Second); f.cloud.Fleet().Stats().Commands == received; {
		if time.Now().After(end) {
			t.Fatal("command not received after the silence")
		}
		time.Sleep(time.Millisecond)
	}
	f.clk.Advance(time.Second)
	f.waitMsgs("result after silence", func(e []agentproto.Envelope) bool { return resultOf(e, "quiet") != nil })

	// Agent crash and restart; the VM stays ACTIVE.
	if err := f.cloud.CrashAgent(id); err != nil {
		t.Fatal(err)
	}
	if v, _ := f.cloud.GetVM(id); v.Agent != "crashed" || v.Status != mockcn.StatusActive {
		t.Fatalf("after agent crash: %+v", v)
	}
	before = f.heartbeats()
	f.clk.Advance(20 * time.Second)
	if n := f.heartbeats(); n != before {
		t.Fatal("crashed agent heartbeated")
	}
	if err := f.cloud.RestartAgent(id); err != nil {
		t.Fatal(err)
	}
	f.waitMsgs("hello after restart", countOf(agentproto.TypeHello, 2))
}

func TestServerActions(t *testing.T) {
	f := startFake(t)
	demo := f.compute("demo")
	id := f.boot(demo, "n1")
	f.waitMsgs("hello", countOf(agentproto.TypeHello, 1))
	f.command("n1", agentproto.Command{ID: "i", Kind: agentproto.CmdInstall, Type: "zk", Version: "3.8"})
	f.sync()
	f.clk.Advance(time.Second)
	f.waitMsgs("install", func(e []agentproto.Envelope) bool { return resultOf(e, "i") != nil })

	step := func(name string, act func() error, during, after string, hellos int) {
		t.Helper()
		if err := act(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s, _ := servers.Get(f.ctx, demo, id).Extract(); s.Status != during {
			t.Fatalf("%s: status %s, want %s", name, s.Status, during)
		}
		f.sync()
		f.clk.Advance(100 * time.Millisecond)
		f.waitStatus(demo, id, after)
		f.waitMsgs(name+" hello", countOf(agentproto.TypeHello, hellos))
	}
	step("soft reboot", func() error {
		return servers.Reboot(f.ctx, demo, id, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr()
	}, mockcn.StatusReboot, mockcn.StatusActive, 2)

	// The reboot kept the disk: the agent still reports the install.
	f.clk.Advance(beat)
	got := f.waitMsgs("heartbeat", countOf(agentproto.TypeHeartbeat, 3))
	if last := lastHeartbeat(got); last.Installed != "3.8" {
		t.Fatalf("after reboot: %+v", last)
	}

	// A crash stops the agent; a hard reboot brings both back.
	if err := f.cloud.CrashVM(id, ""); err != nil {
		t.Fatal(err)
	}
	if s, _ := servers.Get(f.ctx, demo, id).Extract(); s.Status != mockcn.StatusShutoff || s.PowerState != 4 {
		t.Fatalf("crashed server: %s/%d", s.Status, s.PowerState)
	}
	if f.cloud.Fleet().Get("n1") != nil {
		t.Fatal("crashed VM's agent still hosted")
	}
	if err := servers.Reboot(f.ctx, demo, id, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr(); !gophercloud.ResponseCodeIs(err, 409) {
		t.Fatalf("soft reboot of a SHUTOFF server: %v, want 409", err)
	}
	step("hard reboot", func() error {
		return servers.Reboot(f.ctx, demo, id, servers.RebootOpts{Type: servers.HardReboot}).ExtractErr()
	}, mockcn.StatusHardReboot, mockcn.StatusActive, 3)

	step("stop", func() error { return servers.Stop(f.ctx, demo, id).ExtractErr() }, mockcn.StatusShutoff, mockcn.StatusShutoff, 3)
	step("start", func() error { return servers.Start(f.ctx, demo, id).ExtractErr() }, mockcn.StatusShutoff, mockcn.StatusActive, 4)

	// Rebuild wipes the disk: the agent starts from nothing.
	step("rebuild", func() error {
		_, err := servers.Rebuild(f.ctx, demo, id, servers.RebuildOpts{ImageRef: "img-2", Name: "n1-rebuilt"}).Extract()
		return err
	}, mockcn.StatusRebuild, mockcn.StatusActive, 5)
	s, _ := servers.Get(f.ctx, demo, id).Extract()
	if s.Image["id"] != "img-2" || s.Name != "n1-rebuilt" {
		t.Fatalf("rebuilt server: %+v", s)
	}
	got = f.waitMsgs("heartbeat after rebuild", countOf(agentproto.TypeHello, 5))
	if last := lastHeartbeat(got); last.Installed != "" {
		t.Fatalf("rebuilt node still reports %q installed", last.Installed)
	}

	// Crash to ERROR: a fault; deletion still works.
	if err := f.cloud.CrashVM(id, mockcn.StatusError); err != nil {
		t.Fatal(err)
	}
	if s, _ := servers.Get(f.ctx, demo, id).Extract(); s.Status != mockcn.StatusError || s.Fault.Message != "Instance crashed" {
		t.Fatalf("crashed to ERROR: %+v", s)
	}
	if err := servers.Delete(f.ctx, demo, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
}

func lastHeartbeat(envs []agentproto.Envelope) *agentproto.Heartbeat {
	var hb *agentproto.Heartbeat
	for _, e := range envs {
		if e.Type == agentproto.TypeHeartbeat {
			hb = e.Heartbeat
		}
	}
	return hb
}

func TestNewServerOfANodeTakesOver(t *testing.T) {
	f := startFake(t)
	demo := f.compute("demo")
	old := f.boot(demo, "n1")
	repl := f.boot(demo, "n1") // a replacement booted before the old one is deleted
	if v, _ := f.cloud.GetVM(old); v.Agent != "none" {
		t.Fatalf("old server's agent is %q", v.Agent)
	}
	f.waitAgent(repl, "up")
	if err := servers.Delete(f.ctx, demo, old).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if a := f.cloud.Fleet().Get("n1"); a == nil || a.ServerID() != repl {
		t.Fatal("deleting the old server stopped the new one's agent")
	}
}

func TestRestartKeepsEverything(t *testing.T) {
	e := start(t, nil)
	demo := e.compute("demo")
	if err := e.q.Ensure(e.ctx, queue.NodeQueue("n1")); err != nil {
		t.Fatal(err)
	}
	g := e.group(demo, "g", "anti-affinity")
	s := e.create(demo, servers.CreateOpts{Name: "n1", UserData: mockcn.NewUserData("n1", "v1").JSON()}, servers.SchedulerHintOpts{Group: g.ID})
	e.waitStatus(demo, s.ID, mockcn.StatusActive)
	e.col.WaitFor(e.ctx, 5*time.Second, countOf(agentproto.TypeHello, 1))
	cns := e.cloud.CNs()

	// A second cloud over the same root (the first one keeps running: it only matters
	// that the files say everything).
	e2 := startWith(t, e.ctx, mockcn.Config{Root: e.root, AZs: []string{"az1", "az2"}, CNsPerAZ: 4, Queue: e.q, Logger: quiet})
	if got := e2.cloud.CNs(); len(got) != len(cns) || got[0].ID != cns[0].ID {
		t.Fatalf("CNs after restart: %d, want %d with the same ids", len(got), len(cns))
	}
	c2, err := e2.compute("demo"), error(nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := servers.Get(e.ctx, c2, s.ID).Extract()
	if err != nil || got.Status != mockcn.StatusActive || got.Name != "n1" {
		t.Fatalf("server after restart: %+v, %v", got, err)
	}
	// Tokens of the first instance are still good (same key on disk).
	old := e.provider("demo")
	c3 := *c2
	c3.ProviderClient = old
	if _, err := servers.Get(e.ctx, &c3, s.ID).Extract(); err != nil {
		t.Fatalf("old token after restart: %v", err)
	}
	// The agent booted again; the group and its member survived.
	if _, ok := e.col.WaitFor(e.ctx, 5*time.Second, countOf(agentproto.TypeHello, 2)); !ok {
		t.Fatal("no hello from the reloaded agent")
	}
	s2 := e.create(c2, servers.CreateOpts{Name: "n2"}, servers.SchedulerHintOpts{Group: g.ID})
	v1, _ := e2.cloud.GetVM(s.ID)
	v2, _ := e2.cloud.GetVM(s2.ID)
	if v1.CN == v2.CN {
		t.Fatal("anti-affinity lost across the restart")
	}
}

func TestAdminAPI(t *testing.T) {
	e := start(t, nil)
	admin, demo := e.provider("admin").TokenID, e.provider("demo").TokenID
	call := func(tok, method, path string, body any, want int) map[string]any {
		t.Helper()
		var rd bytes.Buffer
		if body != nil {
			json.NewEncoder(&rd).Encode(body)
		}
		req, _ := http.NewRequest(method, e.srv.URL+"/mockcn/v1"+path, &rd)
		req.Header.Set("X-Auth-Token", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %v, want %d", method, path, resp.StatusCode, out, want)
		}
		return out
	}
	call(demo, "GET", "/cns", nil, 403)
	call("", "GET", "/cns", nil, 401)
	out := call(admin, "POST", "/cns", map[string]any{"count": 3, "az": "az3", "rack": "r9", "hardware": map[string]int{"cpus": 8, "ram_mb": 16384, "disk_gb": 100}}, 201)
	made := out["cns"].([]any)
	if len(made) != 3 || made[0].(map[string]any)["rack"] != "r9" || made[0].(map[string]any)["hardware"].(map[string]any)["cpus"] != 8.0 {
		t.Fatalf("created = %v", made)
	}
	call(admin, "POST", "/cns", map[string]any{"count": 0}, 400)
	if n := len(call(admin, "GET", "/cns", nil, 200)["cns"].([]any)); n != 11 {
		t.Fatalf("%d CNs, want 11", n)
	}
	cnID := made[0].(map[string]any)["id"].(string)

	// A server in the new zone, then faults on it through the API.
	c := e.compute("demo")
	s := e.create(c, servers.CreateOpts{Name: "v", AvailabilityZone: "az3"}, servers.SchedulerHintOpts{AdditionalProperties: map[string]any{"fault_domain": "r9"}})
	e.waitStatus(c, s.ID, mockcn.StatusActive)
	vm := call(admin, "GET", "/vms/"+s.ID, nil, 200)["vm"].(map[string]any)
	if vm["rack"] != "r9" || vm["availability_zone"] != "az3" {
		t.Fatalf("vm = %v", vm)
	}
	host := vm["cn"].(string)
	call(admin, "DELETE", "/cns/"+host, nil, 409)
	if got := call(admin, "POST", "/racks/r9/down?az=az3", nil, 200)["changed"]; got != 3.0 {
		t.Fatalf("rack down changed %v", got)
	}
	if cn := call(admin, "GET", "/cns/"+host, nil, 200)["cn"].(map[string]any); cn["down"] != true {
		t.Fatalf("cn = %v", cn)
	}
	call(admin, "POST", "/racks/r9/up?az=az3", nil, 200)
	call(admin, "POST", "/racks/nope/down", nil, 404)
	call(admin, "POST", "/vms/"+s.ID+"/crash", map[string]string{"status": "ERROR"}, 204)
	if st, _ := servers.Get(e.ctx, c, s.ID).Extract(); st.Status != mockcn.StatusError {
		t.Fatalf("after crash: %s", st.Status)
	}
	call(admin, "POST", "/vms/"+s.ID+"/crash", map[string]string{"status": "MELTED"}, 400)
	call(admin, "PUT", "/vms/"+s.ID+"/agent", map[string]any{"silent": true}, 409) // no agent runs
	call(admin, "DELETE", "/cns/"+host+"?force=true", nil, 204)
	if _, err := servers.Get(e.ctx, c, s.ID).Extract(); !is404(err) {
		t.Fatalf("server of a force-deleted CN: %v", err)
	}
	call(admin, "DELETE", "/cns/"+cnID, nil, 404)

	set := call(admin, "PUT", "/settings", map[string]any{"boot_latency": map[string]string{"min": "1ms", "max": "2ms"}, "knobs": map[string]any{"slow": 2}}, 200)
	if set["boot_latency"].(map[string]any)["max"] != "2ms" || set["knobs"].(map[string]any)["slow"] != 2.0 {
		t.Fatalf("settings = %v", set)
	}
	call(admin, "PUT", "/settings", map[string]any{"boot_latency": map[string]string{"min": "5ms", "max": "1ms"}}, 400)
	call(admin, "PUT", "/settings", map[string]any{"knobs": map[string]any{"slow": -1}}, 400)
	if e.cloud.Knobs().Slow != 2 || time.Duration(e.cloud.BootLatency().Max) != 2*time.Millisecond {
		t.Fatal("settings not applied")
	}
	stats := call(admin, "GET", "/stats", nil, 200)
	if stats["cns"] != 10.0 {
		t.Fatalf("stats = %v", stats)
	}
}

func TestAdminAgentAPI(t *testing.T) {
	f := startFake(t)
	demo := f.compute("demo")
	id := f.boot(demo, "n1")
	f.waitMsgs("hello", countOf(agentproto.TypeHello, 1))
	tok, _ := f.cloud.Token("admin", "admin", "")
	put := func(body string, want int) {
		t.Helper()
		req, _ := http.NewRequest("PUT", f.srv.URL+"/mockcn/v1/vms/"+id+"/agent", strings.NewReader(body))
		req.Header.Set("X-Auth-Token", tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("PUT agent %s: %d, want %d", body, resp.StatusCode, want)
		}
	}
	put(`{"silent": true}`, 200)
	if v, _ := f.cloud.GetVM(id); v.Agent != "silent" {
		t.Fatalf("agent %q", v.Agent)
	}
	put(`{"silent": false, "knobs": {"crash": ["configure"]}}`, 200)
	f.sync()
	f.command("n1", agentproto.Command{ID: "c", Kind: agentproto.CmdConfigure})
	f.waitAgent(id, "crashed")
	put(`{"knobs": {"slow": -3}}`, 400)
	put(`{"clear_knobs": true}`, 200)
}

func TestExpiredTokenIsRefused(t *testing.T) {
	f := startFake(t)
	demo := f.compute("demo")
	if _, err := servers.List(demo, nil).AllPages(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(time.Hour)
	if _, err := servers.List(demo, nil).AllPages(f.ctx); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
		t.Fatalf("expired token: %v, want 401", err)
	}
	// A fresh token works again.
	if _, err := servers.List(f.compute("demo"), nil).AllPages(f.ctx); err != nil {
		t.Fatal(err)
	}
}
