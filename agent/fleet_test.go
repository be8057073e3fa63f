package agent_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straas/straas/agent"
	"github.com/straas/straas/agent/agenttest"
	"github.com/straas/straas/agent/dummy"
	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
)

var (
	t0    = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
)

type harness struct {
	t   *testing.T
	ctx context.Context
	clk *clock.Fake
	q   *agenttest.MemQueue
	f   *agent.Fleet
	col *agenttest.Collector
}

// newHarness runs a fleet with one worker (so Sync is a full barrier) on a fake clock.
func newHarness(t *testing.T, push bool) *harness {
	t.Helper()
	return newHarnessWith(t, push, agent.FleetConfig{})
}

func newHarnessWith(t *testing.T, push bool, fc agent.FleetConfig) *harness {
	t.Helper()
	clk := clock.NewFake(t0)
	q := agenttest.NewMemQueue(clk)
	var qq queue.Queue = q
	if !push {
		qq = agenttest.NoPush{Queue: q}
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := q.Ensure(ctx, queue.Status); err != nil {
		t.Fatal(err)
	}
	fc.Queue, fc.Clock, fc.Logger, fc.Workers, fc.Pollers, fc.Senders, fc.PollMin, fc.PollMax = qq, clk, quiet, 1, 2, 1, time.Second, time.Second
	f, err := agent.NewFleet(fc)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &harness{t: t, ctx: ctx, clk: clk, q: q, f: f, col: &agenttest.Collector{Q: q}}
}

func zero() *float64 { z := 0.0; return &z }

// instant knobs: every command completes at once.
func instant() dummy.Knobs {
	d := map[string]dummy.Duration{}
	for k := range dummy.DefaultDurations {
		d[k] = 0
	}
	return dummy.Knobs{Durations: d, Jitter: zero(), Restart: dummy.Duration(time.Second), Reboot: dummy.Duration(3 * time.Second)}
}

func (h *harness) add(id string, k dummy.Knobs) (*agent.Agent, *dummy.Backend) {
	h.t.Helper()
	if err := h.q.Ensure(h.ctx, queue.NodeQueue(id)); err != nil {
		h.t.Fatal(err)
	}
	b, err := dummy.New(dummy.Config{Dir: filepath.Join(h.t.TempDir(), id), Hostname: id + ".mock", IPs: []string{"10.0.0.1"}, ScriptsRef: "v1", Profile: dummy.NewProfile(k)})
	if err != nil {
		h.t.Fatal(err)
	}
	a, err := agent.New(agent.Config{NodeID: id, Backend: b, Clock: h.clk, Logger: quiet, ServerID: "srv-" + id, HeartbeatJitter: -1})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.f.Add(a); err != nil {
		h.t.Fatal(err)
	}
	return a, b
}

func (h *harness) send(id string, c agentproto.Command) {
	h.t.Helper()
	if err := h.q.Send(h.ctx, queue.NodeQueue(id), agenttest.Command(h.t, id, c)); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) wait(what string, pred func([]agentproto.Envelope) bool) []agentproto.Envelope {
	h.t.Helper()
	got, ok := h.col.WaitFor(h.ctx, 5*time.Second, pred)
	if !ok {
		h.t.Fatalf("timed out waiting for %s; got %d messages: %s", what, len(got), describe(got))
	}
	return got
}

func (h *harness) sync() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	if err := h.f.Sync(ctx); err != nil {
		h.t.Fatal(err)
	}
}

func describe(envs []agentproto.Envelope) string {
	var b strings.Builder
	for _, e := range envs {
		b.WriteString(e.Type)
		switch {
		case e.Result != nil:
			b.WriteString("(" + e.Result.CommandID + ":" + e.Result.Code + ":" + e.Result.Error + ")")
		case e.Event != nil:
			b.WriteString("(" + e.Event.Name + ")")
		}
		b.WriteString(" ")
	}
	return b.String()
}

func count(typ string, n int) func([]agentproto.Envelope) bool {
	return func(e []agentproto.Envelope) bool { return agenttest.Count(e, typ) >= n }
}

func resultFor(envs []agentproto.Envelope, id string) []agentproto.Result {
	var out []agentproto.Result
	for _, r := range agenttest.Results(envs) {
		if r.CommandID == id {
			out = append(out, r)
		}
	}
	return out
}

