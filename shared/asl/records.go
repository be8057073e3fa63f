package asl

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/straas/straas/shared/store"
)

// Record kinds the interpreter keeps in the store.
const (
	KindExec   = "asl_exec"   // one per execution; ID = execution id
	KindThread = "asl_thread" // one per running thread (the root, a Parallel branch, a Map iteration)
	KindToken  = "asl_token"  // one per open task token; ID = the token
)

// dueQueue is the store.IdxDue part under which threads waiting for a time are indexed.
const dueQueue = "asl_timer"

// statusPart is the store.IdxParent part that lists executions by status.
func statusPart(status string) string { return "asl_status/" + status }

// MaxPayload is Step Functions' limit on an input or output, which we keep too so that
// a workflow that runs embedded also runs on AWS.
const MaxPayload = 256 * 1024

// execRec is an execution (KindExec).
type execRec struct {
	Machine  string          `json:"m"`
	Name     string          `json:"n"`
	Status   string          `json:"s"`
	Input    json.RawMessage `json:"in"`
	Output   json.RawMessage `json:"out,omitempty"`
	Error    string          `json:"e,omitempty"`
	Cause    string          `json:"c,omitempty"`
	Started  time.Time       `json:"t0"`
	Stopped  time.Time       `json:"t1,omitzero"`
	Deadline time.Time       `json:"dl,omitzero"`
	Events   map[string]int  `json:"ev,omitempty"`
	// The task token of a parent's startExecution.sync:2 task waiting for this one.
	ParentToken string `json:"pt,omitempty"`
}

func (x *execRec) record(id string) (store.Record, error) {
	r, err := store.Encode(KindExec, id, x)
	if err != nil {
		return r, err
	}
	r.Index = map[string]store.IndexKey{store.IdxParent: {Part: statusPart(x.Status), Sort: store.SortTime(x.Started)}}
	return r, nil
}

// Thread phases.
const (
	phReady    = ""         // run the state (for a Task: invoke it; it may have run already)
	phWait     = "wait"     // Wait state until Due
	phRetry    = "retry"    // back off until Due, then run the state again
	phToken    = "token"    // the task's function returned; wait for its token
	phChildren = "children" // Parallel/Map: wait for the branch/iteration threads
	phDone     = "done"     // a branch/iteration finished with Output
	phFailed   = "failed"   // a branch/iteration failed with Error/Cause
)

// threadRec is the checkpoint of one thread (KindThread): the current state and its
// input, never a history. ID: <exec id>#0 for the root, <parent>.<gen>-<index> below.
// It is encoded by hand (see appendJSON): it is written on every transition.
type threadRec struct {
	Idx      int             // branch or item index in the parent
	State    string          //
	Input    json.RawMessage // the state's input
	Entered  time.Time       //
	Phase    string          //
	Tries    []int           // attempts per retrier in this state
	Retries  int             // $$.State.RetryCount
	Due      time.Time       // Wait end, retry time, token timeout or heartbeat limit
	Since    time.Time       // when the function of a token task returned
	Deadline time.Time       // task timeout
	Beat     int             // heartbeat seconds
	Token    string          //
	Child    string          // the child execution of a startExecution.sync:2 task
	Gen      int             // counts transitions; names children
	Started  bool            // a child that has begun
	Excluded bool            // a DISTRIBUTED map iteration: events not counted in the parent
	N        int             // number of children
	MaxConc  int             //
	Output   json.RawMessage // of a finished child
	Error    string          // of a failed child
	Cause    string          //
	Events   evCounts        // history events so far (children's folded in when collected)
}

