package asl

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/workflow"
)

// A task function may complete its own task token before it returns, as the control
// plane's AwaitDependencies stage does when the dependencies are done already.

const selfMachine = `{"StartAt":"Deps","States":{
	"Deps":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke.waitForTaskToken",
		"Parameters":{"FunctionName":"arn:test:function:Self","Payload":{"token.$":"$$.Task.Token"}},
		"TimeoutSeconds":3600,"HeartbeatSeconds":600,"ResultPath":"$.deps",
		"Catch":[{"ErrorEquals":["DependencyFailed"],"ResultPath":"$.err","Next":"Held"}],"Next":"After"},
	"After":{"Type":"Task","Resource":"arn:test:function:Echo","ResultPath":"$.echo","End":true},
	"Held":{"Type":"Pass","End":true}}}`

// selfFunc completes its own token through *eng with answer, ignoring a token already
// complete or gone as the stage functions do (a re-run after a crash finds it so).
func selfFunc(eng *atomic.Pointer[Engine], calls *atomic.Int32, answer func(ctx context.Context, e *Engine, tok string) error) workflow.Func {
	return func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
		calls.Add(1)
		var v struct{ Token string }
		if err := json.Unmarshal(in, &v); err != nil {
			return nil, err
		}
		err := answer(ctx, eng.Load(), v.Token)
		if err != nil && !errs.Is(err, errs.NotFound) && !errs.Is(err, errs.Conflict) {
			return nil, err
		}
		return json.RawMessage(`{"ignored":true}`), nil
	}
}

func answerSuccess(ctx context.Context, e *Engine, tok string) error {
	return e.SendTaskSuccess(ctx, tok, []byte(`{"ready":true}`))
}

