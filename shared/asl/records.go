package asl

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"

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
type threadRec struct {
	Idx      int             `json:"i,omitempty"` // branch or item index in the parent
	State    string          `json:"s"`
	Input    json.RawMessage `json:"in"`
	Entered  time.Time       `json:"t"`
	Phase    string          `json:"p,omitempty"`
	Tries    []int           `json:"r,omitempty"`  // attempts per retrier in this state
	Retries  int             `json:"rc,omitempty"` // $$.State.RetryCount
	Due      time.Time       `json:"d,omitzero"`
	Since    time.Time       `json:"ts,omitzero"` // when the function of a token task returned
	Deadline time.Time       `json:"dl,omitzero"` // task timeout
	Beat     int             `json:"hb,omitempty"`
	Token    string          `json:"tk,omitempty"`
	Gen      int             `json:"g,omitempty"` // counts transitions; names children
	Started  bool            `json:"st,omitempty"`
	Excluded bool            `json:"x,omitempty"` // a DISTRIBUTED map iteration: events not counted in the parent
	N        int             `json:"n,omitempty"` // number of children
	MaxConc  int             `json:"mc,omitempty"`
	Output   json.RawMessage `json:"out,omitempty"`
	Error    string          `json:"e,omitempty"`
	Cause    string          `json:"c,omitempty"`
	Events   map[string]int  `json:"ev,omitempty"`
}

func (t *threadRec) record(id string) (store.Record, error) {
	r, err := store.Encode(KindThread, id, t)
	if err != nil {
		return r, err
	}
	if !t.Due.IsZero() && (t.Phase == phWait || t.Phase == phRetry || t.Phase == phToken) {
		r.Index = map[string]store.IndexKey{store.IdxDue: {Part: dueQueue, Sort: store.SortTime(t.Due)}}
	}
	return r, nil
}

func (t *threadRec) count(names ...string) {
	if t.Events == nil {
		t.Events = make(map[string]int, 8)
	}
	for _, n := range names {
		t.Events[n]++
	}
}

func (t *threadRec) clone() threadRec {
	c := *t
	if t.Events != nil {
		c.Events = make(map[string]int, len(t.Events))
		for k, v := range t.Events {
			c.Events[k] = v
		}
	}
	c.Tries = append([]int(nil), t.Tries...)
	return c
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
