package agent_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/straas/straas/agent"
	"github.com/straas/straas/agent/dummy"
	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/queue"
)

func TestLeaseFlags(t *testing.T) {
	base := agentproto.Heartbeat{Services: map[string]string{"zookeeper": "running", "exporter": "running"}, Installed: "3.8.4",
		ConfigRef: "c1", ScriptsRef: "s1", Metrics: map[string]float64{"cpu": 3}}
	with := func(f func(*agentproto.Heartbeat)) agentproto.Heartbeat {
		hb := base
		hb.Services = map[string]string{}
		for k, v := range base.Services {
			hb.Services[k] = v
		}
		f(&hb)
		return hb
	}
	type beat struct {
		at              time.Duration // since the first heartbeat
		hb              agentproto.Heartbeat
		renew, changed  bool
		resetBeforeBeat bool
	}
	tests := []struct {
		name   string
		period time.Duration
		beats  []beat
	}{
		{"renews first, then once a period", 30 * time.Second, []beat{
			{0, base, true, false, false},
			{10 * time.Second, base, false, false, false},
			{29 * time.Second, base, false, false, false},
			{30 * time.Second, base, true, false, false},
			{59 * time.Second, base, false, false, false},
			{61 * time.Second, base, true, false, false},
		}},
		{"default period is a minute", 0, []beat{
			{0, base, true, false, false},
			{59 * time.Second, base, false, false, false},
			{60 * time.Second, base, true, false, false},
		}},
		{"metrics are not a change", time.Minute, []beat{
			{0, base, true, false, false},
			{10 * time.Second, with(func(h *agentproto.Heartbeat) { h.Metrics = map[string]float64{"cpu": 97} }), false, false, false},
		}},
		{"each field is a change, and so is going back", time.Minute, []beat{
			{0, base, true, false, false},
			{1 * time.Second, with(func(h *agentproto.Heartbeat) { h.Services["zookeeper"] = "stopped" }), false, true, false},
			{2 * time.Second, base, false, true, false},
			{3 * time.Second, with(func(h *agentproto.Heartbeat) { delete(h.Services, "exporter") }), false, true, false},
			{4 * time.Second, with(func(h *agentproto.Heartbeat) { h.Services["new"] = "running" }), false, true, false},
			{5 * time.Second, with(func(h *agentproto.Heartbeat) { h.Installed = "3.9.0" }), false, true, false},
			{6 * time.Second, with(func(h *agentproto.Heartbeat) { h.ConfigRef = "c2" }), false, true, false},
			{7 * time.Second, with(func(h *agentproto.Heartbeat) { h.ScriptsRef = "s2" }), false, true, false},
			{8 * time.Second, with(func(h *agentproto.Heartbeat) { h.Maintenance = true }), false, true, false},
			{9 * time.Second, with(func(h *agentproto.Heartbeat) { h.Maintenance = true }), false, false, false},
		}},
		{"a value moving between fields is a change", time.Minute, []beat{
			{0, with(func(h *agentproto.Heartbeat) { h.ConfigRef, h.ScriptsRef = "x", "" }), true, false, false},
			{1 * time.Second, with(func(h *agentproto.Heartbeat) { h.ConfigRef, h.ScriptsRef = "", "x" }), false, true, false},
		}},
		{"a stored change restarts the period", 30 * time.Second, []beat{
			{0, base, true, false, false},
			{20 * time.Second, with(func(h *agentproto.Heartbeat) { h.ConfigRef = "c2" }), false, true, false},
			{30 * time.Second, with(func(h *agentproto.Heartbeat) { h.ConfigRef = "c2" }), false, false, false},
			{50 * time.Second, with(func(h *agentproto.Heartbeat) { h.ConfigRef = "c2" }), true, false, false},
		}},
		{"a boot renews at once and compares with nothing", time.Minute, []beat{
			{0, base, true, false, false},
			{10 * time.Second, with(func(h *agentproto.Heartbeat) { h.Installed = "" }), true, false, true},
			{20 * time.Second, with(func(h *agentproto.Heartbeat) { h.Installed = "" }), false, false, false},
		}},
	}
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := agent.Lease{Period: tc.period}
			want := tc.period
			if want == 0 {
				want = agent.DefaultLease
			}
			for i, b := range tc.beats {
				if b.resetBeforeBeat {
					l.Reset()
				}
				hb := b.hb
				l.Stamp(t0.Add(b.at), &hb)
				if hb.Renew != b.renew || hb.Changed != b.changed {
					t.Errorf("beat %d at %v: got renew=%v changed=%v, want %v %v", i, b.at, hb.Renew, hb.Changed, b.renew, b.changed)
				}
				if hb.LeaseSeconds != int(want/time.Second) {
					t.Errorf("beat %d: lease_seconds %d, want %d", i, hb.LeaseSeconds, int(want/time.Second))
				}
			}
		})
	}
}

// The fleet's agents stamp their heartbeats: a renewal at boot and once per lease
// period, a change when a command changed what the node reports, a renewal again after
// a restart.
func TestHeartbeatsCarryLeaseFlags(t *testing.T) {
	h := newHarness(t, true)
	if err := h.q.Ensure(h.ctx, queue.NodeQueue("n1")); err != nil {
		t.Fatal(err)
	}
	b, err := dummy.New(dummy.Config{Dir: filepath.Join(t.TempDir(), "n1"), Hostname: "n1.mock", IPs: []string{"10.0.0.1"}, ScriptsRef: "v1",
		Profile: dummy.NewProfile(instant())})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{NodeID: "n1", Backend: b, Clock: h.clk, Logger: quiet, HeartbeatJitter: -1,
		HeartbeatInterval: 10 * time.Second, LeasePeriod: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.f.Add(a); err != nil {
		t.Fatal(err)
	}
	beats := func(n int) []*agentproto.Heartbeat {
		t.Helper()
		got := h.wait("heartbeats", count(agentproto.TypeHeartbeat, n))
		var out []*agentproto.Heartbeat
		for _, e := range got {
			if e.Type == agentproto.TypeHeartbeat {
				out = append(out, e.Heartbeat)
			}
		}
		return out
	}
	beats(1)
	for i := 2; i <= 7; i++ { // 0 s ... 60 s
		h.clk.Advance(10 * time.Second)
		beats(i)
	}
	h.send("n1", agentproto.Command{ID: "sync", Kind: agentproto.CmdSyncScripts, Ref: "v2"})
	h.wait("sync result", hasResult("sync", 1))
	h.clk.Advance(10 * time.Second) // 70 s: scripts v2
	beats(8)
	if err := h.f.Crash("n1"); err != nil {
		t.Fatal(err)
	}
	if err := h.f.Restart("n1", 0); err != nil {
		t.Fatal(err)
	}
	got := beats(9)
	want := []struct{ renew, changed bool }{
		{true, false}, {false, false}, {false, false}, {true, false}, {false, false}, {false, false}, {true, false},
		{false, true}, // the synced scripts
		{true, false}, // after the restart
	}
	for i, w := range want {
		hb := got[i]
		if hb.Renew != w.renew || hb.Changed != w.changed || hb.LeaseSeconds != 30 {
			t.Errorf("heartbeat %d (seq %d, scripts %s): renew=%v changed=%v lease=%d; want %v %v 30",
				i+1, hb.Seq, hb.ScriptsRef, hb.Renew, hb.Changed, hb.LeaseSeconds, w.renew, w.changed)
		}
	}
}