func hasResult(id string, n int) func([]agentproto.Envelope) bool {
	return func(e []agentproto.Envelope) bool { return len(resultFor(e, id)) >= n }
}

func TestBootHelloAndHeartbeats(t *testing.T) {
	h := newHarness(t, true)
	h.add("n1", instant())
	got := h.wait("hello and first heartbeat", count(agentproto.TypeHeartbeat, 1))
	if got[0].Type != agentproto.TypeHello {
		t.Fatalf("first message is %s, want hello", got[0].Type)
	}
	hello := got[0].Hello
	if hello.Hostname != "n1.mock" || hello.ServerID != "srv-n1" || len(hello.IPs) != 1 || hello.AgentVersion != agent.Version {
		t.Fatalf("hello = %+v", hello)
	}
	if got[0].Node != "n1" {
		t.Fatalf("hello from node %q, want n1", got[0].Node)
	}
	for i := 2; i <= 4; i++ {
		h.clk.Advance(agent.DefaultHeartbeat)
		got = h.wait("heartbeat", count(agentproto.TypeHeartbeat, i))
	}
	var seqs []uint64
	for _, e := range got {
		if e.Type == agentproto.TypeHeartbeat {
			seqs = append(seqs, e.Heartbeat.Seq)
			if e.Heartbeat.ScriptsRef != "v1" || e.Heartbeat.Metrics["cpu"] <= 0 {
				t.Fatalf("heartbeat = %+v", e.Heartbeat)
			}
		}
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("heartbeat seqs = %v, want 1,2,3,...", seqs)
		}
	}
	// No heartbeat is due before the interval has passed again.
	h.clk.Advance(agent.DefaultHeartbeat / 2)
	h.sync()
	if got, _ := h.col.Poll(h.ctx); agenttest.Count(got, agentproto.TypeHeartbeat) != 4 {
		t.Fatalf("heartbeats after half an interval = %d, want 4", agenttest.Count(got, agentproto.TypeHeartbeat))
	}
}

