package asl

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/workflow"
)

// Config builds an Engine.
type Config struct {
	Store     store.Store
	Machines  map[string]*Machine      // by name, the name Start takes
	Functions map[string]workflow.Func // by resource (after substitution), e.g. "arn:straas:function:Spawn"
	// Queue carries the messages of sqs:sendMessage tasks; required when a machine
	// has one.
	Queue  queue.Queue
	Clock  clock.Clock  // default clock.Real
	Logger *slog.Logger // default slog.Default()
	// Workers bounds the threads (executions, branches, iterations) advanced at once;
	// waiting threads hold none. Default 256.
	Workers int
	// OnTransition, if set, is called after every durable transition (for metrics and
	// benchmarks). It must be fast and must not call the Engine.
	OnTransition func(Transition)
}

// Transition describes one checkpointed state transition.
type Transition struct {
	Execution string
	State     string        // the thread's state after the transition
	Took      time.Duration // from starting the step to its checkpoint being durable, task function time excluded
	Ended     string        // the execution's status if this transition ended it, else ""
}

// Engine runs state machines durably. It implements workflow.Engine.
type Engine struct {
	st       store.Store
	clk      clock.Clock
	log      *slog.Logger
	machines map[string]*Machine
	funcs    map[string]workflow.Func
	msgq     queue.Queue // Config.Queue
	workers  int

	qmu     sync.Mutex
	qcond   *sync.Cond
	queue   []*thr // threads to drive, taken by the worker goroutines
	qdone   bool
	onTrans func(Transition)

	mu       sync.Mutex
	ctx      context.Context // Run's; nil before Run
	stopping bool
	// resuming: Run is loading what the store holds. Executions started meanwhile wait
	// in deferred, so that no execution is driven both from Start's copy and from the
	// resume's (possibly older) copy of its records.
	resuming bool
	deferred []string
	wg       sync.WaitGroup
	execs    map[string]*execRT
	threads  map[string]*thr
	waiters  map[string][]chan struct{} // Wait callers, by execution id
}

var _ workflow.Engine = (*Engine)(nil)

// New checks that every function the machines name is in Functions (and that Queue is
// set if a machine sends to a queue) and returns an Engine. Call Run to execute; Start
// before Run only records the execution.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errs.E(errs.Invalid, "asl: new engine", "no store")
	}
	e := &Engine{
		st: cfg.Store, clk: cfg.Clock, log: cfg.Logger, machines: cfg.Machines,
		funcs: cfg.Functions, msgq: cfg.Queue, onTrans: cfg.OnTransition,
		execs: map[string]*execRT{}, threads: map[string]*thr{}, waiters: map[string][]chan struct{}{},
	}
	if e.clk == nil {
		e.clk = clock.Real{}
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	if e.machines == nil {
		e.machines = map[string]*Machine{}
	}
	if e.funcs == nil {
		e.funcs = map[string]workflow.Func{}
	}
	w := cfg.Workers
	if w <= 0 {
		w = 256
	}
	e.workers = w
	e.qcond = sync.NewCond(&e.qmu)
	names := make([]string, 0, len(e.machines))
	for n := range e.machines {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m := e.machines[n]
		if m == nil {
			return nil, errs.E(errs.Invalid, "asl: new engine", "machine "+n+" is nil")
		}
		if f, ok := m.usesQueue(); ok && e.msgq == nil {
			return nil, &errs.Error{Kind: errs.Invalid, Op: "asl: new engine", Field: n + ": " + f + ".Resource",
				Msg: "sends to a queue, and Config.Queue is nil"}
		}
		var err error
		m.walkStates(func(s *state) {
			if err != nil || s.typ != "Task" {
				return
			}
			fn := ""
			switch s.res {
			case resFunc:
				fn = s.resource
			case resInvoke, resInvokeWait:
				fn = s.funcName
			case resStartSync:
				if s.funcName != "" && e.machines[machineName(s.funcName)] == nil {
					err = &errs.Error{Kind: errs.Invalid, Op: "asl: new engine", Field: n + ": " + s.field + ".Parameters.StateMachineArn",
						Msg: fmt.Sprintf("unknown state machine %q", s.funcName)}
				}
				return
			}
			if fn != "" && e.lookupFunc(fn) == nil {
				err = &errs.Error{Kind: errs.Invalid, Op: "asl: new engine", Field: n + ": " + s.field + ".Resource",
					Msg: fmt.Sprintf("unknown function %q", fn)}
			}
		})
		if err != nil {
			return nil, err
		}
	}
	return e, nil
}

