package asl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straas/straas/shared/asl/asltest"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/bolt"
	"github.com/straas/straas/shared/workflow"
)

// openBolt opens (or reopens: a new "process") the bolt store at path.
func openBolt(t *testing.T, path string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(path)
	if err != nil {
		t.Fatalf("open bolt: %v", err)
	}
	return s
}

// A process dies while its execution waits for a task token; the agent's result
// arrives while no engine runs; the next process finishes without re-running the
// function that sent the token.
func TestResumeWhileWaitingForToken(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "asl.db")
	tokens := make(chan string, 4)
	var sends atomic.Int32
	funcs := tokenFuncs(tokens)
	send := funcs["arn:test:function:Send"]
	funcs["arn:test:function:Send"] = func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
		sends.Add(1)
		return send(ctx, in)
	}
	machines := map[string]*Machine{"tok": mustLoad(t, "tok", fmt.Sprintf(tokenMachine, `"TimeoutSeconds":3600,`))}
	clk := clock.NewFake(t0)

	st1 := openBolt(t, path)
	h1 := newHarness(t, machines, funcs, hopts{st: st1, clk: clk})
	id := h1.start("tok", "e1", `{"n":7}`)
	tok := recvToken(t, tokens)
	waitPhase(t, h1, rootThreadID(id), phToken)
	h1.stop()
	if err := st1.Close(); err != nil {
		t.Fatal(err)
	}

	st2 := openBolt(t, path)
	defer st2.Close()
	h2 := newHarness(t, machines, funcs, hopts{st: st2, clk: clk, noRun: true})
	// The engine is not running yet: the result must still be taken, durably.
	if err := h2.eng.SendTaskSuccess(ctx, tok, []byte(`{"agent":"ok"}`)); err != nil {
		t.Fatal(err)
	}
	h2.run()
	x := h2.await(id, false)
	jsonEq(t, x.Output, `{"n":7,"res":{"agent":"ok"}}`)
	if n := sends.Load(); n != 1 {
		t.Errorf("the token-sending function ran %d times, want 1", n)
	}
}

// A process dies in the middle of a Map: finished iterations are not run again,
// unfinished ones are, and the output is complete and in order.
func TestResumeDuringMap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "asl.db")
	var mu sync.Mutex
	calls := map[int]int{}
	work := func(block bool) workflow.Func {
		return func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			var v struct{ I int }
			if err := json.Unmarshal(in, &v); err != nil {
				return nil, err
			}
			mu.Lock()
			calls[v.I]++
			mu.Unlock()
			if block && v.I >= 5 {
				<-ctx.Done() // this process is about to die
				return nil, ctx.Err()
			}
			return json.Marshal(map[string]int{"sq": v.I * v.I})
		}
	}
	def := `{"StartAt":"M","States":{
		"M":{"Type":"Map","ItemsPath":"$.items","ItemSelector":{"I.$":"$$.Map.Item.Value"},
			"ItemProcessor":{"StartAt":"Work","States":{
				"Work":{"Type":"Task","Resource":"arn:test:function:Work","Next":"Tag"},
				"Tag":{"Type":"Pass","Parameters":{"sq.$":"$.sq","done":true},"End":true}}},
			"ResultPath":"$.results","Next":"Sum"},
		"Sum":{"Type":"Pass","Parameters":{"n.$":"States.ArrayLength($.results)","results.$":"$.results"},"End":true}}}`
	machines := map[string]*Machine{"m": mustLoad(t, "m", def)}
	clk := clock.NewFake(t0)

	st1 := openBolt(t, path)
	h1 := newHarness(t, machines, map[string]workflow.Func{"arn:test:function:Work": work(true)}, hopts{st: st1, clk: clk})
	id := h1.start("m", "e1", `{"items":[0,1,2,3,4,5,6,7,8,9]}`)
	waitFor(t, "five finished iterations and five blocked", func() bool {
		mu.Lock()
		n := len(calls)
		mu.Unlock()
		return n == 10 && countPhase(t, st1, id, phDone) == 5
	})
	h1.stop()
	st1.Close()

	st2 := openBolt(t, path)
	defer st2.Close()
	h2 := newHarness(t, machines, map[string]workflow.Func{"arn:test:function:Work": work(false)}, hopts{st: st2, clk: clk})
	x := h2.await(id, false)
	if x.Status != workflow.Succeeded {
		t.Fatalf("status %s %s %s", x.Status, x.Error, x.Cause)
	}
	var want []map[string]any
	for i := 0; i < 10; i++ {
		want = append(want, map[string]any{"sq": i * i, "done": true})
	}
	wb, _ := json.Marshal(map[string]any{"n": 10, "results": want})
	jsonEq(t, x.Output, string(wb))
	mu.Lock()
	defer mu.Unlock()
	for i := 0; i < 10; i++ {
		want := 1
		if i >= 5 {
			want = 2
		}
		if calls[i] != want {
			t.Errorf("item %d ran %d times, want %d", i, calls[i], want)
		}
	}
	ev, err := h2.eng.Events(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if ev["MapIterationSucceeded"] != 10 || ev["MapIterationStarted"] != 10 {
		t.Errorf("events after resume: %v", ev)
	}
}