// threadJSON is threadRec's stored form.
type threadJSON struct {
	Idx      int             `json:"i,omitempty"`
	State    string          `json:"s"`
	Input    json.RawMessage `json:"in,omitempty"`
	Entered  int64           `json:"t,omitempty"`
	Phase    string          `json:"p,omitempty"`
	Tries    []int           `json:"r,omitempty"`
	Retries  int             `json:"rc,omitempty"`
	Due      int64           `json:"d,omitempty"`
	Since    int64           `json:"ts,omitempty"`
	Deadline int64           `json:"dl,omitempty"`
	Beat     int             `json:"hb,omitempty"`
	Token    string          `json:"tk,omitempty"`
	Child    string          `json:"ch,omitempty"`
	Gen      int             `json:"g,omitempty"`
	Started  bool            `json:"st,omitempty"`
	Excluded bool            `json:"x,omitempty"`
	N        int             `json:"n,omitempty"`
	MaxConc  int             `json:"mc,omitempty"`
	Output   json.RawMessage `json:"out,omitempty"`
	Error    string          `json:"e,omitempty"`
	Cause    string          `json:"c,omitempty"`
	Events   []int32         `json:"ev,omitempty"`
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// appendJSON encodes t as threadJSON would be, without reflection.
func (t *threadRec) appendJSON(b []byte) []byte {
	b = append(b, `{"s":`...)
	b = appendJSONString(b, t.State)
	num := func(key string, v int64) {
		if v != 0 {
			b = append(b, ',', '"')
			b = append(b, key...)
			b = append(b, '"', ':')
			b = strconv.AppendInt(b, v, 10)
		}
	}
	str := func(key, v string) {
		if v != "" {
			b = append(b, ',', '"')
			b = append(b, key...)
			b = append(b, '"', ':')
			b = appendJSONString(b, v)
		}
	}
	raw := func(key string, v json.RawMessage) {
		if len(v) > 0 {
			b = append(b, ',', '"')
			b = append(b, key...)
			b = append(b, '"', ':')
			b = append(b, v...)
		}
	}
	flag := func(key string, v bool) {
		if v {
			b = append(b, ',', '"')
			b = append(b, key...)
			b = append(b, `":true`...)
		}
	}
	num("i", int64(t.Idx))
	raw("in", t.Input)
	num("t", nanos(t.Entered))
	str("p", t.Phase)
	if len(t.Tries) > 0 {
		b = append(b, `,"r":[`...)
		for i, n := range t.Tries {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(n), 10)
		}
		b = append(b, ']')
	}
	num("rc", int64(t.Retries))
	num("d", nanos(t.Due))
	num("ts", nanos(t.Since))
	num("dl", nanos(t.Deadline))
	num("hb", int64(t.Beat))
	str("tk", t.Token)
	str("ch", t.Child)
	num("g", int64(t.Gen))
	flag("st", t.Started)
	flag("x", t.Excluded)
	num("n", int64(t.N))
	num("mc", int64(t.MaxConc))
	raw("out", t.Output)
	str("e", t.Error)
	str("c", t.Cause)
	if last := t.Events.last(); last >= 0 {
		b = append(b, `,"ev":[`...)
		for i := 0; i <= last; i++ {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(t.Events[i]), 10)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func (t *threadRec) UnmarshalJSON(data []byte) error {
	var j threadJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*t = threadRec{
		Idx: j.Idx, State: j.State, Input: j.Input, Entered: fromNanos(j.Entered), Phase: j.Phase,
		Tries: j.Tries, Retries: j.Retries, Due: fromNanos(j.Due), Since: fromNanos(j.Since),
		Deadline: fromNanos(j.Deadline), Beat: j.Beat, Token: j.Token, Child: j.Child, Gen: j.Gen, Started: j.Started,
		Excluded: j.Excluded, N: j.N, MaxConc: j.MaxConc, Output: j.Output, Error: j.Error, Cause: j.Cause,
	}
	copy(t.Events[:], j.Events)
	return nil
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		q, _ := json.Marshal(s) // replaces invalid bytes
		return append(b, q...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

func (t *threadRec) record(id string) (store.Record, error) {
	r := store.Record{Kind: KindThread, ID: id, Data: t.appendJSON(make([]byte, 0, 256+len(t.Input)+len(t.Output)))}
	if !t.Due.IsZero() && (t.Phase == phWait || t.Phase == phRetry || t.Phase == phToken) {
		r.Index = map[string]store.IndexKey{store.IdxDue: {Part: dueQueue, Sort: store.SortTime(t.Due)}}
	}
	return r, nil
}

func (t *threadRec) count(names ...string) {
	for _, n := range names {
		t.Events.add(n)
	}
}

func (t *threadRec) clone() threadRec {
	c := *t
	c.Tries = append([]int(nil), t.Tries...)
	return c
}

// History event types, as Step Functions names them. Thread records count them in
// this order.
var eventNames = [...]string{
	"ExecutionStarted", "ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut",
	"PassStateEntered", "PassStateExited", "ChoiceStateEntered", "ChoiceStateExited",
	"WaitStateEntered", "WaitStateExited", "SucceedStateEntered", "SucceedStateExited", "FailStateEntered",
	"TaskStateEntered", "TaskStateExited", "ParallelStateEntered", "ParallelStateExited",
	"MapStateEntered", "MapStateExited",
	"TaskScheduled", "TaskStarted", "TaskSubmitted", "TaskSucceeded", "TaskFailed", "TaskTimedOut",
	"LambdaFunctionScheduled", "LambdaFunctionStarted", "LambdaFunctionSucceeded", "LambdaFunctionFailed", "LambdaFunctionTimedOut",
	"ParallelStateStarted", "ParallelStateSucceeded", "ParallelStateFailed",
	"MapStateStarted", "MapStateSucceeded", "MapStateFailed",
	"MapIterationStarted", "MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted",
	"MapRunStarted", "MapRunSucceeded", "MapRunFailed",
}

var eventIndex = func() map[string]int {
	m := make(map[string]int, len(eventNames))
	for i, n := range eventNames {
		m[n] = i
	}
	return m
}()

// evCounts counts history events by eventNames index; a value type, so that copying
// a checkpoint copies it without allocating.
type evCounts [len(eventNames)]int32

func (c *evCounts) add(name string) {
	if i, ok := eventIndex[name]; ok {
		c[i]++
	}
}

func (c *evCounts) addAll(o *evCounts) {
	for i, v := range o {
		c[i] += v
	}
}

func (c *evCounts) last() int {
	for i := len(c) - 1; i >= 0; i-- {
		if c[i] != 0 {
			return i
		}
	}
	return -1
}

func (c *evCounts) toMap() map[string]int {
	m := map[string]int{}
	for i, v := range c {
		if v != 0 {
			m[eventNames[i]] = int(v)
		}
	}
	return m
}

// Token statuses.
const (
	tokOpen      = "open"
	tokSucceeded = "succeeded"
	tokFailed    = "failed"
)

// tokenRec is an open task token (KindToken).
type tokenRec struct {
	Thread string          `json:"th"`
	Status string          `json:"s"`
	Output json.RawMessage `json:"out,omitempty"`
	Error  string          `json:"e,omitempty"`
	Cause  string          `json:"c,omitempty"`
	Beat   time.Time       `json:"hb,omitzero"`
}

func (k *tokenRec) record(token, exec string) (store.Record, error) {
	r, err := store.Encode(KindToken, token, k)
	if err != nil {
		return r, err
	}
	r.Index = map[string]store.IndexKey{store.IdxParent: {Part: exec}}
	return r, nil
}

func newToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Thread ids.
func rootThreadID(exec string) string { return exec + "#0" }

func execOfThread(id string) string {
	if i := strings.IndexByte(id, '#'); i >= 0 {
		return id[:i]
	}
	return id
}

func parentOfThread(id string) string {
	i := strings.LastIndexByte(id, '.')
	if i < 0 || i < strings.IndexByte(id, '#') {
		return ""
	}
	return id[:i]
}

func childThreadID(parent string, gen, idx int) string {
	return parent + "." + itoa(gen) + "-" + itoa(idx)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// ExecutionARN is the id Start gives an execution of machine named name.
func ExecutionARN(machine, name string) string {
	return "arn:straas:states:local:0:execution:" + machine + ":" + name
}

// MachineARN is the id of a state machine; startExecution.sync:2 tasks name the child
// machine by it (or by its plain name).
func MachineARN(machine string) string {
	return "arn:straas:states:local:0:stateMachine:" + machine
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
