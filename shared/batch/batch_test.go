package batch

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/boltq"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/bolt"
	"github.com/straas/straas/shared/workflow"
)

// tokens records what the batch told the workflow engine: the callbacks are what this
// package is for, so the test double is of the engine's callback half only.
type tokens struct {
	mu       sync.Mutex
	success  map[string][]byte
	failure  map[string]string // token -> errName: cause
	failNext error             // returned once by the next call
	workflow.Engine
}

func (t *tokens) SendTaskSuccess(_ context.Context, tok string, out []byte) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.failNext; err != nil {
		t.failNext = nil
		return err
	}
	if _, dup := t.success[tok]; dup {
		return errs.Conflictf("token %s completed already", tok)
	}
	t.success[tok] = out
	return nil
}

func (t *tokens) SendTaskFailure(_ context.Context, tok, name, cause string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failure[tok] = name + ": " + cause
	return nil
}

func (t *tokens) calls() (int, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.success), len(t.failure)
}

type fixture struct {
	svc   *Service
	wf    *tokens
	clock *clock.Fake
	q     *boltq.Queue
	nodes []model.Node
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	dir := t.TempDir()
	fc := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	st, err := bolt.Open(filepath.Join(dir, "s.db"), bolt.WithClock(fc))
	if err != nil {
		t.Fatal(err)
	}
	q, err := boltq.Open(filepath.Join(dir, "q.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close(); st.Close() })
	d := db.New(st, fc)
	wf := &tokens{success: map[string][]byte{}, failure: map[string]string{}}
	f := &fixture{svc: &Service{DB: d, Queue: q, Workflow: wf, Log: slog.Default()}, wf: wf, clock: fc, q: q}
	ctx := context.Background()
	for i := 1; i <= n; i++ {
		nd := model.Node{ID: "n" + string(rune('0'+i)), Name: "node-" + string(rune('0'+i)), ComponentID: "c1", TopologyID: "t1", Index: i, Status: model.NodeVMBooted}
		if err := d.PutNode(ctx, &nd); err != nil {
			t.Fatal(err)
		}
		if err := q.Ensure(ctx, queue.NodeQueue(nd.ID)); err != nil {
			t.Fatal(err)
		}
		f.nodes = append(f.nodes, nd)
	}
	return f
}

func (f *fixture) spec(token, stage string, tolerate bool) Spec {
	sp := Spec{ID: ID("a1", "c1", stage), Token: token, ActionID: "a1", TopologyID: "t1", ComponentID: "c1", Stage: stage,
		Command: agentproto.CmdInstall, Tolerate: tolerate, OnOK: model.NodeInstalled, Timeout: time.Minute}
	for _, n := range f.nodes {
		sp.Targets = append(sp.Targets, Target{NodeID: n.ID, NodeName: n.Name,
			Command: &agentproto.Command{ID: CommandID(sp.ID, n.ID), Kind: agentproto.CmdInstall}})
	}
	return sp
}

func TestOpenSendsOneCommandPerNode(t *testing.T) {
	f := newFixture(t, 3)
	ctx := context.Background()
	if _, err := f.svc.Open(ctx, f.spec("tok", "install", false)); err != nil {
		t.Fatal(err)
	}
	for _, n := range f.nodes {
		msgs, err := f.q.Receive(ctx, queue.NodeQueue(n.ID), 10, 0)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("node %s got %d commands (%v), want 1", n.Name, len(msgs), err)
		}
		env, err := agentproto.Decode(msgs[0].Body)
		if err != nil {
			t.Fatal(err)
		}
		if env.Command.Reply != ID("a1", "c1", "install") || env.Command.Kind != agentproto.CmdInstall {
			t.Errorf("node %s: command %+v", n.Name, env.Command)
		}
	}
	if s, fl := f.wf.calls(); s+fl != 0 {
		t.Errorf("completed before any answer: %d successes, %d failures", s, fl)
	}
}

func TestCompletion(t *testing.T) {
	tests := []struct {
		name        string
		tolerate    bool
		answers     []bool // per node
		wantSuccess bool
		wantStatus  []string
	}{
		{"all succeed", false, []bool{true, true, true}, true, []string{model.NodeInstalled, model.NodeInstalled, model.NodeInstalled}},
		{"one fails", false, []bool{true, false, true}, false, []string{model.NodeInstalled, model.NodeFailed, model.NodeInstalled}},
		{"one fails, tolerated", true, []bool{true, false, true}, true, []string{model.NodeInstalled, model.NodeFailed, model.NodeInstalled}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 3)
			ctx := context.Background()
			sp := f.spec("tok", "install", tc.tolerate)
			if _, err := f.svc.Open(ctx, sp); err != nil {
				t.Fatal(err)
			}
			for i, ok := range tc.answers {
				res := Result{OK: ok}
				if !ok {
					res.Error = "apt: version not found"
				}
				changed, err := f.svc.Record(ctx, sp.ID, f.nodes[i].ID, res)
				if err != nil || !changed {
					t.Fatalf("record node %d: changed %v err %v", i, changed, err)
				}
				if i < len(tc.answers)-1 {
					if s, fl := f.wf.calls(); s+fl != 0 {
						t.Fatalf("completed after %d of %d answers", i+1, len(tc.answers))
					}
				}
			}
			s, fl := f.wf.calls()
			if tc.wantSuccess && (s != 1 || fl != 0) || !tc.wantSuccess && (s != 0 || fl != 1) {
				t.Fatalf("got %d successes and %d failures, want success=%v once", s, fl, tc.wantSuccess)
			}
			if !tc.wantSuccess {
				cause := f.wf.failure["tok"]
				if !strings.HasPrefix(cause, "NodeCommandFailed: ") || !strings.Contains(cause, "node-2") || !strings.Contains(cause, "apt: version not found") {
					t.Errorf("failure %q does not name the node and its error", cause)
				}
			}
			for i, want := range tc.wantStatus {
				n, _, err := f.svc.DB.Node(ctx, f.nodes[i].ID)
				if err != nil || n.Status != want {
					t.Errorf("node %d status %q (%v), want %q", i, n.Status, err, want)
				}
			}
			st, _, err := store.Load[model.Stage](ctx, f.svc.DB.S, db.KindStage, db.StageID("a1", "c1", "install"))
			if err != nil || st.NodesTotal != 3 || st.FinishedAt == nil {
				t.Errorf("stage record %+v (%v)", st, err)
			}
		})
	}
}