func countPhase(t *testing.T, s store.Store, exec, phase string) int {
	recs, _, err := s.List(context.Background(), KindThread, store.Query{From: exec + "#", To: exec + "$", Limit: 1000})
	if err != nil {
		return -1
	}
	n := 0
	for _, r := range recs {
		var rec threadRec
		if json.Unmarshal(r.Data, &rec) == nil && rec.Phase == phase {
			n++
		}
	}
	return n
}

// crashMachine goes through every kind of step: a task, a Map of tasks and waits, a
// Parallel with a task waiting for a token, a Choice.
const crashMachine = `{"StartAt":"First","States":{
	"First":{"Type":"Task","Resource":"arn:test:function:Echo","ResultPath":"$.echo","Next":"Items"},
	"Items":{"Type":"Map","ItemsPath":"$.items","MaxConcurrency":2,"ItemSelector":{"n.$":"$$.Map.Item.Value"},
		"ItemProcessor":{"StartAt":"D","States":{
			"D":{"Type":"Task","Resource":"arn:test:function:Double","Next":"W"},
			"W":{"Type":"Wait","Seconds":1,"End":true}}},
		"ResultPath":"$.doubled","Next":"Both"},
	"Both":{"Type":"Parallel","Branches":[
		{"StartAt":"WaitTok","States":{"WaitTok":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke.waitForTaskToken",
			"Parameters":{"FunctionName":"arn:test:function:Send","Payload":{"token.$":"$$.Task.Token"}},"TimeoutSeconds":86400,"End":true}}},
		{"StartAt":"Const","States":{"Const":{"Type":"Pass","Result":"c","End":true}}}],
		"ResultPath":"$.both","Next":"Check"},
	"Check":{"Type":"Choice","Choices":[{"Variable":"$.both[1]","StringEquals":"c","Next":"Done"}],"Default":"Bad"},
	"Done":{"Type":"Succeed"},
	"Bad":{"Type":"Fail","Error":"Bad"}}}`

const crashOutput = `{"items":[1,2,3],"echo":{"items":[1,2,3]},"doubled":[{"n":2},{"n":4},{"n":6}],"both":[{"agent":"done"},"c"]}`

// crashRun is one "process": an engine on a (possibly killable) store, an agent that
// answers task tokens, and call counters.
type crashRun struct {
	eng   *Engine
	calls sync.Map // function -> *atomic.Int32
}

func (r *crashRun) count(name string) int32 {
	v, ok := r.calls.Load(name)
	if !ok {
		return 0
	}
	return v.(*atomic.Int32).Load()
}