// lookupFunc finds a function by ARN, ignoring a version or alias qualifier.
func (e *Engine) lookupFunc(name string) workflow.Func {
	if f, ok := e.funcs[name]; ok {
		return f
	}
	if i := strings.LastIndexByte(name, ':'); i > 0 {
		if f, ok := e.funcs[name[:i]]; ok {
			return f
		}
	}
	return nil
}

// Run resumes every unfinished execution found in the store, then runs executions
// until ctx ends. It returns once every goroutine it started has stopped. Run may be
// called once.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.ctx != nil {
		e.mu.Unlock()
		return errs.E(errs.Conflict, "asl: run", "already running")
	}
	e.ctx = ctx
	e.resuming = true
	e.mu.Unlock()
	var workers sync.WaitGroup
	for i := 0; i < e.workers; i++ {
		workers.Add(1)
		go func() {
			defer workers.Done()
			e.work(ctx)
		}()
	}
	err := e.resume(ctx)
	e.mu.Lock()
	e.resuming = false
	later := e.deferred
	e.deferred = nil
	e.mu.Unlock()
	if err == nil {
		for _, id := range later {
			if rerr := e.resumeOne(ctx, id); rerr != nil && ctx.Err() == nil {
				e.log.Error("asl: start execution", "execution", id, "err", rerr)
			}
		}
		<-ctx.Done()
	}
	e.mu.Lock()
	e.stopping = true
	e.mu.Unlock()
	e.qmu.Lock()
	e.qdone = true
	e.qcond.Broadcast()
	e.qmu.Unlock()
	workers.Wait()
	e.wg.Wait()
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// goroutine runs fn on a goroutine owned by Run; it reports false when the engine is
// not running (before Run, or stopping).
func (e *Engine) goroutine(fn func(ctx context.Context)) bool {
	e.mu.Lock()
	ctx := e.ctx
	if ctx == nil || e.stopping || ctx.Err() != nil {
		e.mu.Unlock()
		return false
	}
	e.wg.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		fn(ctx)
	}()
	return true
}

func (e *Engine) runCtx() context.Context {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ctx
}

func (e *Engine) running() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ctx != nil && !e.stopping && e.ctx.Err() == nil
}

// validName follows Step Functions' rules for execution names.
func validName(n string) error {
	if n == "" || len(n) > 80 {
		return errs.Invalidf("name", "must be 1 to 80 characters")
	}
	for _, r := range n {
		if r <= ' ' || r == 0x7f || strings.ContainsRune("<>{}[]?*\"#%\\^|~`$&,;:/", r) {
			return errs.Invalidf("name", "must not contain %q", r)
		}
	}
	return nil
}