func TestCommandLifecycle(t *testing.T) {
	h := newHarness(t, true)
	_, b := h.add("n1", instant())
	h.wait("hello", count(agentproto.TypeHello, 1))

	cmds := []struct {
		cmd      agentproto.Command
		ok       bool
		code     string
		contains string
	}{
		{agentproto.Command{ID: "c0", Kind: agentproto.CmdConfigure, Role: "zookeeper"}, false, agentproto.ConfigFailure, "nothing installed"},
		{agentproto.Command{ID: "c1", Kind: agentproto.CmdInstall, Reply: "tok-1", Role: "zookeeper", Type: "zookeeper", Version: "3.8.4"}, true, agentproto.InstallSuccess, ""},
		{agentproto.Command{ID: "c2", Kind: agentproto.CmdValidate, Role: "zookeeper"}, false, agentproto.ValidateFailure, "not installed and configured"},
		{agentproto.Command{ID: "c3", Kind: agentproto.CmdConfigure, Role: "zookeeper"}, false, agentproto.ConfigFailure, "run pre_configure first"},
		{agentproto.Command{ID: "c4", Kind: agentproto.CmdPreConfigure, Role: "zookeeper", Sections: agentproto.Sections{"zookeeper": {"client_port": 2181.0, "servers": []any{"a", "b"}}}}, true, agentproto.PreConfigSuccess, ""},
		{agentproto.Command{ID: "c5", Kind: agentproto.CmdConfigure, Role: "zookeeper", Ref: "zk@az1&cfg-3"}, true, agentproto.ConfigSuccess, ""},
		{agentproto.Command{ID: "c6", Kind: agentproto.CmdValidate, Role: "zookeeper"}, true, agentproto.ValidateSuccess, ""},
		{agentproto.Command{ID: "c7", Kind: agentproto.CmdStop, Role: "zookeeper"}, true, "", ""},
		{agentproto.Command{ID: "c8", Kind: agentproto.CmdValidate, Role: "zookeeper"}, false, agentproto.ValidateFailure, "stopped"},
		{agentproto.Command{ID: "c9", Kind: agentproto.CmdStart}, true, "", ""},
		{agentproto.Command{ID: "c10", Kind: agentproto.CmdGuest, Command: "zk-cmd/create_namespace", Args: "/kafka"}, true, "", ""},
		{agentproto.Command{ID: "c11", Kind: agentproto.CmdGuest, Command: "../etc/passwd"}, false, "", "not <group>/<name>"},
		{agentproto.Command{ID: "c12", Kind: agentproto.CmdSyncScripts, Ref: "v2"}, true, "", ""},
		{agentproto.Command{ID: "c13", Kind: "frobnicate"}, false, "", "unknown command kind"},
	}
	for _, c := range cmds {
		h.send("n1", c.cmd)
		got := h.wait("result of "+c.cmd.ID, hasResult(c.cmd.ID, 1))
		r := resultFor(got, c.cmd.ID)[0]
		if r.OK != c.ok || r.Code != c.code || r.Kind != c.cmd.Kind || r.Reply != c.cmd.Reply {
			t.Fatalf("%s: result = %+v, want ok=%v code=%q", c.cmd.ID, r, c.ok, c.code)
		}
		if !strings.Contains(r.Error, c.contains) {
			t.Fatalf("%s: error %q does not contain %q", c.cmd.ID, r.Error, c.contains)
		}
	}
	st := b.State()
	if st.Installed == nil || st.Installed.Version != "3.8.4" || st.ConfigRef != "zk@az1&cfg-3" || st.ScriptsRef != "v2" || st.Services["zookeeper"] != "running" || st.LastGuest != "zk-cmd/create_namespace /kafka" {
		t.Fatalf("state = %+v", st)
	}
	pp, err := os.ReadFile(filepath.Join(b.Dir(), "puppet", "manifests", "zookeeper", "site.pp"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pp), "client_port => 2181,") || !strings.Contains(string(pp), `servers => ["a", "b"],`) {
		t.Fatalf("site.pp = %s", pp)
	}
	// Every command was acknowledged once its result was sent.
	waitUntil(t, "command queue drained", func() bool { return h.q.Len(queue.NodeQueue("n1")) == 0 })
	// The next heartbeat reports what is installed and running.
	h.clk.Advance(agent.DefaultHeartbeat)
	got := h.wait("heartbeat", count(agentproto.TypeHeartbeat, 2))
	var hb *agentproto.Heartbeat
	for _, e := range got {
		if e.Type == agentproto.TypeHeartbeat {
			hb = e.Heartbeat
		}
	}
	if hb.Installed != "3.8.4" || hb.Services["zookeeper"] != "running" || hb.ConfigRef != "zk@az1&cfg-3" {
		t.Fatalf("heartbeat = %+v", hb)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestIdempotentOnCommandID(t *testing.T) {
	h := newHarness(t, true)
	_, b := h.add("n1", instant())
	h.wait("hello", count(agentproto.TypeHello, 1))
	cmd := agentproto.Command{ID: "c1", Kind: agentproto.CmdInstall, Reply: "r1", Type: "kafka", Version: "3.7.0"}
	h.send("n1", cmd)
	first := resultFor(h.wait("first result", hasResult("c1", 1)), "c1")[0]
	h.send("n1", cmd) // redelivered
	got := h.wait("second result", hasResult("c1", 2))
	second := resultFor(got, "c1")[1]
	if !reflect.DeepEqual(first, second) {
		t.Fatalf("re-sent result %+v differs from %+v", second, first)
	}
	if n := b.State().Executed; n != 1 {
		t.Fatalf("backend executed %d commands, want 1", n)
	}
}

func TestDuplicateWhileRunningRunsOnce(t *testing.T) {
	h := newHarness(t, true)
	k := instant()
	k.Durations[agentproto.CmdInstall] = dummy.Duration(5 * time.Second)
	_, b := h.add("n1", k)
	h.wait("hello", count(agentproto.TypeHello, 1))
	cmd := agentproto.Command{ID: "c1", Kind: agentproto.CmdInstall, Type: "kafka", Version: "3.7.0"}
	h.send("n1", cmd)
	h.send("n1", cmd)
	// The duplicate is acknowledged (not run, not left for the dead-letter queue) while the
	// first copy stays unacknowledged until its result is sent.
	waitUntil(t, "duplicate acknowledged", func() bool { return h.q.Len(queue.NodeQueue("n1")) == 1 })
	h.clk.Advance(5 * time.Second)
	h.wait("result", hasResult("c1", 1))
	waitUntil(t, "queue drained", func() bool { return h.q.Len(queue.NodeQueue("n1")) == 0 })
	h.sync()
	got, _ := h.col.Poll(h.ctx)
	if n := len(resultFor(got, "c1")); n != 1 {
		t.Fatalf("%d results, want 1", n)
	}
	if n := b.State().Executed; n != 1 {
		t.Fatalf("executed %d, want 1", n)
	}
}

func TestDeadlines(t *testing.T) {
	h := newHarness(t, true)
	k := instant()
	k.Hang = []string{agentproto.CmdValidate}
	k.Durations[agentproto.CmdConfigure] = dummy.Duration(time.Minute)
	_, b := h.add("n1", k)
	h.wait("hello", count(agentproto.TypeHello, 1))

	h.send("n1", agentproto.Command{ID: "late", Kind: agentproto.CmdInstall, Type: "zk", Version: "1", Deadline: t0.Add(-time.Second)})
	r := resultFor(h.wait("late result", hasResult("late", 1)), "late")[0]
	if r.OK || r.Code != agentproto.InstallFailure || !strings.Contains(r.Error, "deadline") {
		t.Fatalf("late command result = %+v", r)
	}

	h.send("n1", agentproto.Command{ID: "hang", Kind: agentproto.CmdValidate, Deadline: t0.Add(30 * time.Second)})
	h.send("n1", agentproto.Command{ID: "slow", Kind: agentproto.CmdConfigure, Deadline: t0.Add(20 * time.Second)})
	waitUntil(t, "both received", func() bool { return h.f.Stats().Commands >= 3 })
	h.clk.Advance(20 * time.Second)
	r = resultFor(h.wait("slow result", hasResult("slow", 1)), "slow")[0]
	if r.OK || r.Code != agentproto.ConfigFailure || !strings.Contains(r.Error, "exceeded") {
		t.Fatalf("slow command result = %+v", r)
	}
	h.clk.Advance(10 * time.Second)
	r = resultFor(h.wait("hang result", hasResult("hang", 1)), "hang")[0]
	if r.OK || r.Code != agentproto.ValidateFailure || !strings.Contains(r.Error, "exceeded") {
		t.Fatalf("hung command result = %+v", r)
	}
	if n := b.State().Executed; n != 0 {
		t.Fatalf("backend executed %d commands past their deadline, want 0", n)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name  string
		knobs func(k *dummy.Knobs)
		cmd   agentproto.Command
		code  string
		exit  int
		err   string
	}{
		{"install failure of a version", func(k *dummy.Knobs) { k.FailInstall = []dummy.Package{{Version: "3.5.0"}} },
			agentproto.Command{ID: "c", Kind: agentproto.CmdInstall, Type: "zookeeper", Version: "3.5.0"}, agentproto.InstallFailure, 100, "'3.5.0' for 'zookeeper' was not found"},
		{"other versions install", func(k *dummy.Knobs) { k.FailInstall = []dummy.Package{{Name: "zookeeper", Version: "3.5.0"}} },
			agentproto.Command{ID: "c", Kind: agentproto.CmdInstall, Type: "zookeeper", Version: "3.8.4"}, agentproto.InstallSuccess, 0, ""},
		{"failing kind", func(k *dummy.Knobs) { k.Fail = map[string]string{agentproto.CmdSyncScripts: "git: connection refused"} },
			agentproto.Command{ID: "c", Kind: agentproto.CmdSyncScripts, Ref: "v2"}, "", 1, "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, true)
			k := instant()
			tc.knobs(&k)
			h.add("n1", k)
			h.wait("hello", count(agentproto.TypeHello, 1))
			h.send("n1", tc.cmd)
			r := resultFor(h.wait("result", hasResult("c", 1)), "c")[0]
			if r.Code != tc.code || r.ExitStatus != tc.exit || !strings.Contains(r.Error, tc.err) || r.OK != (tc.err == "") {
				t.Fatalf("result = %+v, want code %q exit %d error ~%q", r, tc.code, tc.exit, tc.err)
			}
		})
	}
}

func TestSlowFactor(t *testing.T) {
	h := newHarness(t, true)
	k := instant()
	k.Durations[agentproto.CmdInstall] = dummy.Duration(time.Second)
	k.Slow = 10
	h.add("n1", k)
	h.wait("hello", count(agentproto.TypeHello, 1))
	h.send("n1", agentproto.Command{ID: "c", Kind: agentproto.CmdInstall, Type: "zk", Version: "1"})
	waitUntil(t, "received", func() bool { return h.f.Stats().Commands >= 1 })
	h.clk.Advance(9 * time.Second)
	h.sync()
	if got, _ := h.col.Poll(h.ctx); len(resultFor(got, "c")) != 0 {
		t.Fatalf("a 10x slow 1s install finished within 9s")
	}
	h.clk.Advance(time.Second)
	h.wait("result", hasResult("c", 1))
}

func TestCrashAndRestart(t *testing.T) {
	h := newHarness(t, true)
	k := instant()
	k.Crash = []string{agentproto.CmdConfigure}
	a, b := h.add("n1", k)
	h.wait("hello", count(agentproto.TypeHello, 1))
	h.send("n1", agentproto.Command{ID: "c", Kind: agentproto.CmdConfigure})
	waitUntil(t, "crash", a.Crashed)
	if h.q.Subscribers(queue.NodeQueue("n1")) != 0 {
		t.Fatal("a crashed agent still listens to its queue")
	}
	// Dead: no heartbeats, no result; the command stays on the queue.
	h.clk.Advance(3 * agent.DefaultHeartbeat)
	h.sync()
	got, _ := h.col.Poll(h.ctx)
	if n := agenttest.Count(got, agentproto.TypeHeartbeat); n != 1 {
		t.Fatalf("%d heartbeats from a crashed agent's lifetime, want 1", n)
	}
	if len(resultFor(got, "c")) != 0 || h.q.Len(queue.NodeQueue("n1")) != 1 {
		t.Fatalf("crashed agent answered or acknowledged its command")
	}
	// Restarted without the fault, it says hello again and runs the redelivered command
	// (its visibility timeout has passed).
	fixed := instant()
	b.SetKnobs(&fixed)
	if err := h.f.Restart("n1", 0); err != nil {
		t.Fatal(err)
	}
	got = h.wait("second hello and the command's result", func(e []agentproto.Envelope) bool {
		return agenttest.Count(e, agentproto.TypeHello) == 2 && len(resultFor(e, "c")) == 1
	})
	if r := resultFor(got, "c")[0]; r.OK || !strings.Contains(r.Error, "nothing installed") {
		t.Fatalf("redelivered command result = %+v", r)
	}
	if !a.Up() {
		t.Fatal("restarted agent is not up")
	}
}

func TestSilentHoldsResults(t *testing.T) {
	h := newHarness(t, true)
	k := instant()
	k.Durations[agentproto.CmdInstall] = dummy.Duration(time.Second)
	h.add("n1", k)
	h.wait("hello", count(agentproto.TypeHeartbeat, 1))
	h.send("n1", agentproto.Command{ID: "c", Kind: agentproto.CmdInstall, Type: "zk", Version: "1"})
	waitUntil(t, "received", func() bool { return h.f.Stats().Commands >= 1 })
	if err := h.f.SetSilent("n1", true); err != nil {
		t.Fatal(err)
	}
	h.send("n1", agentproto.Command{ID: "c2", Kind: agentproto.CmdSyncScripts, Ref: "v9"})
	h.clk.Advance(2 * agent.DefaultHeartbeat)
	h.sync()
	got, _ := h.col.Poll(h.ctx)
	if agenttest.Count(got, agentproto.TypeHeartbeat) != 1 || len(agenttest.Results(got)) != 0 {
		t.Fatalf("silent agent spoke: %s", describe(got))
	}
	if h.f.Stats().Commands != 1 {
		t.Fatal("silent agent received a command")
	}
	if err := h.f.SetSilent("n1", false); err != nil {
		t.Fatal(err)
	}
	h.wait("held result and new command", func(e []agentproto.Envelope) bool {
		return len(resultFor(e, "c")) == 1 && len(resultFor(e, "c2")) == 1
	})
	h.clk.Advance(agent.DefaultHeartbeat)
	h.wait("heartbeats again", count(agentproto.TypeHeartbeat, 2))
}

func TestMaintenance(t *testing.T) {
	for _, mode := range []string{"restart", "reboot"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, true)
			h.add("n1", instant()) // restart takes 1s, reboot 3s
			h.wait("hello", count(agentproto.TypeHello, 1))
			h.send("n1", agentproto.Command{ID: "m", Kind: agentproto.CmdMaintenance, Reply: "tok", Params: map[string]string{"mode": mode}})
			got := h.wait("ack", hasResult("m", 1))
			if r := resultFor(got, "m")[0]; !r.OK || r.Reply != "tok" {
				t.Fatalf("maintenance ack = %+v", r)
			}
			if agenttest.Count(got, agentproto.TypeEvent) != 0 {
				t.Fatal("resume before the restart")
			}
			h.clk.Advance(500 * time.Millisecond)
			h.sync()
			h.clk.Advance(3 * time.Second)
			got = h.wait("resume", count(agentproto.TypeEvent, 1))
			last := got[len(got)-1]
			if last.Type != agentproto.TypeEvent || last.Event.Name != agentproto.EventResume || last.Event.Detail != mode {
				t.Fatalf("last message = %+v", last)
			}
			wantHellos := 1
			if mode == "reboot" {
				wantHellos = 2
			}
			if n := agenttest.Count(got, agentproto.TypeHello); n != wantHellos {
				t.Fatalf("%d hellos, want %d", n, wantHellos)
			}
		})
	}
}