func crashFuncs(r *crashRun, tokens chan<- string) map[string]workflow.Func {
	base := testFuncs()
	base["arn:test:function:Send"] = fn(func(in map[string]any) (any, error) {
		tok, _ := in["token"].(string)
		tokens <- tok
		return map[string]any{}, nil
	})
	// SelfComplete completes its own token before returning (as AwaitDependencies does
	// when the dependencies are done), ignoring a token already complete or gone.
	base["arn:test:function:SelfComplete"] = func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
		var v struct{ Token string }
		if err := json.Unmarshal(in, &v); err != nil {
			return nil, err
		}
		err := r.eng.SendTaskSuccess(ctx, v.Token, []byte(`{"self":"done"}`))
		if err != nil && !errs.Is(err, errs.NotFound) && !errs.Is(err, errs.Conflict) {
			return nil, err
		}
		return json.RawMessage(`{}`), nil
	}
	out := map[string]workflow.Func{}
	for name, f := range base {
		name, f := name, f
		out[name] = func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			c, _ := r.calls.LoadOrStore(name, new(atomic.Int32))
			c.(*atomic.Int32).Add(1)
			return f(ctx, in)
		}
	}
	return out
}

// agent answers tokens as they come, through whichever engine is current, and keeps
// retrying those a dead process could not take.
func agent(ctx context.Context, tokens <-chan string, eng *atomic.Pointer[Engine]) {
	var pending []string
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case tok := <-tokens:
			pending = append(pending, tok)
		case <-tick.C:
		}
		var keep []string
		for _, tok := range pending {
			err := eng.Load().SendTaskSuccess(ctx, tok, []byte(`{"agent":"done"}`))
			if err != nil && !errs.Is(err, errs.NotFound) && !errs.Is(err, errs.Conflict) {
				keep = append(keep, tok)
			}
		}
		pending = keep
	}
}

// The process is killed at every write in turn (nothing after it becomes durable); a
// new process on the same store must finish with the same output, and must not re-run
// work whose completion had been checkpointed.
func TestKillAtEveryWrite(t *testing.T) {
	machines := map[string]*Machine{"m": mustLoad(t, "m", crashMachine)}
	killSweep(t, machines, `{"items":[1,2,3]}`, crashOutput, 20, func(t *testing.T, first runResult, snap map[string]bool, r *crashRun) {
		if first.started && !snap["First/"] && r.count("arn:test:function:Echo") != 0 {
			t.Errorf("First's completion was durable, yet Echo ran again")
		}
		if snap["WaitTok/"+phToken] && r.count("arn:test:function:Send") != 0 {
			t.Errorf("the token wait was durable, yet the token-sending function ran again")
		}
	})
}

// The same for a parent whose task runs a child execution (startExecution.sync:2).
func TestKillAtEveryWriteChildExecution(t *testing.T) {
	machines := map[string]*Machine{
		"m": mustLoad(t, "m", `{"StartAt":"Run","States":{"Run":{"Type":"Task","Resource":"arn:aws:states:::states:startExecution.sync:2",
			"Parameters":{"StateMachineArn":"arn:straas:states:local:0:stateMachine:child","Input":{"n.$":"$.n"}},
			"ResultSelector":{"out.$":"$.Output","status.$":"$.Status"},"End":true}}}`),
		"child": mustLoad(t, "child", `{"StartAt":"D","States":{"D":{"Type":"Task","Resource":"arn:test:function:Double","Next":"W"},
			"W":{"Type":"Wait","Seconds":1,"End":true}}}`),
	}
	killSweep(t, machines, `{"n":21}`, `{"out":{"n":42},"status":"SUCCEEDED"}`, 5, func(t *testing.T, first runResult, snap map[string]bool, r *crashRun) {
		if snap["W/"+phWait] && r.count("arn:test:function:Double") != 0 {
			t.Errorf("the child's task completion was durable, yet it ran again")
		}
	})
}

