package asl

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/workflow"
)

// execRT is an execution this engine is running.
type execRT struct {
	id      string
	m       *Machine
	name    string
	input   any // parsed, read-only
	started time.Time
	x       execRec // the exec record as of version ver
	ver     int64   // only the root thread's driver uses x and ver
	ctx     context.Context
	cancel  context.CancelFunc
	threads map[string]*thr // guarded by Engine.mu
}

// thr is a thread in memory: the root of an execution, a Parallel branch or a Map
// iteration. One goroutine at a time drives it (running); kicks that arrive while it
// runs make it look again (dirty), so wake-ups are level-triggered and never lost.
type thr struct {
	id     string
	ex     *execRT
	sc     *scope
	parent *thr
	inMap  bool

	// Owned by the driving goroutine.
	stepBegin time.Time // for Transition.Took
	rec       threadRec
	ver       int64
	children  []*thr

	mu       sync.Mutex
	running  bool
	dirty    bool
	gone     bool
	launched bool
	fin      *threadRec // set once a child thread is done or failed
	timerAt  time.Time
	cancel   context.CancelFunc
}

func (t *thr) isGone() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gone
}

// abort stops t: in-flight work is cancelled and later commits are skipped.
func (t *thr) abort() {
	t.mu.Lock()
	t.gone = true
	c := t.cancel
	t.mu.Unlock()
	if c != nil {
		c()
	}
}

// kick makes t look at its situation again (a token arrived, a timer fired, a child ended).
func (e *Engine) kick(t *thr) {
	t.mu.Lock()
	if t.gone {
		t.mu.Unlock()
		return
	}
	if t.running {
		t.dirty = true
		t.mu.Unlock()
		return
	}
	t.running = true
	t.mu.Unlock()
	e.qmu.Lock()
	if e.qdone || !e.running() {
		e.qmu.Unlock()
		t.mu.Lock()
		t.running = false
		t.mu.Unlock()
		return
	}
	e.queue = append(e.queue, t)
	e.qcond.Signal()
	e.qmu.Unlock()
}

// work is one of the Workers goroutines: long-lived, so that their stacks stay grown.
func (e *Engine) work(ctx context.Context) {
	for {
		e.qmu.Lock()
		for len(e.queue) == 0 && !e.qdone {
			e.qcond.Wait()
		}
		if e.qdone {
			e.qmu.Unlock()
			return
		}
		t := e.queue[0]
		e.queue[0] = nil
		e.queue = e.queue[1:]
		e.qmu.Unlock()
		e.drive(ctx, t)
	}
}

func (e *Engine) drive(ctx context.Context, t *thr) {
	for {
		t.mu.Lock()
		t.dirty = false
		t.mu.Unlock()
		for !t.isGone() && t.ex.ctx.Err() == nil && e.step(t) {
		}
		t.mu.Lock()
		if !t.dirty || t.gone {
			t.running = false
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
	}
}

// armTimer kicks t at due (unless a timer for an earlier time is armed already).
func (e *Engine) armTimer(t *thr, due time.Time) {
	t.mu.Lock()
	if !t.timerAt.IsZero() && !t.timerAt.After(due) {
		t.mu.Unlock()
		return
	}
	t.timerAt = due
	t.mu.Unlock()
	armed := e.goroutine(func(ctx context.Context) {
		select {
		case <-e.clk.After(due.Sub(e.clk.Now())):
		case <-t.ex.ctx.Done():
		case <-ctx.Done():
		}
		t.mu.Lock()
		if t.timerAt.Equal(due) {
			t.timerAt = time.Time{}
		}
		t.mu.Unlock()
		if ctx.Err() == nil && t.ex.ctx.Err() == nil {
			e.kick(t)
		}
	})
	if !armed {
		t.mu.Lock()
		t.timerAt = time.Time{}
		t.mu.Unlock()
	}
}

func decodeJSON(raw json.RawMessage) (any, *stateError) {
	if len(raw) == 0 {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fail(ErrRuntime, "bad JSON: %v", err)
	}
	return v, nil
}

func encodeJSON(v any) (json.RawMessage, *stateError) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fail(ErrRuntime, "cannot encode output: %v", err)
	}
	if len(b) > MaxPayload {
		return nil, fail(ErrDataLimit, "the state output is %d bytes, over the %d byte limit", len(b), MaxPayload)
	}
	return b, nil
}

type mapItem struct {
	idx int
	val any
}

// ctxFn builds the context object ($$) lazily: most states never read it.
func (e *Engine) ctxFn(t *thr, st *state, item *mapItem) func() any {
	var cached any
	return func() any {
		if cached != nil {
			return cached
		}
		m := map[string]any{
			"Execution": map[string]any{
				"Id": t.ex.id, "Name": t.ex.name, "Input": t.ex.input,
				"StartTime": fmtTime(t.ex.started), "RoleArn": "arn:straas:iam::0:role/straas",
			},
			"StateMachine": map[string]any{"Id": MachineARN(t.ex.m.name), "Name": t.ex.m.name},
			"State": map[string]any{
				"Name": st.name, "EnteredTime": fmtTime(t.rec.Entered), "RetryCount": float64(t.rec.Retries),
			},
		}
		if t.rec.Token != "" {
			m["Task"] = map[string]any{"Token": t.rec.Token}
		}
		if item != nil {
			m["Map"] = map[string]any{"Item": map[string]any{"Index": float64(item.idx), "Value": item.val}}
		}
		cached = m
		return m
	}
}

func applyPath(p optPath, v any, ctx func() any, what string) (any, *stateError) {
	switch {
	case p.null:
		return map[string]any{}, nil
	case p.p == nil:
		return v, nil
	}
	out, ok := p.p.get(v, ctx)
	if !ok {
		return nil, fail(ErrRuntime, "invalid %s %s: the path references nothing in the input", what, p.p.raw)
	}
	return out, nil
}

func enteredEvent(st *state) string { return st.typ + "StateEntered" }

func exitedEvent(st *state) string { return st.typ + "StateExited" }