// canonical parses JSON input and renders it with sorted keys, so that the same
// document always compares equal.
func canonical(in []byte) (json.RawMessage, any, error) {
	if len(bytes.TrimSpace(in)) == 0 {
		in = []byte("{}")
	}
	var v any
	if err := json.Unmarshal(in, &v); err != nil {
		return nil, nil, errs.Invalidf("input", "not JSON: %v", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, nil, errs.Invalidf("input", "%v", err)
	}
	return b, v, nil
}

// Start records a new execution of machine named name (a UUID if empty) and, when the
// engine runs, starts it. The same name with the same input returns the same id; with
// a different input it is an errs.Conflict error (ExecutionAlreadyExists).
func (e *Engine) Start(ctx context.Context, machine, name string, input []byte) (string, error) {
	return e.start(ctx, machine, name, input, "")
}

// start starts an execution; parentToken is the task token of a startExecution.sync:2
// task waiting for it ("" for none).
func (e *Engine) start(ctx context.Context, machine, name string, input []byte, parentToken string) (string, error) {
	op := "asl: start " + machine
	m, ok := e.machines[machine]
	if !ok {
		return "", &errs.Error{Kind: errs.NotFound, Op: op, Msg: "unknown state machine " + machine}
	}
	if name == "" {
		name = uuid.NewString()
	}
	if err := validName(name); err != nil {
		return "", errs.Wrap(errs.Invalid, op, err)
	}
	raw, val, err := canonical(input)
	if err != nil {
		return "", errs.Wrap(errs.Invalid, op, err)
	}
	if len(raw) > MaxPayload {
		return "", &errs.Error{Kind: errs.TooLarge, Op: op, Msg: fmt.Sprintf("input is %d bytes, over %d", len(raw), MaxPayload)}
	}
	id := ExecutionARN(machine, name)
	now := e.clk.Now()
	x := &execRec{Machine: machine, Name: name, Status: workflow.Running, Input: raw, Started: now, ParentToken: parentToken}
	if m.timeout > 0 {
		x.Deadline = now.Add(time.Duration(m.timeout) * time.Second)
	}
	xr, err := x.record(id)
	if err != nil {
		return "", err
	}
	root := &threadRec{State: m.root.startAt, Input: raw, Entered: now}
	root.count("ExecutionStarted", enteredEvent(m.root.states[m.root.startAt]))
	ops := []store.Op{store.Put(xr, store.Absent)}
	tops, err := e.entryOps(id, rootThreadID(id), root, m.root.states[m.root.startAt])
	if err != nil {
		return "", err
	}
	ops = append(ops, tops...)
	if err := e.st.Write(ctx, ops...); err != nil {
		if !errors.Is(err, store.ErrCondition) {
			return "", errs.Wrap(errs.KindOf(err), op, err)
		}
		old, _, gerr := store.Load[execRec](ctx, e.st, KindExec, id)
		if gerr != nil {
			return "", errs.Wrap(errs.KindOf(gerr), op, gerr)
		}
		if old.Machine != machine || !bytes.Equal(old.Input, raw) {
			return "", &errs.Error{Kind: errs.Conflict, Op: op, Msg: "execution " + name + " already exists with a different input"}
		}
		return id, nil
	}
	e.mu.Lock()
	launch := e.ctx != nil && !e.stopping && e.ctx.Err() == nil
	if launch && e.resuming {
		e.deferred = append(e.deferred, id) // Run starts it once the resume is over
		launch = false
	}
	e.mu.Unlock()
	if launch {
		ex := e.newExecRT(id, m, x, 1, val)
		t := &thr{id: rootThreadID(id), ex: ex, sc: m.root, rec: *root, ver: 1}
		if e.register(t) && e.stillRunning(ctx, id) {
			e.kick(t)
		}
	}
	return id, nil
}

// stillRunning reads an execution whose threads were just registered in memory: a Stop
// that closed it meanwhile had nothing in memory to drop, so drop it here. A Stop after
// this read finds the threads registered and drops them itself.
func (e *Engine) stillRunning(ctx context.Context, id string) bool {
	x, _, err := store.Load[execRec](ctx, e.st, KindExec, id)
	if (err == nil && x.Status != workflow.Running) || errs.Is(err, errs.NotFound) {
		e.dropExecRT(id)
		return false
	}
	return true // on a read error, run: a closed execution's threads fail their next write
}

// entryOps creates the record of a new thread entering state st and, for a task that
// waits for a token, the token (created before the task runs, so that a re-run after
// a crash sends the same token).
func (e *Engine) entryOps(exec, tid string, rec *threadRec, st *state) ([]store.Op, error) {
	var ops []store.Op
	rec.Token = ""
	if st != nil && st.waitsForToken() && rec.Phase == phReady {
		rec.Token = newToken()
		k := &tokenRec{Thread: tid, Status: tokOpen}
		kr, err := k.record(rec.Token, exec)
		if err != nil {
			return nil, err
		}
		ops = append(ops, store.Put(kr, store.Absent))
	}
	r, err := rec.record(tid)
	if err != nil {
		return nil, err
	}
	return append([]store.Op{store.Put(r, store.Absent)}, ops...), nil
}

func (e *Engine) newExecRT(id string, m *Machine, x *execRec, ver int64, input any) *execRT {
	e.mu.Lock()
	if ex, ok := e.execs[id]; ok {
		e.mu.Unlock()
		return ex
	}
	ctx, cancel := context.WithCancel(e.ctx)
	ex := &execRT{id: id, m: m, name: x.Name, input: input, started: x.Started, x: *x, ver: ver, ctx: ctx, cancel: cancel,
		threads: map[string]*thr{}}
	e.execs[id] = ex
	e.mu.Unlock()
	if !x.Deadline.IsZero() {
		d := x.Deadline
		e.goroutine(func(rctx context.Context) {
			select {
			case <-e.clk.After(d.Sub(e.clk.Now())):
				if err := e.closeExec(rctx, id, workflow.TimedOut, ErrTimeout, "the execution ran past its TimeoutSeconds"); err != nil && !errs.Is(err, errs.Conflict) {
					e.log.Error("asl: time out execution", "execution", id, "err", err)
				}
			case <-ctx.Done():
			}
		})
	}
	return ex
}

// register adds t to the in-memory index unless a thread of that id is there already
// or its execution has been dropped (closed) meanwhile.
func (e *Engine) register(t *thr) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.threads[t.id]; ok || e.execs[t.ex.id] != t.ex {
		return false
	}
	e.threads[t.id] = t
	t.ex.threads[t.id] = t
	return true
}