// killSweep kills the process after 0, 1, 2, ... writes until the kill point lies
// past the end of the run (how many writes a run makes varies a little with timing: a
// write that loses a race to a concurrent SendTaskSuccess is attempted again). After
// each kill a second process must finish with want; check looks at what was re-run.
func killSweep(t *testing.T, machines map[string]*Machine, input, want string, minWrites int64,
	check func(t *testing.T, first runResult, snap map[string]bool, second *crashRun)) {
	k := int64(0)
	for ; k < 500; k++ {
		beyondEnd := false
		t.Run(fmt.Sprintf("kill_after_%d_writes", k), func(t *testing.T) {
			mem := asltest.NewMemStore()
			ag := newAgent(t) // outlives the processes, as a real agent does
			first := runUntil(t, machines, asltest.NewKillable(mem), k, input, ag)
			if first.finished {
				beyondEnd = true
				return
			}
			// What was durable when the process died.
			snap := threadStates(t, mem)
			second := runUntil(t, machines, asltest.NewKillable(mem), -1, input, ag)
			if !second.finished {
				t.Fatal("the second process did not finish")
			}
			x := second.exec
			if x.Status != workflow.Succeeded {
				t.Fatalf("status %s %s %s", x.Status, x.Error, x.Cause)
			}
			jsonEq(t, x.Output, want)
			check(t, first, snap, second.run)
			// Child executions end too; nothing is left behind.
			waitFor(t, "every thread record gone", func() bool { return mem.Count(KindThread, "") == 0 })
			if n := mem.Count(KindToken, ""); n != 0 {
				t.Errorf("%d token records left", n)
			}
		})
		if beyondEnd {
			break
		}
	}
	if k < minWrites {
		t.Errorf("the run finished after only %d writes; expected more", k)
	}
}

type runResult struct {
	writes   int64
	finished bool
	started  bool
	exec     workflow.Execution
	run      *crashRun
}

// testAgent answers task tokens across processes.
type testAgent struct {
	tokens chan string
	eng    atomic.Pointer[Engine]
}

func newAgent(t *testing.T) *testAgent {
	a := &testAgent{tokens: make(chan string, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); agent(ctx, a.tokens, &a.eng) }()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

// runUntil runs one process on ks, killing it after killAfter writes (-1: never), until
// the execution ends or the process is dead.
func runUntil(t *testing.T, machines map[string]*Machine, ks *asltest.Killable, killAfter int64, input string, ag *testAgent) runResult {
	t.Helper()
	ks.KillAfter(killAfter)
	run := &crashRun{}
	clk := clock.NewFake(t0)
	eng, err := New(Config{Store: ks, Machines: machines, Functions: crashFuncs(run, ag.tokens), Clock: clk, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	run.eng = eng
	ag.eng.Store(eng)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	res := runResult{run: run}
	id, err := eng.Start(context.Background(), "m", "crash", []byte(input))
	if err != nil && !errors.Is(err, asltest.ErrKilled) {
		t.Fatalf("start: %v", err)
	}
	if err != nil {
		id = ExecutionARN("m", "crash")
	} else {
		res.started = true
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if ks.Killed() {
			res.writes = ks.Writes()
			return res
		}
		x, err := eng.Describe(context.Background(), id)
		if err == nil && x.Status != workflow.Running {
			res.finished, res.exec, res.writes = true, x, ks.Writes()
			return res
		}
		if clk.Waiters() > 0 {
			clk.Advance(time.Second)
		}
		time.Sleep(100 * time.Microsecond)
	}
	t.Fatalf("neither finished nor killed within 15s (kill after %d)", killAfter)
	return res
}

// threadStates lists "state/phase" of every thread record and "token/status" of every
// token record, for deciding what work a resumed process may repeat.
func threadStates(t *testing.T, s *asltest.MemStore) map[string]bool {
	recs, _, err := s.List(context.Background(), KindThread, store.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	var keys []string
	for _, r := range recs {
		var rec threadRec
		if err := json.Unmarshal(r.Data, &rec); err != nil {
			t.Fatal(err)
		}
		out[rec.State+"/"+rec.Phase] = true
		keys = append(keys, rec.State+"/"+rec.Phase)
	}
	toks, _, err := s.List(context.Background(), KindToken, store.Query{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range toks {
		var k tokenRec
		if err := json.Unmarshal(r.Data, &k); err != nil {
			t.Fatal(err)
		}
		out["token/"+k.Status] = true
		keys = append(keys, "token/"+k.Status)
	}
	sort.Strings(keys)
	t.Logf("durable threads at the kill: %v", keys)
	return out
}
