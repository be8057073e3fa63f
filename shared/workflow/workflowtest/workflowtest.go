// Package workflowtest is the conformance suite of the workflow port: the embedded ASL
// interpreter (shared/asl) and the Step Functions adapter (sfn) both run Run.
//
// The suite deploys its own small state machines (Definitions). Their only task resource
// is arn:aws:states:::sqs:sendMessage.waitForTaskToken, which Step Functions (and moto's
// and LocalStack's emulations of it) runs against SQS and which the embedded interpreter
// backs with the queue port: the task sends {"token", "execution", "input"} as the
// message body to the queue named by Parameters.QueueUrl, and the suite reads the task
// token from that queue through Setup.Queue, as an agent would.
package workflowtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/workflow"
)

// TaskQueueURL is the placeholder (${TaskQueueUrl}) in Definitions that the factory
// replaces, as DefinitionSubstitutions would, with the URL of Env.TaskQueue as its engine
// understands it: the SQS queue URL on Step Functions. An SQS URL ends in the queue name,
// so an embedded engine may take the last "/"-separated segment of QueueUrl as the name.
const TaskQueueURL = "TaskQueueUrl"

// Machine names in Definitions.
const (
	MachinePass    = "wt-pass"    // Pass: output {"echo": <input>, "constant": "c"}
	MachineFail    = "wt-fail"    // Fail: Error "Boom", Cause "it broke"
	MachineWait    = "wt-wait"    // Wait an hour, then Succeed: for Stop
	MachineTask    = "wt-task"    // one sqs:sendMessage.waitForTaskToken task; output = task output
	MachineCatch   = "wt-catch"   // the same task, catching error "NodeDown" into $.caught
	MachineTimeout = "wt-timeout" // the same task with TimeoutSeconds 1
)

const taskState = `{
	"Type": "Task",
	"Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
	"Parameters": {
		"QueueUrl": "${TaskQueueUrl}",
		"MessageBody": {"token.$": "$$.Task.Token", "execution.$": "$$.Execution.Name", "input.$": "$"}
	},
	"TimeoutSeconds": %TIMEOUT%,
	%REST%
}`

// task renders the task state.
func task(timeout, rest string) string {
	return strings.NewReplacer("%TIMEOUT%", timeout, "%REST%", rest).Replace(taskState)
}

// Definitions returns the suite's machines: name -> ASL, with the ${TaskQueueUrl}
// placeholder unsubstituted.
func Definitions() map[string][]byte {
	return map[string][]byte{
		MachinePass: []byte(`{"StartAt": "Echo", "States": {
			"Echo": {"Type": "Pass", "Parameters": {"echo.$": "$", "constant": "c"}, "End": true}}}`),
		MachineFail: []byte(`{"StartAt": "Boom", "States": {
			"Boom": {"Type": "Fail", "Error": "Boom", "Cause": "it broke"}}}`),
		MachineWait: []byte(`{"StartAt": "Hold", "States": {
			"Hold": {"Type": "Wait", "Seconds": 3600, "Next": "Done"},
			"Done": {"Type": "Succeed"}}}`),
		MachineTask: []byte(`{"StartAt": "Ask", "States": {"Ask": ` + task("600", `"HeartbeatSeconds": 300, "End": true`) + `}}`),
		MachineCatch: []byte(`{"StartAt": "Ask", "States": {
			"Ask": ` + task("600", `"HeartbeatSeconds": 300, "Catch": [{"ErrorEquals": ["NodeDown"], "ResultPath": "$.caught", "Next": "Caught"}], "End": true`) + `,
			"Caught": {"Type": "Pass", "End": true}}}`),
		MachineTimeout: []byte(`{"StartAt": "Ask", "States": {"Ask": ` + task("1", `"End": true`) + `}}`),
	}
}

// Env is what Run hands the factory.
type Env struct {
	// Definitions are the machines to deploy under these names (placeholders unsubstituted).
	Definitions map[string][]byte
	// TaskQueue is the queue the task machines send to. The factory creates it (the
	// suite removes nothing it did not make) and substitutes ${TaskQueueUrl} with its URL.
	TaskQueue string
}

// Setup is what the factory returns.
type Setup struct {
	Engine workflow.Engine
	// Queue reads Env.TaskQueue: the messages the task machines send.
	Queue queue.Queue
}

// Options tune Run.
type Options struct {
	// Deadline bounds waiting for an execution to reach a state or a task message to
	// arrive; 0 means 60 seconds.
	Deadline time.Duration
	// Poll is the wait of one Receive on the task queue; 0 means one second.
	Poll time.Duration
}