// step advances t by one move. It reports whether t can move again right away.
func (e *Engine) step(t *thr) bool {
	t.stepBegin = time.Now()
	st := t.sc.states[t.rec.State]
	if st == nil {
		nr := t.rec.clone()
		return e.finish(t, &nr, nil, fail(ErrRuntime, "unknown state %q (did the definition change?)", t.rec.State), nil, 0)
	}
	now := e.clk.Now()
	switch t.rec.Phase {
	case phDone, phFailed:
		e.publish(t)
		return false
	case phWait:
		if now.Before(t.rec.Due) {
			e.armTimer(t, t.rec.Due)
			return false
		}
		input, se := decodeJSON(t.rec.Input)
		nr := t.rec.clone()
		if se != nil {
			return e.finish(t, &nr, nil, se, nil, 0)
		}
		out, se := applyPath(st.inputPath, input, e.ctxFn(t, st, nil), "InputPath")
		if se == nil {
			out, se = applyPath(st.outputPath, out, e.ctxFn(t, st, nil), "OutputPath")
		}
		if se != nil {
			return e.handleError(t, st, input, se, &nr, nil, 0)
		}
		return e.goNext(t, st, &nr, st.next, st.end, out, nil, 0)
	case phRetry:
		if now.Before(t.rec.Due) {
			e.armTimer(t, t.rec.Due)
			return false
		}
	case phToken:
		return e.checkToken(t, st)
	case phChildren:
		return e.checkChildren(t, st)
	}
	return e.run(t, st)
}

// run executes state st of t from its input.
func (e *Engine) run(t *thr, st *state) bool {
	input, se := decodeJSON(t.rec.Input)
	nr := t.rec.clone()
	if se != nil {
		return e.finish(t, &nr, nil, se, nil, 0)
	}
	ctxf := e.ctxFn(t, st, nil)
	eff, se := applyPath(st.inputPath, input, ctxf, "InputPath")
	if se != nil {
		return e.handleError(t, st, input, se, &nr, nil, 0)
	}
	switch st.typ {
	case "Pass":
		result := eff
		if st.parameters != nil {
			if result, se = st.parameters.eval(&evalEnv{data: eff, ctx: ctxf}); se != nil {
				return e.handleError(t, st, input, se, &nr, nil, 0)
			}
		}
		if st.hasResult {
			result = st.result
		}
		return e.succeedState(t, st, input, result, &nr, nil, 0)
	case "Choice":
		env := &evalEnv{data: eff, ctx: ctxf}
		next := ""
		for _, r := range st.choices {
			ok, se := r.match(env)
			if se != nil {
				return e.handleError(t, st, input, se, &nr, nil, 0)
			}
			if ok {
				next = r.next
				break
			}
		}
		if next == "" {
			next = st.dflt
		}
		if next == "" {
			return e.handleError(t, st, input, fail(ErrNoChoiceMatched, "no choice rule matched and there is no Default"), &nr, nil, 0)
		}
		out, se := applyPath(st.outputPath, eff, ctxf, "OutputPath")
		if se != nil {
			return e.handleError(t, st, input, se, &nr, nil, 0)
		}
		return e.goNext(t, st, &nr, next, false, out, nil, 0)
	case "Wait":
		due, se := e.waitUntil(t, st, eff)
		if se != nil {
			return e.handleError(t, st, input, se, &nr, nil, 0)
		}
		if !e.clk.Now().Before(due) {
			out, se := applyPath(st.outputPath, eff, ctxf, "OutputPath")
			if se != nil {
				return e.handleError(t, st, input, se, &nr, nil, 0)
			}
			return e.goNext(t, st, &nr, st.next, st.end, out, nil, 0)
		}
		nr.Phase, nr.Due = phWait, due
		if !e.commit(t, &nr, nil, 0) {
			return false
		}
		e.armTimer(t, due)
		return false
	case "Succeed":
		out, se := applyPath(st.outputPath, eff, ctxf, "OutputPath")
		if se != nil {
			return e.handleError(t, st, input, se, &nr, nil, 0)
		}
		nr.count(exitedEvent(st))
		return e.finish(t, &nr, out, nil, nil, 0)
	case "Fail":
		se := &stateError{Name: st.errName, Cause: st.cause}
		env := &evalEnv{data: input, ctx: ctxf}
		for _, f := range []struct {
			x   expr
			dst *string
		}{{st.errExpr, &se.Name}, {st.causeExpr, &se.Cause}} {
			if f.x == nil {
				continue
			}
			v, xe := f.x.eval(env)
			if xe != nil {
				return e.finish(t, &nr, nil, xe, nil, 0)
			}
			s, ok := v.(string)
			if !ok {
				return e.finish(t, &nr, nil, fail(ErrRuntime, "ErrorPath/CausePath must yield a string, got %s", show(v)), nil, 0)
			}
			*f.dst = s
		}
		return e.finish(t, &nr, nil, se, nil, 0)
	case "Task":
		return e.runTask(t, st, input, eff, &nr, ctxf)
	case "Parallel", "Map":
		return e.startChildren(t, st, input, eff, &nr, ctxf)
	}
	return e.finish(t, &nr, nil, fail(ErrRuntime, "unknown state type %s", st.typ), nil, 0)
}

func (e *Engine) waitUntil(t *thr, st *state, eff any) (time.Time, *stateError) {
	switch {
	case st.hasSeconds:
		return t.rec.Entered.Add(time.Duration(st.seconds) * time.Second), nil
	case st.hasTimestamp:
		return st.timestamp, nil
	case st.secondsPath != nil:
		v, ok := st.secondsPath.get(eff, e.ctxFn(t, st, nil))
		n, isNum := v.(float64)
		if !ok || !isNum || n < 0 || n != math.Trunc(n) {
			return time.Time{}, fail(ErrRuntime, "SecondsPath %s must select a non-negative integer, got %s", st.secondsPath.raw, show(v))
		}
		return t.rec.Entered.Add(time.Duration(n) * time.Second), nil
	default:
		v, ok := st.timestampPath.get(eff, e.ctxFn(t, st, nil))
		s, isStr := v.(string)
		ts, err := parseTimestamp(s)
		if !ok || !isStr || err != nil {
			return time.Time{}, fail(ErrRuntime, "TimestampPath %s must select an RFC 3339 timestamp, got %s", st.timestampPath.raw, show(v))
		}
		return ts, nil
	}
}

// succeedState finishes st with result: ResultSelector, ResultPath, OutputPath, then on.
func (e *Engine) succeedState(t *thr, st *state, input, result any, nr *threadRec, extra []store.Op, tokVer int64) bool {
	ctxf := e.ctxFn(t, st, nil)
	var se *stateError
	if st.resultSelector != nil {
		if result, se = st.resultSelector.eval(&evalEnv{data: result, ctx: ctxf}); se != nil {
			return e.handleError(t, st, input, se, nr, extra, tokVer)
		}
	}
	out, se := applyResultPath(st.resultPath, input, result)
	if se != nil {
		return e.handleError(t, st, input, se, nr, extra, tokVer)
	}
	if out, se = applyPath(st.outputPath, out, ctxf, "OutputPath"); se != nil {
		return e.handleError(t, st, input, se, nr, extra, tokVer)
	}
	return e.goNext(t, st, nr, st.next, st.end, out, extra, tokVer)
}

