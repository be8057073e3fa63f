package asl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/workflow"
)

// tokenFuncs returns a "Send" function that hands each task token it receives to the
// test (like a stage function that enqueues a command for an agent).
func tokenFuncs(tokens chan string) map[string]workflow.Func {
	return map[string]workflow.Func{
		"arn:test:function:Send": fn(func(in map[string]any) (any, error) {
			tok, _ := in["token"].(string)
			tokens <- tok
			return map[string]any{"ignored": true}, nil
		}),
	}
}

const tokenMachine = `{"StartAt":"W","States":{
	"W":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke.waitForTaskToken",
		"Parameters":{"FunctionName":"arn:test:function:Send","Payload":{"token.$":"$$.Task.Token","n.$":"$.n"}},
		%s"ResultPath":"$.res",
		"Catch":[{"ErrorEquals":["States.Timeout","States.HeartbeatTimeout","AgentFailed"],"ResultPath":"$.err","Next":"Failed"}],
		"End":true},
	"Failed":{"Type":"Pass","End":true}}}`

func tokenHarness(t *testing.T, timeouts string) (*harness, chan string) {
	tokens := make(chan string, 16)
	m := mustLoad(t, "tok", fmt.Sprintf(tokenMachine, timeouts))
	return newHarness(t, map[string]*Machine{"tok": m}, tokenFuncs(tokens), hopts{}), tokens
}

func recvToken(t *testing.T, tokens chan string) string {
	t.Helper()
	select {
	case tok := <-tokens:
		if tok == "" {
			t.Fatal("empty task token")
		}
		return tok
	case <-time.After(10 * time.Second):
		t.Fatal("no task token sent")
		return ""
	}
}