func TestFirstAnswerWins(t *testing.T) {
	f := newFixture(t, 2)
	ctx := context.Background()
	sp := f.spec("tok", "install", false)
	if _, err := f.svc.Open(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Record(ctx, sp.ID, "n1", Result{OK: true}); err != nil {
		t.Fatal(err)
	}
	// A redelivered or late answer for the same node changes nothing.
	changed, err := f.svc.Record(ctx, sp.ID, "n1", Result{OK: false, Error: "late"})
	if err != nil || changed {
		t.Fatalf("duplicate answer: changed %v err %v", changed, err)
	}
	// A node that is not a target is ignored.
	if changed, err := f.svc.Record(ctx, sp.ID, "stranger", Result{OK: true}); err != nil || changed {
		t.Fatalf("stranger's answer: changed %v err %v", changed, err)
	}
	b, err := f.svc.Get(ctx, sp.ID)
	if err != nil || b.Done != 1 || b.Failed != 0 || b.Completed {
		t.Fatalf("batch %+v (%v), want 1 done, not completed", b, err)
	}
}

func TestConcurrentAnswersCompleteOnce(t *testing.T) {
	f := newFixture(t, 8)
	ctx := context.Background()
	sp := f.spec("tok", "install", false)
	if _, err := f.svc.Open(ctx, sp); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, n := range f.nodes {
		for dup := 0; dup < 2; dup++ { // every answer delivered twice, concurrently
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				if _, err := f.svc.Record(ctx, sp.ID, id, Result{OK: true}); err != nil {
					t.Error(err)
				}
			}(n.ID)
		}
	}
	wg.Wait()
	b, _ := f.svc.Get(ctx, sp.ID)
	if s, fl := f.wf.calls(); s != 1 || fl != 0 || b.Done != 8 {
		t.Fatalf("%d successes, %d failures, %d done; want one success and 8 done", s, fl, b.Done)
	}
}