func applyResultPath(p optPath, input, result any) (any, *stateError) {
	switch {
	case p.null:
		return input, nil
	case p.p == nil:
		return result, nil
	}
	out, err := setRef(input, p.p, deepCopy(result))
	if err != nil {
		return nil, fail(ErrResultPathMatch, "%v", err)
	}
	return out, nil
}

// matches reports whether an ErrorEquals list catches the error name. States.ALL and
// States.TaskFailed do not catch States.Runtime or States.DataLimitExceeded, and
// States.TaskFailed does not catch States.Timeout, as on Step Functions.
func matches(list []string, name string) bool {
	for _, e := range list {
		switch {
		case e == name:
			return true
		case name == ErrRuntime || name == ErrDataLimit:
		case e == ErrAll:
			return true
		case e == ErrTaskFailed && name != ErrTimeout:
			return true
		}
	}
	return false
}

// handleError applies st's Retry and Catch to an error, else fails the thread.
func (e *Engine) handleError(t *thr, st *state, input any, se *stateError, nr *threadRec, extra []store.Op, tokVer int64) bool {
	for i, r := range st.retry {
		if !matches(r.errors, se.Name) {
			continue
		}
		for len(nr.Tries) < len(st.retry) {
			nr.Tries = append(nr.Tries, 0)
		}
		if nr.Tries[i] >= r.maxAttempts {
			break // this retrier is used up: on to Catch
		}
		delay := r.interval * math.Pow(r.backoff, float64(nr.Tries[i]))
		if r.maxDelay > 0 && delay > r.maxDelay {
			delay = r.maxDelay
		}
		if r.jitter {
			delay = rand.Float64() * delay
		}
		nr.Tries[i]++
		nr.Retries++
		nr.Phase, nr.Due = phRetry, e.clk.Now().Add(time.Duration(delay*float64(time.Second)))
		nr.Token, nr.Since, nr.Deadline, nr.Beat, nr.Child = "", time.Time{}, time.Time{}, 0, ""
		nr.N, nr.MaxConc = 0, 0
		if !e.commit(t, nr, extra, tokVer) {
			return false
		}
		e.log.Debug("asl: retrying", "execution", t.ex.id, "state", st.name, "error", se.Name, "attempt", nr.Tries[i])
		return true // step sees the Due and arms the timer
	}
	for _, c := range st.catch {
		if !matches(c.errors, se.Name) {
			continue
		}
		errOut := map[string]any{"Error": se.Name, "Cause": se.Cause}
		out, rse := applyResultPath(c.resultPath, input, errOut)
		if rse != nil {
			return e.finish(t, nr, nil, rse, extra, tokVer)
		}
		return e.goNext(t, st, nr, c.next, false, out, extra, tokVer)
	}
	return e.finish(t, nr, nil, se, extra, tokVer)
}

// goNext leaves st with out for next (or ends the thread).
func (e *Engine) goNext(t *thr, st *state, nr *threadRec, next string, end bool, out any, extra []store.Op, tokVer int64) bool {
	nr.count(exitedEvent(st))
	if end {
		return e.finish(t, nr, out, nil, extra, tokVer)
	}
	raw, se := encodeJSON(out)
	if se != nil {
		return e.finish(t, nr, nil, se, extra, tokVer)
	}
	ns := t.sc.states[next]
	nr.State, nr.Input, nr.Phase, nr.Entered = next, raw, phReady, e.clk.Now()
	nr.Tries, nr.Retries, nr.Due, nr.Since, nr.Deadline, nr.Beat = nil, 0, time.Time{}, time.Time{}, time.Time{}, 0
	nr.Token, nr.Child, nr.N, nr.MaxConc = "", "", 0, 0
	nr.Gen++
	nr.count(enteredEvent(ns))
	return e.commit(t, nr, extra, tokVer)
}

// tokenOps creates the token a task about to run needs and drops the one it no
// longer needs (with tokVer > 0: only if nobody completed it meanwhile).
func (e *Engine) tokenOps(t *thr, nr *threadRec, tokVer int64) ([]store.Op, error) {
	var ops []store.Op
	if st := t.sc.states[nr.State]; nr.Token == "" && st != nil && st.waitsForToken() &&
		(nr.Phase == phReady || nr.Phase == phRetry) {
		nr.Token = newToken()
		k := &tokenRec{Thread: t.id, Status: tokOpen}
		kr, err := k.record(nr.Token, t.ex.id)
		if err != nil {
			return nil, err
		}
		ops = append(ops, store.Put(kr, store.Absent))
	}
	if old := t.rec.Token; old != "" && old != nr.Token {
		if tokVer > 0 {
			ops = append(ops, store.Del(KindToken, old, store.AtVersion, tokVer))
		} else {
			ops = append(ops, store.Del(KindToken, old, store.Any, 0))
		}
	}
	return ops, nil
}

// commit makes nr the durable checkpoint of t, with extra ops in the same write.
func (e *Engine) commit(t *thr, nr *threadRec, extra []store.Op, tokVer int64) bool {
	if t.parent != nil {
		nr.Started = true
	}
	ops, err := e.tokenOps(t, nr, tokVer)
	if err != nil {
		e.log.Error("asl: checkpoint", "thread", t.id, "err", err)
		return false
	}
	r, err := nr.record(t.id)
	if err != nil {
		e.log.Error("asl: checkpoint", "thread", t.id, "err", err)
		return false
	}
	r.Version = t.ver
	ops = append(append([]store.Op{store.Put(r, store.AtVersion)}, ops...), extra...)
	if err := e.st.Write(t.ex.ctx, ops...); err != nil {
		return e.writeFailed(t, err)
	}
	t.rec = *nr
	t.ver++
	e.transitioned(t, "")
	return true
}

func (e *Engine) transitioned(t *thr, ended string) {
	now := time.Now()
	if e.onTrans != nil {
		e.onTrans(Transition{Execution: t.ex.id, State: t.rec.State, Took: now.Sub(t.stepBegin), Ended: ended})
	}
	t.stepBegin = now // a step may checkpoint more than once
}