func TestTaskTokens(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		timeouts string
		act      func(h *harness, tok string)
		want     string
	}{
		{
			name: "success", act: func(h *harness, tok string) {
				if err := h.eng.SendTaskSuccess(ctx, tok, []byte(`{"ok":1}`)); err != nil {
					t.Fatal(err)
				}
			},
			want: `{"n":1,"res":{"ok":1}}`,
		},
		{
			name: "failure", act: func(h *harness, tok string) {
				if err := h.eng.SendTaskFailure(ctx, tok, "AgentFailed", "disk full"); err != nil {
					t.Fatal(err)
				}
			},
			want: `{"n":1,"err":{"Error":"AgentFailed","Cause":"disk full"}}`,
		},
		{
			name: "timeout", timeouts: `"TimeoutSeconds":60,`, act: func(h *harness, tok string) {
				waitFor(t, "timeout timer", func() bool { return h.clk.Waiters() == 1 })
				h.clk.Advance(59 * time.Second)
				h.clk.Advance(time.Second)
			},
			want: `{"n":1,"err":{"Error":"States.Timeout","Cause":"no task result within TimeoutSeconds"}}`,
		},
		{
			name: "timeout_from_path", timeouts: `"TimeoutSecondsPath":"$.n",`, act: func(h *harness, tok string) {
				waitFor(t, "timeout timer", func() bool { return h.clk.Waiters() == 1 })
				h.clk.Advance(time.Second)
			},
			want: `{"n":1,"err":{"Error":"States.Timeout","Cause":"no task result within TimeoutSeconds"}}`,
		},
		{
			name: "heartbeat_timeout", timeouts: `"TimeoutSeconds":100,"HeartbeatSeconds":10,`, act: func(h *harness, tok string) {
				waitFor(t, "heartbeat timer", func() bool { return h.clk.Waiters() == 1 })
				h.clk.Advance(10 * time.Second)
			},
			want: `{"n":1,"err":{"Error":"States.HeartbeatTimeout","Cause":"no heartbeat within 10 seconds"}}`,
		},
		{
			name: "heartbeats_keep_it_alive", timeouts: `"TimeoutSeconds":100,"HeartbeatSeconds":10,`, act: func(h *harness, tok string) {
				waitFor(t, "heartbeat timer", func() bool { return h.clk.Waiters() == 1 })
				h.clk.Advance(6 * time.Second)
				if err := h.eng.SendTaskHeartbeat(ctx, tok); err != nil {
					t.Fatal(err)
				}
				h.clk.Advance(6 * time.Second) // t=12: past the first limit, within 10s of the beat
				waitFor(t, "re-armed heartbeat timer", func() bool { return h.clk.Waiters() == 1 })
				if err := h.eng.SendTaskSuccess(ctx, tok, []byte(`"alive"`)); err != nil {
					t.Fatal(err)
				}
			},
			want: `{"n":1,"res":"alive"}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, tokens := tokenHarness(t, tc.timeouts)
			id := h.start("tok", "e1", `{"n":1}`)
			tok := recvToken(t, tokens)
			tc.act(h, tok)
			x := h.await(id, false)
			if x.Status != workflow.Succeeded {
				t.Fatalf("status %s %s %s", x.Status, x.Error, x.Cause)
			}
			jsonEq(t, x.Output, tc.want)
			// The token is over: a late result is refused.
			err := h.eng.SendTaskSuccess(ctx, tok, []byte(`{}`))
			if !errs.Is(err, errs.NotFound) && !errs.Is(err, errs.Conflict) {
				t.Errorf("late SendTaskSuccess: %v, want NotFound or Conflict", err)
			}
			ev, _ := h.eng.Events(ctx, id)
			golden(t, "token/"+tc.name+".json", map[string]any{"output": string(x.Output), "events": ev})
		})
	}
}

func TestTaskTokenErrors(t *testing.T) {
	ctx := context.Background()
	h, tokens := tokenHarness(t, "")
	if err := h.eng.SendTaskSuccess(ctx, "no-such-token", []byte(`{}`)); !errs.Is(err, errs.NotFound) {
		t.Errorf("unknown token: %v, want NotFound", err)
	}
	if err := h.eng.SendTaskHeartbeat(ctx, "no-such-token"); !errs.Is(err, errs.NotFound) {
		t.Errorf("unknown token heartbeat: %v, want NotFound", err)
	}
	id := h.start("tok", "e1", `{"n":1}`)
	tok := recvToken(t, tokens)
	if err := h.eng.SendTaskSuccess(ctx, tok, []byte(`not json`)); !errs.Is(err, errs.Invalid) {
		t.Errorf("bad output: %v, want Invalid", err)
	}
	// Once the function's return is checkpointed, stop the engine: the first result
	// is durable, a second one is refused even though nothing has consumed the first.
	waitPhase(t, h, rootThreadID(id), phToken)
	h.stop()
	if err := h.eng.SendTaskSuccess(ctx, tok, []byte(`{"first":true}`)); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.SendTaskFailure(ctx, tok, "AgentFailed", "late"); !errs.Is(err, errs.Conflict) {
		t.Errorf("second completion: %v, want Conflict", err)
	}
	eng2, err := New(Config{Store: h.st, Machines: h.eng.machines, Functions: h.eng.funcs, Clock: h.clk, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	h.eng = eng2
	h.run()
	x := h.await(id, false)
	jsonEq(t, x.Output, `{"n":1,"res":{"first":true}}`)
	select {
	case tok2 := <-tokens:
		t.Errorf("the function ran again after restart (token %q)", tok2)
	default:
	}
}

// A result that arrives before the function that sent the token has returned is kept.
func TestTokenCompletedBeforeFunctionReturns(t *testing.T) {
	ctx := context.Background()
	var eng atomic.Pointer[Engine]
	funcs := map[string]workflow.Func{
		"arn:test:function:Send": fn(func(in map[string]any) (any, error) {
			tok, _ := in["token"].(string)
			if err := eng.Load().SendTaskSuccess(ctx, tok, []byte(`"fast agent"`)); err != nil {
				return nil, err
			}
			return map[string]any{}, nil
		}),
	}
	m := mustLoad(t, "tok", fmt.Sprintf(tokenMachine, ""))
	h := newHarness(t, map[string]*Machine{"tok": m}, funcs, hopts{noRun: true})
	eng.Store(h.eng)
	h.run()
	x := h.await(h.start("tok", "e1", `{"n":1}`), false)
	jsonEq(t, x.Output, `{"n":1,"res":"fast agent"}`)
}

func TestStartIdempotent(t *testing.T) {
	ctx := context.Background()
	h, tokens := tokenHarness(t, "")
	id1 := h.start("tok", "same", `{"n":1,"b":[1,2]}`)
	id2, err := h.eng.Start(ctx, "tok", "same", []byte(` {"b":[1,2], "n":1}`))
	if err != nil || id2 != id1 {
		t.Fatalf("second start: %q, %v; want %q", id2, err, id1)
	}
	if _, err := h.eng.Start(ctx, "tok", "same", []byte(`{"n":2}`)); !errs.Is(err, errs.Conflict) {
		t.Errorf("different input: %v, want Conflict", err)
	}
	recvToken(t, tokens)
	select {
	case <-tokens:
		t.Error("two executions ran for one name")
	case <-time.After(20 * time.Millisecond):
	}
	for _, bad := range []struct{ machine, name, input string }{
		{"nope", "x", `{}`}, {"tok", "has space", `{}`}, {"tok", "a:b", `{}`}, {"tok", "ok", `{`},
	} {
		if _, err := h.eng.Start(ctx, bad.machine, bad.name, []byte(bad.input)); err == nil {
			t.Errorf("Start(%q, %q, %q): no error", bad.machine, bad.name, bad.input)
		}
	}
	if _, err := h.eng.Describe(ctx, "arn:nope"); !errs.Is(err, errs.NotFound) {
		t.Errorf("describe unknown: %v, want NotFound", err)
	}
}

func TestStopReleasesWaitingTask(t *testing.T) {
	ctx := context.Background()
	h, tokens := tokenHarness(t, "")
	id := h.start("tok", "e1", `{"n":1}`)
	tok := recvToken(t, tokens)
	waitPhase(t, h, rootThreadID(id), phToken)
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	if x, err := h.eng.Wait(short, id); !errors.Is(err, context.DeadlineExceeded) || x.Status != workflow.Running {
		t.Errorf("Wait on a running execution: %s, %v; want RUNNING and the deadline", x.Status, err)
	}
	cancel()
	waited := make(chan workflow.Execution, 1)
	go func() {
		x, _ := h.eng.Wait(ctx, id)
		waited <- x
	}()
	if err := h.eng.Stop(ctx, id, "UserAbort", "changed my mind"); err != nil {
		t.Fatal(err)
	}
	select {
	case x := <-waited:
		if x.Status != workflow.Aborted {
			t.Errorf("Wait returned %s, want ABORTED", x.Status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after Stop")
	}
	x, err := h.eng.Describe(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if x.Status != workflow.Aborted || x.Error != "UserAbort" || x.Cause != "changed my mind" || x.Stopped.IsZero() {
		t.Errorf("after stop: %+v", x)
	}
	if err := h.eng.SendTaskSuccess(ctx, tok, []byte(`{}`)); !errs.Is(err, errs.NotFound) {
		t.Errorf("token of a stopped execution: %v, want NotFound", err)
	}
	if err := h.eng.Stop(ctx, id, "", ""); err != nil {
		t.Errorf("stopping again: %v", err)
	}
	ms := h.st.(interface{ Count(kind, prefix string) int })
	if n := ms.Count(KindThread, ""); n != 0 {
		t.Errorf("%d thread records left after stop", n)
	}
	ev, _ := h.eng.Events(ctx, id)
	if ev["ExecutionAborted"] != 1 || ev["TaskStateEntered"] != 1 || ev["TaskSubmitted"] != 1 {
		t.Errorf("events %v: want ExecutionAborted", ev)
	}
}

func TestList(t *testing.T) {
	ctx := context.Background()
	h, tokens := tokenHarness(t, "")
	running := h.start("tok", "running", `{"n":1}`)
	recvToken(t, tokens)
	for i := 0; i < 3; i++ {
		tok := ""
		id := h.start("tok", fmt.Sprintf("done%d", i), `{"n":1}`)
		tok = recvToken(t, tokens)
		if err := h.eng.SendTaskSuccess(ctx, tok, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		h.await(id, false)
	}
	got, next, err := h.eng.List(ctx, ListQuery{Status: workflow.Running})
	if err != nil || next != "" || len(got) != 1 || got[0].ID != running {
		t.Fatalf("running: %v %q %v; want just %s", got, next, err, running)
	}
	var names []string
	q := ListQuery{Status: workflow.Succeeded, Machine: "tok", Limit: 2}
	for {
		page, next, err := h.eng.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range page {
			names = append(names, x.Name)
		}
		if next == "" {
			break
		}
		q.After = next
	}
	if fmt.Sprint(names) != "[done0 done1 done2]" {
		t.Errorf("succeeded: %v", names)
	}
	if _, _, err := h.eng.List(ctx, ListQuery{Status: "BOGUS"}); !errs.Is(err, errs.Invalid) {
		t.Errorf("bad status: %v", err)
	}
}

func TestTimeouts(t *testing.T) {
	block := map[string]workflow.Func{
		"arn:test:function:Block": func(ctx context.Context, _ json.RawMessage) (json.RawMessage, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		},
	}
	t.Run("execution", func(t *testing.T) {
		m := mustLoad(t, "m", `{"TimeoutSeconds":5,"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":100,"End":true}}}`)
		h := newHarness(t, map[string]*Machine{"m": m}, nil, hopts{})
		id := h.start("m", "e", `{}`)
		waitFor(t, "timers", func() bool { return h.clk.Waiters() == 2 })
		h.clk.Advance(5 * time.Second)
		x := h.await(id, false)
		if x.Status != workflow.TimedOut || x.Error != ErrTimeout {
			t.Errorf("got %s %s, want TIMED_OUT States.Timeout", x.Status, x.Error)
		}
	})
	t.Run("task", func(t *testing.T) {
		m := mustLoad(t, "m", `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:test:function:Block","TimeoutSeconds":10,
			"Retry":[{"ErrorEquals":["States.TaskFailed"],"MaxAttempts":3}],"End":true}}}`)
		h := newHarness(t, map[string]*Machine{"m": m}, block, hopts{})
		id := h.start("m", "e", `{}`)
		waitFor(t, "task timer", func() bool { return h.clk.Waiters() == 1 })
		h.clk.Advance(10 * time.Second)
		x := h.await(id, false)
		if x.Status != workflow.Failed || x.Error != ErrTimeout {
			t.Errorf("got %s %s, want FAILED States.Timeout (not retried as TaskFailed)", x.Status, x.Error)
		}
	})
}

func TestMapMaxConcurrency(t *testing.T) {
	var active, maxActive, calls atomic.Int32
	release := make(chan struct{})
	funcs := map[string]workflow.Func{
		"arn:test:function:Slow": func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			n := active.Add(1)
			calls.Add(1)
			for {
				m := maxActive.Load()
				if n <= m || maxActive.CompareAndSwap(m, n) {
					break
				}
			}
			defer active.Add(-1)
			select {
			case <-release:
				return in, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		},
	}
	m := mustLoad(t, "m", `{"StartAt":"M","States":{"M":{"Type":"Map","MaxConcurrencyPath":"$.limit","ItemsPath":"$.items",
		"ItemProcessor":{"StartAt":"S","States":{"S":{"Type":"Task","Resource":"arn:test:function:Slow","End":true}}},"End":true}}}`)
	h := newHarness(t, map[string]*Machine{"m": m}, funcs, hopts{})
	id := h.start("m", "e", `{"limit":2,"items":[1,2,3,4,5,6,7]}`)
	for i := 0; i < 7; i++ {
		waitFor(t, "a call", func() bool { return calls.Load() > int32(i) })
		release <- struct{}{}
	}
	x := h.await(id, false)
	jsonEq(t, x.Output, `[1,2,3,4,5,6,7]`)
	if maxActive.Load() != 2 {
		t.Errorf("max concurrent iterations %d, want 2", maxActive.Load())
	}
}

// Many executions at once, under -race.
func TestConcurrentExecutions(t *testing.T) {
	def := `{"StartAt":"P","States":{
		"P":{"Type":"Parallel","Branches":[
			{"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.items","ItemProcessor":{"StartAt":"D","States":{
				"D":{"Type":"Task","Resource":"arn:test:function:Double","End":true}}},"End":true}}},
			{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"arn:test:function:Add","Parameters":{"a.$":"$.k","b":1},"End":true}}}],
		"Next":"C"},
		"C":{"Type":"Choice","Choices":[{"Variable":"$[1].sum","NumericGreaterThan":0,"Next":"OK"}],"Default":"Bad"},
		"OK":{"Type":"Succeed"},"Bad":{"Type":"Fail","Error":"Bad"}}}`
	var transitions atomic.Int64
	h := newHarness(t, map[string]*Machine{"m": mustLoad(t, "m", def)}, testFuncs(), hopts{
		workers: 16, onTrans: func(Transition) { transitions.Add(1) },
	})
	const n = 60
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id, err := h.eng.Start(context.Background(), "m", fmt.Sprintf("e%d", i), []byte(fmt.Sprintf(`{"k":%d,"items":[{"n":1},{"n":%d}]}`, i, i)))
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		}(i)
	}
	wg.Wait()
	for i, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		x, err := h.eng.Wait(ctx, id)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		jsonEq(t, x.Output, fmt.Sprintf(`[[{"n":2},{"n":%d}],{"sum":%d}]`, 2*i, i+1))
	}
	if transitions.Load() < n*8 {
		t.Errorf("%d transitions for %d executions, want at least %d", transitions.Load(), n, n*8)
	}
}

// waitPhase polls the store until thread tid has reached phase.
func waitPhase(t *testing.T, h *harness, tid, phase string) {
	t.Helper()
	waitFor(t, "thread "+tid+" in phase "+phase, func() bool {
		r, err := h.st.Get(context.Background(), KindThread, tid)
		if err != nil {
			return false
		}
		var rec threadRec
		return json.Unmarshal(r.Data, &rec) == nil && rec.Phase == phase
	})
}