func (e *Engine) unregister(t *thr) {
	e.mu.Lock()
	if e.threads[t.id] == t {
		delete(e.threads, t.id)
		delete(t.ex.threads, t.id)
	}
	e.mu.Unlock()
}

func (e *Engine) thread(id string) *thr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.threads[id]
}

// Describe returns the execution with id.
func (e *Engine) Describe(ctx context.Context, id string) (workflow.Execution, error) {
	x, _, err := store.Load[execRec](ctx, e.st, KindExec, id)
	if err != nil {
		if errs.Is(err, errs.NotFound) {
			return workflow.Execution{}, &errs.Error{Kind: errs.NotFound, Op: "asl: describe", Msg: "execution " + id + " does not exist"}
		}
		return workflow.Execution{}, errs.Wrap(errs.KindOf(err), "asl: describe", err)
	}
	return toExecution(id, &x), nil
}

func toExecution(id string, x *execRec) workflow.Execution {
	return workflow.Execution{
		ID: id, Machine: x.Machine, Name: x.Name, Status: x.Status, Input: x.Input, Output: x.Output,
		Error: x.Error, Cause: x.Cause, Started: x.Started, Stopped: x.Stopped,
	}
}

// Wait blocks until the execution has ended (or ctx ends) and returns it.
func (e *Engine) Wait(ctx context.Context, id string) (workflow.Execution, error) {
	ch := make(chan struct{}, 1)
	e.mu.Lock()
	e.waiters[id] = append(e.waiters[id], ch)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		ws := e.waiters[id]
		for i, w := range ws {
			if w == ch {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(e.waiters, id)
		} else {
			e.waiters[id] = ws
		}
		e.mu.Unlock()
	}()
	for {
		x, err := e.Describe(ctx, id)
		if err != nil || x.Status != workflow.Running {
			return x, err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return x, ctx.Err()
		}
	}
}