func TestPollingWithoutPush(t *testing.T) {
	h := newHarness(t, false)
	h.add("n1", instant())
	h.wait("hello", count(agentproto.TypeHello, 1))
	if h.f.Notified() {
		t.Fatal("fleet over a queue without Subscribe says it is notified")
	}
	h.send("n1", agentproto.Command{ID: "c", Kind: agentproto.CmdSyncScripts, Ref: "v2"})
	// Nothing tells the agent; it finds the command at its next poll.
	for i := 0; i < 10; i++ {
		h.clk.Advance(time.Second)
		if got, _ := h.col.Poll(h.ctx); len(resultFor(got, "c")) == 1 {
			return
		}
		h.sync()
	}
	h.wait("result", hasResult("c", 1))
}

func TestRemoveStopsEverything(t *testing.T) {
	h := newHarness(t, true)
	h.add("n1", instant())
	h.wait("hello", count(agentproto.TypeHello, 1))
	if !h.f.Remove("n1") || h.f.Remove("n1") {
		t.Fatal("Remove did not report presence correctly")
	}
	if h.q.Subscribers(queue.NodeQueue("n1")) != 0 {
		t.Fatal("removed agent still subscribed")
	}
	h.clk.Advance(3 * agent.DefaultHeartbeat)
	h.sync()
	got, _ := h.col.Poll(h.ctx)
	if agenttest.Count(got, agentproto.TypeHeartbeat) != 1 {
		t.Fatalf("removed agent kept heartbeating: %s", describe(got))
	}
	if err := h.f.SetSilent("n1", true); !errs.Is(err, errs.NotFound) {
		t.Fatalf("SetSilent on a removed agent: %v, want not found", err)
	}
}