// Run deploys Definitions once through newEngine and runs the contract against it.
func Run(t *testing.T, newEngine func(t *testing.T, env Env) Setup, o Options) {
	if o.Deadline <= 0 {
		o.Deadline = 60 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	run := randHex(t)
	env := Env{Definitions: Definitions(), TaskQueue: "wt-tasks-" + run}
	st := newEngine(t, env)
	if st.Engine == nil || st.Queue == nil {
		t.Fatal("workflowtest: the factory returned no Engine or Queue")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"StartIdempotent", testStartIdempotent},
		{"StartUnknown", testStartUnknown},
		{"DescribeSucceeded", testDescribeSucceeded},
		{"DescribeFailed", testDescribeFailed},
		{"DescribeUnknown", testDescribeUnknown},
		{"Stop", testStop},
		{"TaskSuccess", testTaskSuccess},
		{"TaskFailure", testTaskFailure},
		{"TaskFailureCaught", testTaskFailureCaught},
		{"TaskTimeout", testTaskTimeout},
		{"UnknownToken", testUnknownToken},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*o.Deadline)
			defer cancel()
			tc.fn(t, &suite{Setup: st, env: env, o: o, ctx: ctx, prefix: "wt-" + run + "-" + string(rune('a'+i))})
		})
	}
}

type suite struct {
	Setup
	env    Env
	o      Options
	ctx    context.Context
	prefix string // execution names of this subtest start with it
	n      int
}

func randHex(t *testing.T) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// name returns a fresh execution name.
func (s *suite) name() string {
	s.n++
	return s.prefix + "-" + string(rune('0'+s.n%10))
}

func (s *suite) start(t *testing.T, machine, name, input string) string {
	t.Helper()
	id, err := s.Engine.Start(s.ctx, machine, name, []byte(input))
	if err != nil {
		t.Fatalf("Start %s %s: %v", machine, name, err)
	}
	if id == "" {
		t.Fatalf("Start %s %s: empty id", machine, name)
	}
	return id
}

// await polls Describe until the execution leaves RUNNING.
func (s *suite) await(t *testing.T, id string) workflow.Execution {
	t.Helper()
	deadline := time.Now().Add(s.o.Deadline)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ex, err := s.Engine.Describe(s.ctx, id)
		if err != nil {
			t.Fatalf("Describe %s: %v", id, err)
		}
		if ex.Status != workflow.Running {
			return ex
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution %s still RUNNING after %v", id, s.o.Deadline)
		}
		select {
		case <-s.ctx.Done():
			t.Fatal(s.ctx.Err())
		case <-tick.C:
		}
	}
}

// taskMessage is the body the task machines send.
type taskMessage struct {
	Token     string          `json:"token"`
	Execution string          `json:"execution"`
	Input     json.RawMessage `json:"input"`
}

// token waits for the task message of execution name and returns it. Messages of other
// executions (left by an earlier failed subtest) are acked and dropped.
func (s *suite) token(t *testing.T, name string) taskMessage {
	t.Helper()
	deadline := time.Now().Add(s.o.Deadline)
	for time.Now().Before(deadline) {
		msgs, err := s.Queue.Receive(s.ctx, s.env.TaskQueue, queue.MaxBatch, s.o.Poll)
		if err != nil {
			t.Fatalf("Receive %s: %v", s.env.TaskQueue, err)
		}
		var found *taskMessage
		for _, m := range msgs {
			if err := s.Queue.Ack(s.ctx, s.env.TaskQueue, m.Receipt); err != nil {
				t.Fatalf("Ack: %v", err)
			}
			var tm taskMessage
			if err := json.Unmarshal(m.Body, &tm); err != nil {
				t.Fatalf("task message %q: %v", m.Body, err)
			}
			if tm.Execution == name {
				found = &tm
			}
		}
		if found != nil {
			if found.Token == "" {
				t.Fatalf("task message of %s carries no token", name)
			}
			return *found
		}
	}
	t.Fatalf("no task message for execution %s within %v", name, s.o.Deadline)
	return taskMessage{}
}

func wantKind(t *testing.T, what string, err error, kinds ...errs.Kind) {
	t.Helper()
	for _, k := range kinds {
		if errs.Is(err, k) {
			return
		}
	}
	t.Fatalf("%s: got %v (kind %v), want kind %v", what, err, errs.KindOf(err), kinds)
}

func wantJSON(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: got %q, not JSON: %v", what, got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("%s: bad expectation %q: %v", what, want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("%s: got %s, want %s", what, got, want)
	}
}

// --- subtests -------------------------------------------------------------------------