// writeFailed decides what a failed checkpoint means. The record was deleted: t was
// stopped or aborted with its siblings. It is unchanged: a token it meant to drop was
// completed meanwhile, so look again. Anything else (the store failing, the engine
// stopping): reload what is durable and try again a little later.
func (e *Engine) writeFailed(t *thr, err error) bool {
	if t.ex.ctx.Err() != nil {
		return false
	}
	r, gerr := e.st.Get(t.ex.ctx, KindThread, t.id)
	switch {
	case errs.Is(gerr, errs.NotFound):
		e.forget(t)
		return false
	case gerr == nil && r.Version == t.ver && errors.Is(err, store.ErrCondition):
		return true
	case gerr == nil:
		var rec threadRec
		if derr := store.Decode(r, &rec); derr == nil {
			t.rec, t.ver = rec, r.Version
		}
	}
	e.log.Warn("asl: checkpoint failed; retrying", "thread", t.id, "err", err)
	e.goroutine(func(ctx context.Context) {
		select {
		case <-time.After(100 * time.Millisecond): // the store's trouble, not workflow time
			e.kick(t)
		case <-ctx.Done():
		}
	})
	return false
}

// forget drops t (and anything below it) from memory.
func (e *Engine) forget(t *thr) {
	e.mu.Lock()
	var ts []*thr
	for id, x := range t.ex.threads {
		if id == t.id || strings.HasPrefix(id, t.id+".") {
			ts = append(ts, x)
			delete(e.threads, id)
			delete(t.ex.threads, id)
		}
	}
	e.mu.Unlock()
	t.abort()
	for _, x := range ts {
		x.abort()
	}
}

// finish ends thread t with out, or with se when it failed.
func (e *Engine) finish(t *thr, nr *threadRec, out any, se *stateError, extra []store.Op, tokVer int64) bool {
	var raw json.RawMessage
	if se == nil {
		var ee *stateError
		if raw, ee = encodeJSON(out); ee != nil {
			se = ee
		}
	}
	if t.parent == nil {
		return e.finishRoot(t, nr, raw, se, extra, tokVer)
	}
	if se != nil {
		nr.Phase, nr.Error, nr.Cause, nr.Output = phFailed, se.Name, se.Cause, nil
		if t.inMap {
			nr.count("MapIterationFailed")
		}
	} else {
		nr.Phase, nr.Output = phDone, raw
		if t.inMap {
			nr.count("MapIterationSucceeded")
		}
	}
	nr.Token = ""
	if !e.commit(t, nr, extra, tokVer) {
		return false
	}
	e.publish(t)
	return false
}

// publish tells the parent that t is over.
func (e *Engine) publish(t *thr) {
	if t.parent == nil {
		return
	}
	fin := t.rec.clone()
	t.mu.Lock()
	t.fin = &fin
	t.mu.Unlock()
	e.kick(t.parent)
}

func (e *Engine) finishRoot(t *thr, nr *threadRec, raw json.RawMessage, se *stateError, extra []store.Op, tokVer int64) bool {
	ex := t.ex
	x := ex.x // as written at Start; a Stop meanwhile makes the write below fail
	x.Stopped = e.clk.Now()
	if se != nil {
		x.Status, x.Error, x.Cause = workflow.Failed, se.Name, se.Cause
		nr.count("ExecutionFailed")
	} else {
		x.Status, x.Output = workflow.Succeeded, raw
		nr.count("ExecutionSucceeded")
	}
	x.Events = nr.Events.toMap()
	rec, err := x.record(ex.id)
	if err != nil {
		return e.writeFailed(t, err)
	}
	rec.Version = ex.ver
	nr.Token = ""
	ops, err := e.tokenOps(t, nr, tokVer)
	if err != nil {
		return e.writeFailed(t, err)
	}
	ops = append(append([]store.Op{store.Put(rec, store.AtVersion), store.Del(KindThread, t.id, store.AtVersion, t.ver)}, ops...), extra...)
	if err := e.st.Write(ex.ctx, ops...); err != nil {
		if cur, _, lerr := store.Load[execRec](ex.ctx, e.st, KindExec, ex.id); lerr == nil && cur.Status != workflow.Running {
			e.dropExecRT(ex.id) // stopped or timed out meanwhile
			return false
		}
		return e.writeFailed(t, err)
	}
	ex.ver = rec.Version + 1
	t.rec = *nr
	e.transitioned(t, x.Status)
	e.log.Debug("asl: execution ended", "execution", ex.id, "status", x.Status, "error", x.Error)
	e.dropExecRT(ex.id)
	e.ended(ex.id)
	if ctx := e.runCtx(); ctx != nil {
		e.notifyParent(ctx, ex.id, &x)
	}
	return false
}

// taskEvents names a task's history events the way Step Functions does for its
// resource kind: Lambda function ARNs get LambdaFunction*, integrations Task*.
func taskEvents(st *state) (scheduled, started, succeeded, failed, timedOut string) {
	if st.res == resFunc {
		return "LambdaFunctionScheduled", "LambdaFunctionStarted", "LambdaFunctionSucceeded", "LambdaFunctionFailed", "LambdaFunctionTimedOut"
	}
	return "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskFailed", "TaskTimedOut"
}

func (e *Engine) seconds(st *state, fixed int, p *path, eff any, ctxf func() any, what string) (int, *stateError) {
	if p == nil {
		return fixed, nil
	}
	v, ok := p.get(eff, ctxf)
	n, isNum := v.(float64)
	if !ok || !isNum || n < 1 || n != math.Trunc(n) {
		return 0, fail(ErrRuntime, "%s %s must select a positive integer, got %s", what, p.raw, show(v))
	}
	return int(n), nil
}