func TestEmptyBatchCompletesAtOnce(t *testing.T) {
	f := newFixture(t, 0)
	if _, err := f.svc.Open(context.Background(), f.spec("tok", "pre_config_ops", false)); err != nil {
		t.Fatal(err)
	}
	if s, _ := f.wf.calls(); s != 1 {
		t.Fatalf("empty batch: %d successes, want 1", s)
	}
}

func TestReopenTakesTheNewToken(t *testing.T) {
	f := newFixture(t, 1)
	ctx := context.Background()
	sp := f.spec("old", "install", false)
	if _, err := f.svc.Open(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Record(ctx, sp.ID, "n1", Result{OK: true}); err != nil {
		t.Fatal(err)
	}
	// The stage is re-run (its task was retried): the finished batch answers the new token.
	sp.Token = "new"
	if _, err := f.svc.Open(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.wf.success["new"]; !ok {
		t.Fatalf("re-opened batch did not complete the new token: %v", f.wf.success)
	}
	// And the node was not sent its command twice... once at first open only.
	msgs, _ := f.q.Receive(ctx, queue.NodeQueue("n1"), 10, 0)
	if len(msgs) != 1 {
		t.Errorf("node got %d commands, want 1", len(msgs))
	}
}

func TestSweepExpiresSilentNodes(t *testing.T) {
	f := newFixture(t, 2)
	ctx := context.Background()
	sp := f.spec("tok", "install", true)
	if _, err := f.svc.Open(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Record(ctx, sp.ID, "n1", Result{OK: true}); err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("sweep before the deadline: %d %v", n, err)
	}
	f.clock.Advance(2 * time.Minute)
	if n, err := f.svc.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep after the deadline: %d %v", n, err)
	}
	entries, err := f.svc.Entries(ctx, sp.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.NodeID {
		case "n1":
			if e.Status != OK {
				t.Errorf("answered node lost its result: %+v", e)
			}
		case "n2":
			if e.Status != Failed || !strings.Contains(e.Error, "no answer within") {
				t.Errorf("silent node: %+v", e)
			}
		}
	}
	if s, _ := f.wf.calls(); s != 1 {
		t.Errorf("expired tolerant batch: %d successes, want 1", s)
	}
}

func TestLostNotificationIsResent(t *testing.T) {
	f := newFixture(t, 1)
	ctx := context.Background()
	sp := f.spec("tok", "install", false)
	if _, err := f.svc.Open(ctx, sp); err != nil {
		t.Fatal(err)
	}
	f.wf.failNext = errs.Transientf("engine unavailable")
	if _, err := f.svc.Record(ctx, sp.ID, "n1", Result{OK: true}); err == nil {
		t.Fatal("a failed notification must surface, so that the message is redelivered")
	}
	if s, _ := f.wf.calls(); s != 0 {
		t.Fatal("notified despite the error")
	}
	f.clock.Advance(3 * time.Second)
	if n, err := f.svc.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if s, _ := f.wf.calls(); s != 1 {
		t.Fatal("the sweep did not re-send the completion")
	}
	b, _ := f.svc.Get(ctx, sp.ID)
	if !b.Notified {
		t.Error("batch not marked notified after the re-send")
	}
}

func TestSyncBatchesExpireAndHaveNoStage(t *testing.T) {
	f := newFixture(t, 1)
	ctx := context.Background()
	sp := f.spec("", "guestcmd", true)
	if _, err := f.svc.Open(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Record(ctx, sp.ID, "n1", Result{OK: true, Output: "ok"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.Load[model.Stage](ctx, f.svc.DB.S, db.KindStage, db.StageID("a1", "c1", "guestcmd")); !errs.Is(err, errs.NotFound) {
		t.Errorf("a synchronous command left a stage record (%v)", err)
	}
	f.clock.Advance(sp.Timeout + SyncRetention + time.Second)
	if _, err := f.svc.Get(ctx, sp.ID); !errs.Is(err, errs.NotFound) {
		t.Errorf("synchronous batch still there after its retention: %v", err)
	}
	if es, err := f.svc.Entries(ctx, sp.ID); err != nil || len(es) != 0 {
		t.Errorf("entries still there after retention: %d (%v)", len(es), err)
	}
}