func testStartIdempotent(t *testing.T, s *suite) {
	name := s.name()
	// The wait machine stays RUNNING, where Step Functions itself is idempotent.
	id := s.start(t, MachineWait, name, `{"n": 1}`)
	t.Cleanup(func() { _ = s.Engine.Stop(context.Background(), id, "Cleanup", "") })
	if again := s.start(t, MachineWait, name, `{"n": 1}`); again != id {
		t.Fatalf("second Start with the same input: got %q, want %q", again, id)
	}
	if again := s.start(t, MachineWait, name, `{ "n" : 1 }`); again != id {
		t.Fatalf("Start with the same input spaced differently: got %q, want %q", again, id)
	}
	_, err := s.Engine.Start(s.ctx, MachineWait, name, []byte(`{"n": 2}`))
	wantKind(t, "Start with the same name and another input", err, errs.Conflict)

	// A finished execution: the same input still names it; another input conflicts.
	done := s.name()
	pid := s.start(t, MachinePass, done, `{"k": "v"}`)
	if ex := s.await(t, pid); ex.Status != workflow.Succeeded {
		t.Fatalf("pass machine: got %s", ex.Status)
	}
	if again := s.start(t, MachinePass, done, `{"k": "v"}`); again != pid {
		t.Fatalf("Start of a finished execution with the same input: got %q, want %q", again, pid)
	}
	_, err = s.Engine.Start(s.ctx, MachinePass, done, []byte(`{"k": "w"}`))
	wantKind(t, "Start of a finished execution with another input", err, errs.Conflict)
	if ex := s.await(t, pid); ex.Status != workflow.Succeeded {
		t.Fatalf("after repeated Starts: got %s, want the one SUCCEEDED execution", ex.Status)
	}
}

func testStartUnknown(t *testing.T, s *suite) {
	_, err := s.Engine.Start(s.ctx, "wt-no-such-machine", s.name(), []byte(`{}`))
	wantKind(t, "Start of an unknown machine", err, errs.NotFound)
}

func testDescribeSucceeded(t *testing.T, s *suite) {
	name := s.name()
	input := `{"topology": "t1", "nodes": [1, 2, 3]}`
	before := time.Now().Add(-time.Minute)
	id := s.start(t, MachinePass, name, input)
	ex := s.await(t, id)
	if ex.Status != workflow.Succeeded {
		t.Fatalf("status %s (error %q cause %q), want SUCCEEDED", ex.Status, ex.Error, ex.Cause)
	}
	if ex.ID != id || ex.Name != name || ex.Machine != MachinePass {
		t.Fatalf("got id %q name %q machine %q, want %q %q %q", ex.ID, ex.Name, ex.Machine, id, name, MachinePass)
	}
	wantJSON(t, "input", ex.Input, input)
	wantJSON(t, "output", ex.Output, `{"echo": `+input+`, "constant": "c"}`)
	if ex.Error != "" || ex.Cause != "" {
		t.Fatalf("a succeeded execution has error %q cause %q", ex.Error, ex.Cause)
	}
	if ex.Started.Before(before) || ex.Stopped.Before(ex.Started) {
		t.Fatalf("started %v stopped %v", ex.Started, ex.Stopped)
	}
}

func testDescribeFailed(t *testing.T, s *suite) {
	id := s.start(t, MachineFail, s.name(), `{}`)
	ex := s.await(t, id)
	if ex.Status != workflow.Failed || ex.Error != "Boom" || ex.Cause != "it broke" {
		t.Fatalf("got status %s error %q cause %q, want FAILED Boom %q", ex.Status, ex.Error, ex.Cause, "it broke")
	}
	if ex.Stopped.IsZero() {
		t.Fatal("a failed execution has no stop time")
	}
}

func testDescribeUnknown(t *testing.T, s *suite) {
	// An id of the right shape for the engine, naming nothing.
	id := s.start(t, MachinePass, s.name(), `{}`)
	_, err := s.Engine.Describe(s.ctx, id+"x")
	wantKind(t, "Describe of an unknown execution", err, errs.NotFound)
	wantKind(t, "Stop of an unknown execution", s.Engine.Stop(s.ctx, id+"x", "E", "c"), errs.NotFound)
}