func (e *Engine) runTask(t *thr, st *state, input, eff any, nr *threadRec, ctxf func() any) bool {
	evSched, evStarted, evOK, evFailed, evTimedOut := taskEvents(st)
	params := eff
	var se *stateError
	if st.parameters != nil {
		if params, se = st.parameters.eval(&evalEnv{data: eff, ctx: ctxf}); se != nil {
			return e.handleError(t, st, input, se, nr, nil, 0)
		}
	}
	timeout, se := e.seconds(st, st.timeout, st.timeoutPath, eff, ctxf, "TimeoutSecondsPath")
	if se != nil {
		return e.handleError(t, st, input, se, nr, nil, 0)
	}
	beat, se := e.seconds(st, st.heartbeat, st.heartbeatPath, eff, ctxf, "HeartbeatSecondsPath")
	if se != nil {
		return e.handleError(t, st, input, se, nr, nil, 0)
	}
	var fn workflow.Func
	payload := params
	switch st.res {
	case resFunc:
		fn = e.lookupFunc(st.resource)
	case resInvoke, resInvokeWait:
		pm, _ := params.(map[string]any)
		name, _ := pm["FunctionName"].(string)
		fn = e.lookupFunc(name)
		if fn == nil {
			nr.count(evSched, evFailed)
			return e.handleError(t, st, input, fail("Lambda.ResourceNotFoundException", "function not found: %s", name), nr, nil, 0)
		}
		p, ok := pm["Payload"]
		if !ok {
			p = map[string]any{}
		}
		payload = p
	case resStartSync:
		return e.runChildExecution(t, st, input, params, nr, timeout)
	case resSQS, resSQSWait:
		fn = func(ctx context.Context, _ json.RawMessage) (json.RawMessage, error) {
			return e.sendMessage(ctx, params)
		}
	}
	if fn == nil {
		nr.count(evSched, evFailed)
		return e.handleError(t, st, input, fail(ErrRuntime, "no function for resource %s", st.resource), nr, nil, 0)
	}
	in, err := json.Marshal(payload)
	if err != nil {
		return e.handleError(t, st, input, fail(ErrRuntime, "cannot encode task input: %v", err), nr, nil, 0)
	}
	nr.count(evSched, evStarted)
	attemptStart := e.clk.Now()
	waitToken := func() bool {
		nr.count("TaskSubmitted")
		nr.Phase, nr.Since, nr.Beat = phToken, e.clk.Now(), beat
		if timeout > 0 {
			nr.Deadline = attemptStart.Add(time.Duration(timeout) * time.Second)
		}
		nr.Due = nextTokenDue(nr, time.Time{})
		return e.commit(t, nr, nil, 0)
	}
	if st.callback() && e.tokenClosed(t) {
		// The function ran in a process that died before checkpointing its return, and
		// its token was completed meanwhile (or by the function itself): the result is
		// there, so running the function again would only repeat its side effects.
		return waitToken()
	}
	callTimeout := time.Duration(timeout) * time.Second
	if st.callback() {
		callTimeout = 0 // the timeout covers the whole wait, checked by checkToken
	}
	out, ferr, timedOut, abandoned := e.call(t, fn, in, callTimeout)
	t.stepBegin = time.Now() // Transition.Took leaves the function's own time out
	if abandoned {
		return false
	}
	if timedOut {
		nr.count(evTimedOut)
		return e.handleError(t, st, input, fail(ErrTimeout, "the task did not finish within %d seconds", timeout), nr, nil, 0)
	}
	if ferr != nil {
		nr.count(evFailed)
		var se *stateError
		if !errors.As(ferr, &se) { // an integration's own error name
			se = &stateError{Name: workflow.ErrorName(ferr), Cause: ferr.Error()}
		}
		return e.handleError(t, st, input, se, nr, nil, 0)
	}
	if st.callback() {
		// A token completed before the function returned (a function may complete its
		// own token) is taken by checkToken right after this checkpoint.
		return waitToken()
	}
	result, se := decodeJSON(out)
	if se != nil {
		nr.count(evFailed)
		return e.handleError(t, st, input, fail(ErrTaskFailed, "the function returned invalid JSON"), nr, nil, 0)
	}
	if st.res == resInvoke {
		result = map[string]any{"ExecutedVersion": "$LATEST", "Payload": result, "StatusCode": float64(200)}
	}
	nr.count(evOK)
	return e.succeedState(t, st, input, result, nr, nil, 0)
}

// tokenClosed reports whether the token t holds in its ready phase has been completed
// already. Any doubt (no token, a read error) says no: the function then runs.
func (e *Engine) tokenClosed(t *thr) bool {
	if t.rec.Token == "" {
		return false
	}
	k, _, err := store.Load[tokenRec](t.ex.ctx, e.st, KindToken, t.rec.Token)
	return err == nil && k.Status != tokOpen
}

// sendMessage runs an sqs:sendMessage task: MessageBody (a string as it is, anything
// else as JSON) goes to the queue QueueUrl ends in. The result is what SQS answers.
func (e *Engine) sendMessage(ctx context.Context, params any) (json.RawMessage, error) {
	pm, _ := params.(map[string]any)
	url, _ := pm["QueueUrl"].(string)
	name := queueName(url)
	if name == "" {
		return nil, fail(ErrRuntime, "Parameters.QueueUrl must be a queue URL, got %s", show(pm["QueueUrl"]))
	}
	var body []byte
	switch v := pm["MessageBody"].(type) {
	case nil:
		return nil, fail(ErrRuntime, "Parameters.MessageBody is missing")
	case string:
		body = []byte(v)
	default:
		var err error
		if body, err = json.Marshal(v); err != nil {
			return nil, fail(ErrRuntime, "cannot encode MessageBody: %v", err)
		}
	}
	if err := e.msgq.Send(ctx, name, body); err != nil {
		if ctx.Err() != nil {
			return nil, err // abandoned: the engine or the execution is stopping
		}
		return nil, &stateError{Name: sqsErrorName(err), Cause: err.Error()}
	}
	sum := md5.Sum(body)
	return json.Marshal(map[string]string{"MessageId": uuid.NewString(), "MD5OfMessageBody": hex.EncodeToString(sum[:])})
}

// sqsErrorName names a queue error as Step Functions names the SQS exception.
func sqsErrorName(err error) string {
	switch errs.KindOf(err) {
	case errs.NotFound:
		return "SQS.QueueDoesNotExistException"
	case errs.Invalid, errs.TooLarge:
		return "SQS.InvalidMessageContentsException"
	}
	return "SQS.AmazonSQSException"
}

// nextTokenDue is when a token wait must be looked at again: its deadline or its
// heartbeat limit, whichever comes first (zero: neither).
func nextTokenDue(nr *threadRec, beat time.Time) time.Time {
	var due time.Time
	if nr.Beat > 0 {
		last := nr.Since
		if beat.After(last) {
			last = beat
		}
		due = last.Add(time.Duration(nr.Beat) * time.Second)
	}
	if !nr.Deadline.IsZero() && (due.IsZero() || nr.Deadline.Before(due)) {
		due = nr.Deadline
	}
	return due
}