func TestSelfCompletingToken(t *testing.T) {
	cases := []struct {
		name   string
		answer func(ctx context.Context, e *Engine, tok string) error
		want   string
	}{
		{"success", answerSuccess, `{"n":1,"deps":{"ready":true},"echo":{"n":1,"deps":{"ready":true}}}`},
		{"failure", func(ctx context.Context, e *Engine, tok string) error {
			return e.SendTaskFailure(ctx, tok, "DependencyFailed", "zk failed")
		}, `{"n":1,"err":{"Error":"DependencyFailed","Cause":"zk failed"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := openBolt(t, filepath.Join(t.TempDir(), "asl.db"))
			defer st.Close()
			var eng atomic.Pointer[Engine]
			var calls atomic.Int32
			funcs := testFuncs()
			funcs["arn:test:function:Self"] = selfFunc(&eng, &calls, tc.answer)
			// One worker: the function completes the token from the very goroutine that
			// drives the waiting thread.
			h := newHarness(t, map[string]*Machine{"m": mustLoad(t, "m", selfMachine)}, funcs, hopts{st: st, workers: 1, noRun: true})
			eng.Store(h.eng)
			h.run()
			x := h.await(h.start("m", "e1", `{"n":1}`), false)
			if x.Status != workflow.Succeeded {
				t.Fatalf("status %s %s %s", x.Status, x.Error, x.Cause)
			}
			jsonEq(t, x.Output, tc.want)
			if n := calls.Load(); n != 1 {
				t.Errorf("the function ran %d times, want 1", n)
			}
			assertNoLeftovers(t, st)
		})
	}
}

// The process dies after the function completed its own token and before its return
// was checkpointed: the thread is durably still "ready" with a completed token. The
// next process takes the result without running the function again.
func TestSelfCompletingTokenResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "asl.db")
	machines := map[string]*Machine{"m": mustLoad(t, "m", selfMachine)}
	clk := clock.NewFake(t0)
	var eng atomic.Pointer[Engine]

	var calls1 atomic.Int32
	answered := make(chan struct{})
	dying := selfFunc(&eng, &calls1, func(ctx context.Context, e *Engine, tok string) error {
		if err := answerSuccess(ctx, e, tok); err != nil {
			return err
		}
		close(answered)
		<-ctx.Done() // the process dies before the function returns
		return ctx.Err()
	})
	funcs1 := testFuncs()
	funcs1["arn:test:function:Self"] = dying
	st1 := openBolt(t, path)
	h1 := newHarness(t, machines, funcs1, hopts{st: st1, clk: clk, noRun: true})
	eng.Store(h1.eng)
	h1.run()
	id := h1.start("m", "e1", `{"n":1}`)
	<-answered
	h1.stop()
	if err := st1.Close(); err != nil {
		t.Fatal(err)
	}

	st2 := openBolt(t, path)
	defer st2.Close()
	// What the dead process left: the task not past its function, its token complete.
	r, err := st2.Get(context.Background(), KindThread, rootThreadID(id))
	if err != nil {
		t.Fatal(err)
	}
	var rec threadRec
	if err := store.Decode(r, &rec); err != nil {
		t.Fatal(err)
	}
	k, _, err := store.Load[tokenRec](context.Background(), st2, KindToken, rec.Token)
	if err != nil || rec.State != "Deps" || rec.Phase != phReady || k.Status != tokSucceeded {
		t.Fatalf("durable state: thread %s/%q, token %+v (%v); want Deps/ready with a succeeded token", rec.State, rec.Phase, k, err)
	}

	var calls2 atomic.Int32
	funcs2 := testFuncs()
	funcs2["arn:test:function:Self"] = selfFunc(&eng, &calls2, answerSuccess)
	h2 := newHarness(t, machines, funcs2, hopts{st: st2, clk: clk, noRun: true})
	eng.Store(h2.eng)
	h2.run()
	x := h2.await(id, false)
	if x.Status != workflow.Succeeded {
		t.Fatalf("status %s %s %s", x.Status, x.Error, x.Cause)
	}
	jsonEq(t, x.Output, `{"n":1,"deps":{"ready":true},"echo":{"n":1,"deps":{"ready":true}}}`)
	if n := calls2.Load(); n != 0 {
		t.Errorf("the function ran %d times after the restart, want 0: its token was complete", n)
	}
	assertNoLeftovers(t, st2)
}

// Killed at every write in turn, a run whose task completes its own token finishes
// with the token's result on the next process; once the completion is durable the
// function does not run again.
func TestKillAtEveryWriteSelfCompletingToken(t *testing.T) {
	def := `{"StartAt":"Deps","States":{
		"Deps":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke.waitForTaskToken",
			"Parameters":{"FunctionName":"arn:test:function:SelfComplete","Payload":{"token.$":"$$.Task.Token"}},
			"TimeoutSeconds":3600,"ResultPath":"$.deps","Next":"After"},
		"After":{"Type":"Task","Resource":"arn:test:function:Echo","ResultPath":"$.echo","End":true}}}`
	machines := map[string]*Machine{"m": mustLoad(t, "m", def)}
	want := `{"n":1,"deps":{"self":"done"},"echo":{"n":1,"deps":{"self":"done"}}}`
	killSweep(t, machines, `{"n":1}`, want, 4, func(t *testing.T, first runResult, snap map[string]bool, r *crashRun) {
		if (snap["Deps/"+phToken] || snap["token/"+tokSucceeded]) && r.count("arn:test:function:SelfComplete") != 0 {
			t.Errorf("the token's completion was durable, yet the function ran again")
		}
		if first.started && !snap["Deps/"] && !snap["Deps/"+phToken] && r.count("arn:test:function:SelfComplete") != 0 {
			t.Errorf("the task was over, yet its function ran again")
		}
	})
}

func assertNoLeftovers(t *testing.T, st store.Store) {
	t.Helper()
	for _, kind := range []string{KindThread, KindToken} {
		waitFor(t, fmt.Sprintf("no %s records", kind), func() bool {
			recs, _, err := st.List(context.Background(), kind, store.Query{})
			return err == nil && len(recs) == 0
		})
	}
}