func testStop(t *testing.T, s *suite) {
	id := s.start(t, MachineWait, s.name(), `{}`)
	ex, err := s.Engine.Describe(s.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if ex.Status != workflow.Running || !ex.Stopped.IsZero() {
		t.Fatalf("waiting execution: got status %s stopped %v, want RUNNING and no stop time", ex.Status, ex.Stopped)
	}
	if err := s.Engine.Stop(s.ctx, id, "Halted", "stopped by the suite"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	ex = s.await(t, id)
	if ex.Status != workflow.Aborted {
		t.Fatalf("after Stop: got %s, want ABORTED", ex.Status)
	}
	if ex.Stopped.IsZero() {
		t.Fatal("an aborted execution has no stop time")
	}
}

func testTaskSuccess(t *testing.T, s *suite) {
	name := s.name()
	id := s.start(t, MachineTask, name, `{"node": "n1"}`)
	msg := s.token(t, name)
	wantJSON(t, "task message input", msg.Input, `{"node": "n1"}`)
	if ex, err := s.Engine.Describe(s.ctx, id); err != nil || ex.Status != workflow.Running {
		t.Fatalf("while the task waits: got %+v, %v; want RUNNING", ex.Status, err)
	}
	for i := 0; i < 2; i++ {
		if err := s.Engine.SendTaskHeartbeat(s.ctx, msg.Token); err != nil {
			t.Fatalf("SendTaskHeartbeat %d: %v", i, err)
		}
	}
	if err := s.Engine.SendTaskSuccess(s.ctx, msg.Token, []byte(`{"ok": true, "node": "n1"}`)); err != nil {
		t.Fatalf("SendTaskSuccess: %v", err)
	}
	ex := s.await(t, id)
	if ex.Status != workflow.Succeeded {
		t.Fatalf("got %s (%s: %s), want SUCCEEDED", ex.Status, ex.Error, ex.Cause)
	}
	wantJSON(t, "output", ex.Output, `{"ok": true, "node": "n1"}`)
	// The task is over: its token completes nothing any more. Step Functions calls such a
	// token timed out (Conflict); emulators may call it unknown (NotFound).
	err := s.Engine.SendTaskSuccess(s.ctx, msg.Token, []byte(`{}`))
	wantKind(t, "second SendTaskSuccess", err, errs.NotFound, errs.Conflict)
	wantKind(t, "SendTaskHeartbeat after success", s.Engine.SendTaskHeartbeat(s.ctx, msg.Token), errs.NotFound, errs.Conflict)
}

func testTaskFailure(t *testing.T, s *suite) {
	name := s.name()
	id := s.start(t, MachineTask, name, `{}`)
	msg := s.token(t, name)
	if err := s.Engine.SendTaskFailure(s.ctx, msg.Token, "NodeDown", "agent on n1 is gone"); err != nil {
		t.Fatalf("SendTaskFailure: %v", err)
	}
	ex := s.await(t, id)
	if ex.Status != workflow.Failed || ex.Error != "NodeDown" || ex.Cause != "agent on n1 is gone" {
		t.Fatalf("got %s error %q cause %q, want FAILED NodeDown", ex.Status, ex.Error, ex.Cause)
	}
	err := s.Engine.SendTaskFailure(s.ctx, msg.Token, "NodeDown", "again")
	wantKind(t, "second SendTaskFailure", err, errs.NotFound, errs.Conflict)
}

func testTaskFailureCaught(t *testing.T, s *suite) {
	name := s.name()
	id := s.start(t, MachineCatch, name, `{"node": "n2"}`)
	msg := s.token(t, name)
	if err := s.Engine.SendTaskFailure(s.ctx, msg.Token, "NodeDown", "n2 is gone"); err != nil {
		t.Fatalf("SendTaskFailure: %v", err)
	}
	ex := s.await(t, id)
	if ex.Status != workflow.Succeeded {
		t.Fatalf("got %s (%s: %s), want SUCCEEDED through the Catch", ex.Status, ex.Error, ex.Cause)
	}
	wantJSON(t, "output", ex.Output, `{"node": "n2", "caught": {"Error": "NodeDown", "Cause": "n2 is gone"}}`)
}

func testTaskTimeout(t *testing.T, s *suite) {
	name := s.name()
	id := s.start(t, MachineTimeout, name, `{}`)
	msg := s.token(t, name)
	ex := s.await(t, id)
	if ex.Status != workflow.Failed || ex.Error != "States.Timeout" {
		t.Fatalf("got %s error %q, want FAILED States.Timeout", ex.Status, ex.Error)
	}
	err := s.Engine.SendTaskSuccess(s.ctx, msg.Token, []byte(`{}`))
	wantKind(t, "SendTaskSuccess after the task timed out", err, errs.Conflict, errs.NotFound)
}

func testUnknownToken(t *testing.T, s *suite) {
	const token = "no-such-task-token"
	wantKind(t, "SendTaskSuccess", s.Engine.SendTaskSuccess(s.ctx, token, []byte(`{}`)), errs.NotFound)
	wantKind(t, "SendTaskFailure", s.Engine.SendTaskFailure(s.ctx, token, "E", "c"), errs.NotFound)
	wantKind(t, "SendTaskHeartbeat", s.Engine.SendTaskHeartbeat(s.ctx, token), errs.NotFound)
}