// call runs a task function. The call is abandoned (not failed) when the engine
// stops or the thread is aborted; it is re-run on resume.
func (e *Engine) call(t *thr, fn workflow.Func, in json.RawMessage, timeout time.Duration) (out json.RawMessage, err error, timedOut, abandoned bool) {
	ctx, cancel := context.WithCancel(t.ex.ctx)
	defer cancel()
	t.mu.Lock()
	if t.gone {
		t.mu.Unlock()
		return nil, nil, false, true
	}
	t.cancel = cancel
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.cancel = nil
		t.mu.Unlock()
	}()
	if timeout <= 0 {
		out, err = safeCall(ctx, fn, in)
	} else {
		done := make(chan struct{})
		go func() { // joined below in every case
			defer close(done)
			out, err = safeCall(ctx, fn, in)
		}()
		select {
		case <-done:
		case <-e.clk.After(timeout):
			timedOut = true
			cancel()
			<-done
		}
	}
	if !timedOut && ctx.Err() != nil {
		return nil, nil, false, true
	}
	return out, err, timedOut, false
}

func safeCall(ctx context.Context, fn workflow.Func, in json.RawMessage) (out json.RawMessage, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("task function panicked: %v", p)
		}
	}()
	return fn(ctx, in)
}

// checkToken looks at the token of a waiting task: completed, timed out, or still open.
func (e *Engine) checkToken(t *thr, st *state) bool {
	_, _, _, evFailed, evTimedOut := taskEvents(st)
	nr := t.rec.clone()
	input, se := decodeJSON(t.rec.Input)
	if se != nil {
		return e.finish(t, &nr, nil, se, nil, 0)
	}
	k, kr, err := store.Load[tokenRec](t.ex.ctx, e.st, KindToken, t.rec.Token)
	if err != nil {
		if errs.Is(err, errs.NotFound) {
			// Only Stop removes an open token, after the thread: the execution is over.
			if _, gerr := e.st.Get(t.ex.ctx, KindThread, t.id); errs.Is(gerr, errs.NotFound) {
				e.forget(t)
				return false
			}
			nr.Token = ""
			return e.finish(t, &nr, nil, fail(ErrRuntime, "the task token of state %s vanished", st.name), nil, 0)
		}
		if t.ex.ctx.Err() == nil {
			e.log.Warn("asl: read task token", "thread", t.id, "err", err)
			e.armTimer(t, e.clk.Now().Add(time.Second))
		}
		return false
	}
	switch k.Status {
	case tokSucceeded:
		result, se := decodeJSON(k.Output)
		if se != nil {
			return e.finish(t, &nr, nil, se, nil, 0)
		}
		nr.count("TaskSucceeded")
		return e.succeedState(t, st, input, result, &nr, nil, kr.Version)
	case tokFailed:
		nr.count(evFailed)
		return e.handleError(t, st, input, &stateError{Name: k.Error, Cause: k.Cause}, &nr, nil, kr.Version)
	}
	if nr.Child != "" {
		// A child execution that ended while nobody could tell its parent.
		x, _, err := store.Load[execRec](t.ex.ctx, e.st, KindExec, nr.Child)
		if err == nil && x.Status != workflow.Running {
			result, se := childResult(nr.Child, &x)
			if se != nil {
				nr.count(evFailed)
				return e.handleError(t, st, input, se, &nr, nil, kr.Version)
			}
			nr.count("TaskSucceeded")
			return e.succeedState(t, st, input, deepCopy(result), &nr, nil, kr.Version)
		}
	}
	now := e.clk.Now()
	if !nr.Deadline.IsZero() && !now.Before(nr.Deadline) {
		nr.count(evTimedOut)
		return e.handleError(t, st, input, fail(ErrTimeout, "no task result within TimeoutSeconds"), &nr, nil, kr.Version)
	}
	due := nextTokenDue(&nr, k.Beat)
	if nr.Beat > 0 && !now.Before(due) && (nr.Deadline.IsZero() || due.Before(nr.Deadline)) {
		nr.count(evTimedOut)
		return e.handleError(t, st, input, fail(ErrHeartbeatTimeout, "no heartbeat within %d seconds", nr.Beat), &nr, nil, kr.Version)
	}
	if !due.IsZero() {
		e.armTimer(t, due)
	}
	return false
}

// startChildren starts a Parallel's branches or a Map's iterations.
func (e *Engine) startChildren(t *thr, st *state, input, eff any, nr *threadRec, ctxf func() any) bool {
	var inputs []any
	var scopes []*scope
	maxConc := 0
	var se *stateError
	if st.typ == "Parallel" {
		p := eff
		if st.parameters != nil {
			if p, se = st.parameters.eval(&evalEnv{data: eff, ctx: ctxf}); se != nil {
				return e.handleError(t, st, input, se, nr, nil, 0)
			}
		}
		for range st.branches {
			inputs = append(inputs, p)
		}
		scopes = st.branches
		nr.count("ParallelStateStarted")
	} else {
		items := eff
		if st.itemsPath != nil {
			v, ok := st.itemsPath.get(eff, ctxf)
			if !ok {
				return e.handleError(t, st, input, fail(ErrRuntime, "ItemsPath %s references nothing", st.itemsPath.raw), nr, nil, 0)
			}
			items = v
		}
		arr, ok := items.([]any)
		if !ok {
			return e.handleError(t, st, input, fail(ErrRuntime, "the Map items must be an array, got %s", show(items)), nr, nil, 0)
		}
		maxConc = st.maxConc
		if st.maxConcPath != nil {
			v, ok := st.maxConcPath.get(eff, ctxf)
			n, isNum := v.(float64)
			if !ok || !isNum || n < 0 || n != math.Trunc(n) {
				return e.handleError(t, st, input, fail(ErrRuntime, "MaxConcurrencyPath must select a non-negative integer"), nr, nil, 0)
			}
			maxConc = int(n)
		}
		for i, item := range arr {
			in := item
			if st.itemSelector != nil {
				if in, se = st.itemSelector.eval(&evalEnv{data: eff, ctx: e.ctxFn(t, st, &mapItem{i, item})}); se != nil {
					return e.handleError(t, st, input, se, nr, nil, 0)
				}
			}
			inputs = append(inputs, in)
			scopes = append(scopes, st.processor)
		}
		nr.count("MapStateStarted")
		if st.distributed {
			nr.count("MapRunStarted")
		}
		if len(arr) == 0 {
			nr.count("MapStateSucceeded")
			if st.distributed {
				nr.count("MapRunSucceeded")
			}
			return e.succeedState(t, st, input, []any{}, nr, nil, 0)
		}
	}
	nr.Gen++
	nr.Phase, nr.N, nr.MaxConc = phChildren, len(inputs), maxConc
	now := e.clk.Now()
	children := make([]*thr, len(inputs))
	var ops []store.Op
	for i, in := range inputs {
		raw, se := encodeJSON(in)
		if se != nil {
			return e.handleError(t, st, input, se, nr, nil, 0)
		}
		sc := scopes[i]
		cr := &threadRec{Idx: i, State: sc.startAt, Input: raw, Entered: now, Excluded: st.distributed || t.rec.Excluded}
		if st.typ == "Map" {
			cr.count("MapIterationStarted")
		}
		first := sc.states[sc.startAt]
		cr.count(enteredEvent(first))
		cid := childThreadID(t.id, nr.Gen, i)
		cops, err := e.entryOps(t.ex.id, cid, cr, first)
		if err != nil {
			e.log.Error("asl: start children", "thread", t.id, "err", err)
			return false
		}
		ops = append(ops, cops...)
		children[i] = &thr{id: cid, ex: t.ex, sc: sc, parent: t, inMap: st.typ == "Map", rec: *cr, ver: 1}
	}
	if !e.commit(t, nr, ops, 0) {
		return false
	}
	t.children = children
	for _, c := range children {
		e.register(c)
	}
	return true // checkChildren launches them
}