func TestSendFailuresAreRetried(t *testing.T) {
	h := newHarness(t, true)
	h.q.FailSends(errs.E(errs.Unavailable, "send", "queue down"))
	h.add("n1", instant())
	waitUntil(t, "a failed send", func() bool { return h.f.Stats().SendErrors >= 1 })
	h.q.FailSends(nil)
	for i := 0; i < 10 && h.f.Stats().Hellos == 0; i++ {
		h.clk.Advance(time.Second)
		h.sync()
	}
	h.wait("hello after the queue came back", count(agentproto.TypeHello, 1))
}

// blockingBackend is not Simulated: its Exec blocks until released or its deadline.
type blockingBackend struct {
	release chan struct{}
	calls   atomic.Int32
}

func (b *blockingBackend) Boot(ctx context.Context) (agentproto.Hello, error) {
	return agentproto.Hello{Hostname: "host"}, nil
}
func (b *blockingBackend) Status(ctx context.Context) agent.Status { return agent.Status{} }
func (b *blockingBackend) Exec(ctx context.Context, cmd *agentproto.Command) agent.Outcome {
	b.calls.Add(1)
	select {
	case <-b.release:
		return agent.Outcome{OK: true, Output: strings.Repeat("x", agentproto.MaxOutput+100)}
	case <-ctx.Done():
		return agent.Outcome{Error: ctx.Err().Error(), ExitStatus: -1}
	}
}