// ended wakes the Wait callers of an execution.
func (e *Engine) ended(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ch := range e.waiters[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// ListQuery selects executions for List.
type ListQuery struct {
	Status  string // required: workflow.Running, Succeeded, Failed, TimedOut or Aborted
	Machine string // optional filter
	Limit   int    // page size (0: 100)
	After   string // marker from the previous page
}

// List returns executions with a status, oldest first, one page at a time; the
// marker is "" on the last page.
func (e *Engine) List(ctx context.Context, q ListQuery) ([]workflow.Execution, string, error) {
	switch q.Status {
	case workflow.Running, workflow.Succeeded, workflow.Failed, workflow.TimedOut, workflow.Aborted:
	default:
		return nil, "", errs.Invalidf("status", "unknown status %q", q.Status)
	}
	recs, next, err := e.st.List(ctx, KindExec, store.Query{Index: store.IdxParent, Part: statusPart(q.Status), Limit: q.Limit, After: q.After})
	if err != nil {
		return nil, "", errs.Wrap(errs.KindOf(err), "asl: list executions", err)
	}
	out := make([]workflow.Execution, 0, len(recs))
	for _, r := range recs {
		var x execRec
		if err := store.Decode(r, &x); err != nil {
			return nil, "", err
		}
		if q.Machine != "" && x.Machine != q.Machine {
			continue
		}
		out = append(out, toExecution(r.ID, &x))
	}
	return out, next, nil
}

// Events returns the history events of an execution counted as Step Functions
// Standard would record them (ExecutionStarted, TaskStateEntered, TaskScheduled, ...).
// A running execution's count covers its checkpointed progress.
func (e *Engine) Events(ctx context.Context, id string) (EventCounts, error) {
	x, _, err := store.Load[execRec](ctx, e.st, KindExec, id)
	if err != nil {
		return nil, errs.Wrap(errs.KindOf(err), "asl: events", err)
	}
	if x.Status != workflow.Running {
		return EventCounts(x.Events), nil
	}
	out := EventCounts{}
	q := store.Query{From: id + "#", To: id + "$"}
	for {
		recs, next, err := e.st.List(ctx, KindThread, q)
		if err != nil {
			return nil, errs.Wrap(errs.KindOf(err), "asl: events", err)
		}
		for _, r := range recs {
			var t threadRec
			if err := store.Decode(r, &t); err != nil {
				return nil, err
			}
			if t.Excluded {
				continue
			}
			for k, v := range t.Events.toMap() {
				out[k] += v
			}
		}
		if next == "" {
			return out, nil
		}
		q.After = next
	}
}

// EventCounts maps a history event type to how many times it occurs.
type EventCounts map[string]int

// Total is the number of history events.
func (c EventCounts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// Stop aborts a running execution: its waiting tasks are released and its tokens
// cancelled. Stopping a finished execution is not an error.
func (e *Engine) Stop(ctx context.Context, id, errName, cause string) error {
	err := e.closeExec(ctx, id, workflow.Aborted, errName, cause)
	if errs.Is(err, errs.Conflict) {
		return nil
	}
	return err
}

// closeExec ends a running execution from outside (Stop, execution timeout).
func (e *Engine) closeExec(ctx context.Context, id, status, errName, cause string) error {
	op := "asl: stop " + id
	sofar, _ := e.Events(ctx, id) // the history up to now, best effort
	_, err := store.Update(ctx, e.st, KindExec, id, func(r *store.Record) error {
		var x execRec
		if err := store.Decode(*r, &x); err != nil {
			return err
		}
		if x.Status != workflow.Running {
			return errs.Conflictf("execution is %s", x.Status)
		}
		x.Status, x.Error, x.Cause, x.Stopped = status, errName, cause, e.clk.Now()
		x.Events = map[string]int{}
		for k, v := range sofar {
			x.Events[k] = v
		}
		x.Events["ExecutionStarted"] = 1
		switch status {
		case workflow.Aborted:
			x.Events["ExecutionAborted"] = 1
		case workflow.TimedOut:
			x.Events["ExecutionTimedOut"] = 1
		}
		nr, err := x.record(id)
		if err != nil {
			return err
		}
		nr.Version = r.Version
		*r = nr
		return nil
	})
	if err != nil {
		if errs.Is(err, errs.NotFound) {
			return &errs.Error{Kind: errs.NotFound, Op: op, Msg: "execution does not exist"}
		}
		return errs.Wrap(errs.KindOf(err), op, err)
	}
	e.dropExecRT(id)
	e.ended(id)
	if err := e.cleanup(ctx, id); err != nil {
		return err
	}
	if x, _, err := store.Load[execRec](ctx, e.st, KindExec, id); err == nil {
		e.notifyParent(ctx, id, &x)
	}
	return nil
}

// notifyParent completes the task of a parent execution waiting for this one (a
// startExecution.sync:2 task). Should this process die first, the parent's task finds
// out by reading this execution when it looks at its token again.
func (e *Engine) notifyParent(ctx context.Context, id string, x *execRec) {
	if x.ParentToken == "" {
		return
	}
	var err error
	if result, se := childResult(id, x); se != nil {
		err = e.SendTaskFailure(ctx, x.ParentToken, se.Name, se.Cause)
	} else {
		out, _ := json.Marshal(result)
		err = e.SendTaskSuccess(ctx, x.ParentToken, out)
	}
	if err != nil && !errs.Is(err, errs.NotFound) && !errs.Is(err, errs.Conflict) {
		e.log.Warn("asl: notify parent execution", "execution", id, "err", err)
	}
}

// childResult is what a startExecution.sync:2 task gets from a finished child: its
// description (with Input and Output as JSON), or a States.TaskFailed error whose
// cause is that description.
func childResult(id string, x *execRec) (any, *stateError) {
	var in, out any
	_ = json.Unmarshal(x.Input, &in)
	d := map[string]any{
		"ExecutionArn": id, "Name": x.Name, "StateMachineArn": MachineARN(x.Machine), "Status": x.Status,
		"Input": in, "InputDetails": map[string]any{"Included": true},
		"StartDate": float64(x.Started.UnixMilli()), "StopDate": float64(x.Stopped.UnixMilli()),
	}
	if x.Status == workflow.Succeeded {
		if len(x.Output) > 0 {
			_ = json.Unmarshal(x.Output, &out)
		}
		d["Output"], d["OutputDetails"] = out, map[string]any{"Included": true}
		return d, nil
	}
	d["Error"], d["Cause"] = x.Error, x.Cause
	cause, _ := json.Marshal(d)
	return nil, &stateError{Name: ErrTaskFailed, Cause: string(cause)}
}

// dropExecRT forgets an execution's in-memory threads and cancels what they run.
func (e *Engine) dropExecRT(id string) {
	e.mu.Lock()
	ex := e.execs[id]
	delete(e.execs, id)
	var ts []*thr
	if ex != nil {
		for tid, t := range ex.threads {
			ts = append(ts, t)
			delete(e.threads, tid)
		}
		ex.threads = map[string]*thr{}
	}
	e.mu.Unlock()
	if ex != nil {
		ex.cancel()
	}
	for _, t := range ts {
		t.abort()
	}
}

// cleanup deletes the thread and token records of a closed execution.
func (e *Engine) cleanup(ctx context.Context, id string) error {
	for _, spec := range []struct {
		kind string
		q    store.Query
	}{
		{KindThread, store.Query{From: id + "#", To: id + "$", Limit: 100}},
		{KindToken, store.Query{Index: store.IdxParent, Part: id, Limit: 100}},
	} {
		for {
			recs, _, err := e.st.List(ctx, spec.kind, spec.q)
			if err != nil {
				return errs.Wrap(errs.KindOf(err), "asl: clean up "+id, err)
			}
			if len(recs) == 0 {
				break
			}
			ops := make([]store.Op, len(recs))
			for i, r := range recs {
				ops[i] = store.Del(spec.kind, r.ID, store.Any, 0)
			}
			if err := e.st.Write(ctx, ops...); err != nil {
				return errs.Wrap(errs.KindOf(err), "asl: clean up "+id, err)
			}
		}
	}
	return nil
}

// SendTaskSuccess completes the task waiting on token with output.
func (e *Engine) SendTaskSuccess(ctx context.Context, token string, output []byte) error {
	raw, _, err := canonical(output)
	if err != nil {
		return errs.Wrap(errs.Invalid, "asl: send task success", err)
	}
	if len(raw) > MaxPayload {
		return &errs.Error{Kind: errs.TooLarge, Op: "asl: send task success", Msg: "output over 256 KiB"}
	}
	return e.completeToken(ctx, "asl: send task success", token, func(k *tokenRec) {
		k.Status, k.Output = tokSucceeded, raw
	})
}

// SendTaskFailure fails the task waiting on token with errName and cause.
func (e *Engine) SendTaskFailure(ctx context.Context, token, errName, cause string) error {
	return e.completeToken(ctx, "asl: send task failure", token, func(k *tokenRec) {
		k.Status, k.Error, k.Cause = tokFailed, errName, cause
	})
}

// SendTaskHeartbeat tells the task waiting on token that its worker is alive.
func (e *Engine) SendTaskHeartbeat(ctx context.Context, token string) error {
	return e.completeToken(ctx, "asl: send task heartbeat", token, func(k *tokenRec) {
		k.Beat = e.clk.Now()
	})
}

// completeToken changes an open token durably, then wakes its thread if it is here.
func (e *Engine) completeToken(ctx context.Context, op, token string, fn func(*tokenRec)) error {
	var tid string
	_, err := store.Update(ctx, e.st, KindToken, token, func(r *store.Record) error {
		var k tokenRec
		if err := store.Decode(*r, &k); err != nil {
			return err
		}
		if k.Status != tokOpen {
			return errs.Conflictf("the task of this token is already complete")
		}
		fn(&k)
		tid = k.Thread
		nr, err := k.record(token, execOfThread(k.Thread))
		if err != nil {
			return err
		}
		nr.Version = r.Version
		*r = nr
		return nil
	})
	if err != nil {
		if errs.Is(err, errs.NotFound) {
			return &errs.Error{Kind: errs.NotFound, Op: op, Msg: "task token does not exist (unknown, or its task is over)"}
		}
		return errs.Wrap(errs.KindOf(err), op, err)
	}
	if t := e.thread(tid); t != nil {
		e.kick(t)
	}
	return nil
}