// checkChildren collects finished children, fails on a failed one, and launches more
// within MaxConcurrency.
func (e *Engine) checkChildren(t *thr, st *state) bool {
	nr := t.rec.clone()
	if len(t.children) != nr.N {
		// Children lost (should not happen): run the state again from scratch.
		e.log.Error("asl: children missing; restarting state", "thread", t.id, "have", len(t.children), "want", nr.N)
		nr.Phase = phReady
		return e.commit(t, &nr, e.deleteChildren(t), 0)
	}
	var failed []*threadRec
	done, running := 0, 0
	var pending []*thr
	fins := make([]*threadRec, len(t.children))
	for i, c := range t.children {
		c.mu.Lock()
		fin, launched := c.fin, c.launched
		c.mu.Unlock()
		fins[i] = fin
		switch {
		case fin != nil && fin.Phase == phFailed:
			failed = append(failed, fin)
		case fin != nil:
			done++
		case launched:
			running++
		default:
			pending = append(pending, c)
		}
	}
	tolerated := 0
	if st.hasTolerance {
		tolerated = st.tolCount
		if pct := int(math.Floor(st.tolPct * float64(nr.N) / 100)); st.tolPct > 0 && pct > tolerated {
			tolerated = pct
		}
	}
	if len(failed) > tolerated || done+len(failed) == nr.N {
		// Only now: the input may be large, and children end one at a time.
		input, se := decodeJSON(t.rec.Input)
		if se != nil {
			return e.finish(t, &nr, nil, se, nil, 0)
		}
		return e.collectChildren(t, st, &nr, input, fins, failed, done, tolerated)
	}
	free := len(pending)
	if nr.MaxConc > 0 {
		free = nr.MaxConc - running
	}
	for _, c := range pending {
		if free <= 0 {
			break
		}
		free--
		c.mu.Lock()
		c.launched = true
		c.mu.Unlock()
		e.kick(c)
	}
	return false
}

// collectChildren ends a Parallel or Map state once its children are over (or one failed).
func (e *Engine) collectChildren(t *thr, st *state, nrp *threadRec, input any, fins []*threadRec, failed []*threadRec, done, tolerated int) bool {
	nr := *nrp
	fold := func() {
		for _, f := range fins {
			if f != nil && !f.Excluded {
				nr.Events.addAll(&f.Events)
			}
		}
	}
	if len(failed) > tolerated {
		fold()
		aborted := nr.N - done - len(failed)
		if st.typ == "Map" && !st.distributed {
			for i := 0; i < aborted; i++ {
				nr.count("MapIterationAborted")
			}
		}
		se := &stateError{Name: failed[0].Error, Cause: failed[0].Cause}
		if st.typ == "Parallel" {
			nr.count("ParallelStateFailed")
		} else {
			nr.count("MapStateFailed")
			if st.distributed {
				nr.count("MapRunFailed")
			}
			if st.hasTolerance {
				se = fail(ErrToleratedFailure, "%d of %d iterations failed; first: %s: %s", len(failed), nr.N, failed[0].Error, failed[0].Cause)
			}
		}
		ops := e.deleteChildren(t)
		nr.N, nr.MaxConc = 0, 0
		before, children := t.ver, t.children
		ok := e.handleError(t, st, input, se, &nr, ops, 0)
		if t.ver != before || t.isGone() {
			for _, c := range children {
				e.forget(c)
			}
			t.children = nil
		}
		return ok
	}
	if done+len(failed) == nr.N {
		fold()
		outs := make([]any, nr.N)
		for i, f := range fins {
			if f.Phase == phFailed {
				outs[i] = map[string]any{"Error": f.Error, "Cause": f.Cause}
				continue
			}
			v, se := decodeJSON(f.Output)
			if se != nil {
				return e.finish(t, &nr, nil, se, nil, 0)
			}
			outs[i] = v
		}
		if st.typ == "Parallel" {
			nr.count("ParallelStateSucceeded")
		} else {
			nr.count("MapStateSucceeded")
			if st.distributed {
				nr.count("MapRunSucceeded")
			}
		}
		ops := e.deleteChildren(t)
		nr.N, nr.MaxConc = 0, 0
		before, children := t.ver, t.children
		ok := e.succeedState(t, st, input, outs, &nr, ops, 0)
		if t.ver != before || t.isGone() {
			for _, c := range children {
				e.unregister(c)
			}
			t.children = nil
		}
		return ok
	}
	return false
}

func (e *Engine) deleteChildren(t *thr) []store.Op {
	ops := make([]store.Op, 0, len(t.children))
	for _, c := range t.children {
		ops = append(ops, store.Del(KindThread, c.id, store.Any, 0))
	}
	return ops
}