func TestStandaloneRunWithBlockingBackend(t *testing.T) {
	q := agenttest.NewMemQueue(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, n := range []string{queue.Status, queue.NodeQueue("h1")} {
		if err := q.Ensure(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	be := &blockingBackend{release: make(chan struct{})}
	a, err := agent.New(agent.Config{NodeID: "h1", Queue: q, Backend: be})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	col := &agenttest.Collector{Q: q}
	if _, ok := col.WaitFor(ctx, 5*time.Second, count(agentproto.TypeHello, 1)); !ok {
		t.Fatal("no hello")
	}
	if err := q.Send(ctx, queue.NodeQueue("h1"), agenttest.Command(t, "h1", agentproto.Command{ID: "x", Kind: agentproto.CmdGuest, Command: "a/b"})); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(ctx, queue.NodeQueue("h1"), agenttest.Command(t, "h1", agentproto.Command{ID: "d", Kind: agentproto.CmdValidate, Deadline: time.Now().Add(50 * time.Millisecond)})); err != nil {
		t.Fatal(err)
	}
	got, ok := col.WaitFor(ctx, 5*time.Second, hasResult("d", 1))
	if !ok {
		t.Fatal("no result for the command past its deadline")
	}
	if r := resultFor(got, "d")[0]; r.OK || r.Code != agentproto.ValidateFailure {
		t.Fatalf("deadline result = %+v", r)
	}
	close(be.release)
	got, ok = col.WaitFor(ctx, 5*time.Second, hasResult("x", 1))
	if !ok {
		t.Fatal("no result")
	}
	r := resultFor(got, "x")[0]
	if len(r.Output) > agentproto.MaxOutput || !strings.Contains(r.Output, "truncated") {
		t.Fatalf("output of %d bytes not bounded to %d with a note", len(r.Output), agentproto.MaxOutput)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := agent.New(agent.Config{Backend: &blockingBackend{}}); !errs.Is(err, errs.Invalid) {
		t.Fatalf("no node id: %v", err)
	}
	if _, err := agent.New(agent.Config{NodeID: "x"}); !errs.Is(err, errs.Invalid) {
		t.Fatalf("no backend: %v", err)
	}
	if _, err := agent.NewFleet(agent.FleetConfig{}); !errs.Is(err, errs.Invalid) {
		t.Fatalf("no queue: %v", err)
	}
}

func TestDeliverFromAPushDispatcher(t *testing.T) {
	h := newHarnessWith(t, false, agent.FleetConfig{Pushed: true})
	h.add("n1", instant())
	h.wait("hello", count(agentproto.TypeHello, 1))
	if !h.f.Notified() {
		t.Fatal("a pushed fleet says it polls")
	}
	h.send("n1", agentproto.Command{ID: "c", Kind: agentproto.CmdSyncScripts, Ref: "v2"})
	// The dispatcher (this test) receives and hands over; the fleet answers and acks.
	msgs, err := h.q.Receive(h.ctx, queue.NodeQueue("n1"), queue.MaxBatch, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("receive: %v %v", msgs, err)
	}
	if !h.f.Deliver(h.ctx, queue.NodeQueue("n1"), msgs) {
		t.Fatal("Deliver refused a running agent's messages")
	}
	h.wait("result", hasResult("c", 1))
	waitUntil(t, "acknowledged", func() bool { return h.q.Len(queue.NodeQueue("n1")) == 0 })
	if h.f.Deliver(h.ctx, queue.NodeQueue("nobody"), msgs) {
		t.Fatal("Deliver to a queue nobody listens on")
	}
	// Idle, it does not poll between safety polls.
	before := h.f.Stats().Receives
	h.clk.Advance(5 * time.Second)
	h.sync()
	if n := h.f.Stats().Receives; n != before {
		t.Fatalf("a pushed fleet polled %d times", n-before)
	}
}