// resume loads every thread of every running execution from the store and starts them.
func (e *Engine) resume(ctx context.Context) error {
	byExec := map[string][]store.Record{}
	q := store.Query{Limit: 1000}
	for {
		recs, next, err := e.st.List(ctx, KindThread, q)
		if err != nil {
			return errs.Wrap(errs.KindOf(err), "asl: resume", err)
		}
		for _, r := range recs {
			x := execOfThread(r.ID)
			byExec[x] = append(byExec[x], r)
		}
		if next == "" {
			break
		}
		q.After = next
	}
	ids := make([]string, 0, len(byExec))
	for id := range byExec {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	resumed := 0
	for _, id := range ids {
		if err := e.resumeExec(ctx, id, byExec[id]); err != nil {
			e.log.Error("asl: resume execution", "execution", id, "err", err)
			continue
		}
		resumed++
	}
	if resumed > 0 {
		e.log.Info("asl: resumed executions", "count", resumed)
	}
	return nil
}

func (e *Engine) resumeExec(ctx context.Context, id string, recs []store.Record) error {
	x, xr, err := store.Load[execRec](ctx, e.st, KindExec, id)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return err
	}
	if err != nil || x.Status != workflow.Running {
		return e.cleanup(ctx, id) // leftovers of a stopped execution
	}
	m := e.machines[x.Machine]
	if m == nil {
		return fmt.Errorf("state machine %q is not loaded", x.Machine)
	}
	var input any
	if err := json.Unmarshal(x.Input, &input); err != nil {
		return fmt.Errorf("bad input: %w", err)
	}
	ex := e.newExecRT(id, m, &x, xr.Version, input)
	sort.Slice(recs, func(i, j int) bool {
		di, dj := strings.Count(recs[i].ID, "."), strings.Count(recs[j].ID, ".")
		if di != dj {
			return di < dj
		}
		return recs[i].ID < recs[j].ID
	})
	byID := map[string]*thr{}
	var all []*thr
	var orphans []store.Op
	for _, r := range recs {
		var rec threadRec
		if err := store.Decode(r, &rec); err != nil {
			return err
		}
		t := &thr{id: r.ID, ex: ex, rec: rec, ver: r.Version}
		if pid := parentOfThread(r.ID); pid == "" {
			t.sc = m.root
		} else {
			p := byID[pid]
			var ps *state
			if p != nil && p.rec.Phase == phChildren {
				ps = p.sc.states[p.rec.State]
			}
			switch {
			case ps != nil && ps.typ == "Parallel" && rec.Idx < len(ps.branches):
				t.sc = ps.branches[rec.Idx]
			case ps != nil && ps.typ == "Map":
				t.sc, t.inMap = ps.processor, true
			default:
				orphans = append(orphans, store.Del(KindThread, r.ID, store.Any, 0))
				continue
			}
			t.parent = p
			p.children = append(p.children, t)
			t.launched = rec.Started
			if rec.Phase == phDone || rec.Phase == phFailed {
				fin := rec.clone()
				t.fin = &fin
			}
		}
		byID[r.ID] = t
		all = append(all, t)
	}
	if len(orphans) > 0 {
		if err := e.st.Write(ctx, orphans...); err != nil {
			return err
		}
	}
	for _, t := range all {
		sort.Slice(t.children, func(i, j int) bool { return t.children[i].rec.Idx < t.children[j].rec.Idx })
	}
	var start []*thr
	for _, t := range all {
		if e.register(t) && t.fin == nil && (t.parent == nil || t.launched) {
			start = append(start, t)
		}
	}
	if !e.stillRunning(ctx, id) {
		return nil
	}
	for _, t := range start { // only now: a parent may launch children as soon as it runs
		e.kick(t)
	}
	return nil
}

// resumeOne starts an execution recorded by a Start while Run was resuming, unless the
// resume found it.
func (e *Engine) resumeOne(ctx context.Context, id string) error {
	e.mu.Lock()
	_, running := e.execs[id]
	e.mu.Unlock()
	if running {
		return nil
	}
	var recs []store.Record
	q := store.Query{From: id + "#", To: id + "$", Limit: 1000}
	for {
		page, next, err := e.st.List(ctx, KindThread, q)
		if err != nil {
			return errs.Wrap(errs.KindOf(err), "asl: start "+id, err)
		}
		recs = append(recs, page...)
		if next == "" {
			break
		}
		q.After = next
	}
	if len(recs) == 0 {
		return nil // over already
	}
	return e.resumeExec(ctx, id, recs)
}

// runChildExecution starts the child execution of a startExecution.sync:2 task and
// waits for its end through the task's token. The child's name is derived from the
// task's thread and attempt, so that a re-run after a crash finds the same child.
func (e *Engine) runChildExecution(t *thr, st *state, input, params any, nr *threadRec, timeout int) bool {
	pm, _ := params.(map[string]any)
	arn, _ := pm["StateMachineArn"].(string)
	machine := machineName(arn)
	nr.count("TaskScheduled")
	if e.machines[machine] == nil {
		nr.count("TaskFailed")
		return e.handleError(t, st, input, fail("StepFunctions.StateMachineDoesNotExistException", "state machine %q does not exist", arn), nr, nil, 0)
	}
	var in []byte
	switch v := pm["Input"].(type) {
	case nil:
		in = []byte("{}")
	case string:
		in = []byte(v)
	default:
		var err error
		if in, err = json.Marshal(v); err != nil {
			return e.handleError(t, st, input, fail(ErrRuntime, "cannot encode the child's input: %v", err), nr, nil, 0)
		}
	}
	name, _ := pm["Name"].(string)
	if name == "" {
		name = childName(t)
	}
	nr.count("TaskStarted")
	id, err := e.start(t.ex.ctx, machine, name, in, t.rec.Token)
	if err != nil {
		if t.ex.ctx.Err() != nil {
			return false
		}
		switch errs.KindOf(err) {
		case errs.Conflict:
			nr.count("TaskFailed")
			return e.handleError(t, st, input, fail("StepFunctions.ExecutionAlreadyExistsException", "%v", err), nr, nil, 0)
		case errs.Invalid, errs.TooLarge, errs.NotFound:
			nr.count("TaskFailed")
			return e.handleError(t, st, input, fail("StepFunctions.InvalidExecutionInputException", "%v", err), nr, nil, 0)
		}
		return e.writeFailed(t, err)
	}
	nr.count("TaskSubmitted")
	now := e.clk.Now()
	nr.Phase, nr.Since, nr.Child = phToken, now, id
	if timeout > 0 {
		nr.Deadline = now.Add(time.Duration(timeout) * time.Second)
	}
	nr.Due = nextTokenDue(nr, time.Time{})
	return e.commit(t, nr, nil, 0)
}

func childName(t *thr) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d/%d", t.id, t.rec.Gen, t.rec.Retries)))
	base := t.ex.name
	if len(base) > 60 {
		base = base[:60]
	}
	return base + "-" + hex.EncodeToString(h[:6])
}
