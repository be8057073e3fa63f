package lambda

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/straas/straas/infra/bootstrap"
	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/deps"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/sqsq"
	"github.com/straas/straas/shared/stages"
	"github.com/straas/straas/shared/store/dynamo"
	"github.com/straas/straas/shared/workflow"
	"github.com/straas/straas/shared/workflow/sfn"
	"github.com/straas/straas/shared/workflow/workflowtest"
	"github.com/straas/straas/test/awsendpoint"
)

// sampleToken is the task token in events/stages/*.json.
const sampleToken = "AQCEAAAAKgAAAAMAAAAAAAAAAVsampleTaskTokenFromStepFunctions=="

// topology creates a topology through the API function's create event and returns the
// replacements that turn the sample ids of events/ into its ids.
func (s *stack) topology(t *testing.T, name string) map[string]string {
	t.Helper()
	h, err := s.lambda.API(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := callAPI(t, h, event(t, "api/create-topology.json", map[string]string{`"sample-1"`: `"` + name + `"`}))
	if r.StatusCode != 202 {
		t.Fatalf("create: got %d: %s", r.StatusCode, r.Body)
	}
	var created struct{ Action struct{ ID string } }
	if err := json.Unmarshal([]byte(r.Body), &created); err != nil {
		t.Fatal(err)
	}
	d := s.db()
	a, _, err := d.Action(testCtx(t), created.Action.ID)
	if err != nil {
		t.Fatal(err)
	}
	comps, err := d.Components(testCtx(t), a.TopologyID)
	if err != nil || len(comps) != 1 {
		t.Fatalf("components of %s: %v, %v", a.TopologyID, comps, err)
	}
	return map[string]string{"act-sample": a.ID, "topo-sample": a.TopologyID, "cmp-sample": comps[0].ID}
}

func (s *stack) db() *db.DB { return db.New(dynamo.New(s.aws, s.cfg.Table, dynamo.Options{}), nil) }

// stage invokes the stage function name with events/stages/<file>.
func (s *stack) stage(t *testing.T, l *deps.Lambda, name, file string, repl map[string]string) ([]byte, error) {
	t.Helper()
	h, err := l.Stage(testCtx(t), name)
	if err != nil {
		t.Fatal(err)
	}
	return invoke(t, h, event(t, "stages/"+file, repl))
}

// mustStage invokes a stage that must succeed and returns its output.
func (s *stack) mustStage(t *testing.T, name, file string, repl map[string]string) []byte {
	t.Helper()
	out, err := s.stage(t, s.lambda, name, file, repl)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

// errorName is the error name Step Functions sees for a handler's error.
func errorName(t *testing.T, err error) string {
	t.Helper()
	var ie messages.InvokeResponse_Error
	if !errors.As(err, &ie) {
		t.Fatalf("handler error %T (%v) is not a messages.InvokeResponse_Error: Lambda would name it %T", err, err, err)
	}
	return ie.Type
}

// waiter is a machine holding a real task token until SendTaskSuccess/Failure.
type waiter struct {
	engine *sfn.Engine
	queue  *sqsq.Queue
	name   string
}

func newWaiter(t *testing.T, s *stack) *waiter {
	t.Helper()
	ctx := testCtx(t)
	w := &waiter{queue: sqsq.New(s.aws, sqsq.Options{}), name: awsendpoint.Name("tasks")}
	if err := w.queue.Ensure(ctx, w.name); err != nil {
		t.Fatal(err)
	}
	url, err := w.queue.URL(ctx, w.name)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := sfn.Substitute(map[string][]byte{workflowtest.MachineTask: workflowtest.Definitions()[workflowtest.MachineTask]},
		map[string]string{workflowtest.TaskQueueURL: url})
	if err != nil {
		t.Fatal(err)
	}
	w.engine = sfn.New(s.aws, sfn.Options{Prefix: w.name + "-", RoleARN: bootstrap.DefaultRoleARN})
	if _, err := w.engine.Deploy(ctx, defs); err != nil {
		t.Fatal(err)
	}
	return w
}

// start runs the machine and returns its execution and task token.
func (w *waiter) start(t *testing.T, name string) (string, string) {
	t.Helper()
	ctx := testCtx(t)
	id, err := w.engine.Start(ctx, workflowtest.MachineTask, name, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		msgs, err := w.queue.Receive(ctx, w.name, queue.MaxBatch, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			var tm struct{ Token, Execution string }
			if json.Unmarshal(m.Body, &tm) == nil && tm.Execution == name && tm.Token != "" {
				return id, tm.Token
			}
		}
	}
	t.Fatalf("no task token for %s", name)
	return "", ""
}

// await polls the execution until it ends.
func (w *waiter) await(t *testing.T, id string) workflow.Execution {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		ex, err := w.engine.Describe(testCtx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Status != workflow.Running || time.Now().After(deadline) {
			return ex
		}
		time.Sleep(100 * time.Millisecond) // polling a remote service: no event to wait on
	}
}

// TestStageEvents runs creation's and deletion's stage functions in order on one
// topology with their sample events, the conductor delivering the node's hello in
// between: the hello completes verify-spawn's real Step Functions task.
func TestStageEvents(t *testing.T) {
	s := newStack(t)
	ctx := testCtx(t)
	ids := s.topology(t, "stages-1")
	comp, node := ids["cmp-sample"], stages.NodeID(ids["cmp-sample"], 1)

	var start stages.StartOut
	if err := json.Unmarshal(s.mustStage(t, "Start", "start.json", ids), &start); err != nil {
		t.Fatal(err)
	}
	if len(start.Components) != 1 || start.Components[0] != comp || start.Timeouts.Stage <= 0 {
		t.Fatalf("Start: got %+v, want component %s and a stage timeout", start, comp)
	}
	if out := s.mustStage(t, "Spawn", "spawn.json", ids); string(out) != "{}" {
		t.Errorf("Spawn: got %s", out)
	}
	n, _, err := s.db().Node(ctx, node)
	if err != nil || n.ServerID == "" {
		t.Fatalf("Spawn left node %s without a server: %+v, %v", node, n, err)
	}

	// verify spawn holds a real task token; the node's hello, through the conductor,
	// completes it.
	w := newWaiter(t, s)
	exec, token := w.start(t, "hello-"+comp)
	withToken := map[string]string{sampleToken: token}
	for k, v := range ids {
		withToken[k] = v
	}
	s.mustStage(t, "AwaitHello", "await-hello.json", withToken)
	cond, err := s.lambda.Conductor(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := invoke(t, cond, event(t, "conductor/status-batch.json", ids))
	if err != nil {
		t.Fatal(err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	for _, f := range resp.BatchItemFailures {
		// Only the message whose node id DynamoDB cannot key may fail; the malformed
		// one is dropped, never redelivered.
		if !strings.HasSuffix(f.ItemIdentifier, "4") {
			t.Errorf("batch item failure %s: only message 4 may fail", f.ItemIdentifier)
		}
	}
	if ex := w.await(t, exec); ex.Status != workflow.Succeeded || !strings.Contains(string(ex.Output), `"verify_spawn"`) {
		t.Fatalf("verify spawn's task: got %s %s %s, want SUCCEEDED with the batch outcome", ex.Status, ex.Error, ex.Output)
	}
	if n, _, _ := s.db().Node(ctx, node); n.Status == "SPAWNING" || len(n.IPs) == 0 {
		t.Errorf("hello not recorded on node %s: %+v", node, n)
	}

	// install sends the command to the node's queue.
	s.mustStage(t, "RunCommand", "run-command.json", ids)
	msgs, err := sqsq.New(s.aws, sqsq.Options{}).Receive(ctx, queue.NodeQueue(node), 10, 5*time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("node queue: got %d messages, %v; want the install command", len(msgs), err)
	}
	cmd, err := agentproto.Decode(msgs[0].Body)
	if err != nil || cmd.Command == nil || cmd.Command.Kind != agentproto.CmdInstall || cmd.Command.Package == nil {
		t.Fatalf("node command: got %+v, %v; want install with its package", cmd.Command, err)
	}

	for _, st := range []struct{ name, file string }{
		{"CName", "cname.json"}, {"AwaitDependencies", "await-dependencies.json"}, {"PreConfig", "pre-config.json"},
		{"FinishComponent", "finish-component.json"},
	} {
		if out := s.mustStage(t, st.name, st.file, ids); string(out) != "{}" {
			t.Errorf("%s: got %s, want {}", st.name, out)
		}
	}
	if n, _, _ := s.db().Node(ctx, node); n.Config == nil || n.Config.SitePP == "" {
		t.Errorf("PreConfig left node %s without a configuration", node)
	}
	var job stages.JobOut
	if err := json.Unmarshal(s.mustStage(t, "FinishJob", "finish-job.json", ids), &job); err != nil || job.Status == "" {
		t.Errorf("FinishJob: got %+v, %v", job, err)
	}
	if out := s.mustStage(t, "FailComponent", "fail-component.json", ids); string(out) != "{}" {
		t.Errorf("FailComponent: got %s", out)
	}

	// Deletion.
	s.mustStage(t, "MarkDeleting", "mark-deleting.json", ids)
	var del stages.DeleteOut
	for i := 0; ; i++ {
		out, err := s.stage(t, s.lambda, "DeleteNodes", "delete-nodes.json", ids)
		if err == nil {
			if err := json.Unmarshal(out, &del); err != nil {
				t.Fatal(err)
			}
			break
		}
		// Step Functions retries ServersRemain; so does the test.
		if name := errorName(t, err); name != "ServersRemain" || i == 50 {
			t.Fatalf("DeleteNodes: %s: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond) // the state machine's retry interval, shortened
	}
	if del.Servers != 1 || del.Nodes != 1 {
		t.Errorf("DeleteNodes: got %+v, want 1 server and 1 node", del)
	}
	s.mustStage(t, "DeleteConfig", "delete-config.json", ids)
	var failed stages.JobOut
	if err := json.Unmarshal(s.mustStage(t, "DeletionFailed", "deletion-failed.json", ids), &failed); err != nil || failed.Status == "" {
		t.Errorf("DeletionFailed: got %+v, %v", failed, err)
	}
	s.mustStage(t, "FinishDeletion", "finish-deletion.json", ids)
	if _, _, err := s.db().Topology(ctx, ids["topo-sample"]); err == nil {
		t.Error("FinishDeletion left the topology")
	}
}

// Errors reach Step Functions under the names the embedded interpreter gives them.
func TestStageErrorNames(t *testing.T) {
	s := newStack(t)
	ids := s.topology(t, "errors-1")
	s.mustStage(t, "Start", "start.json", ids)

	t.Run("SpawnFailed", func(t *testing.T) {
		for _, cn := range s.cloud.CNs() {
			if err := s.cloud.SetCNDown(cn.ID, true); err != nil {
				t.Fatal(err)
			}
		}
		defer func() {
			for _, cn := range s.cloud.CNs() {
				s.cloud.SetCNDown(cn.ID, false)
			}
		}()
		_, err := s.stage(t, s.lambda, "Spawn", "spawn.json", ids)
		if got := errorName(t, err); got != "SpawnFailed" {
			t.Errorf("got %s (%v), want SpawnFailed", got, err)
		}
	})
	t.Run("TaskFailed", func(t *testing.T) {
		h, _ := s.lambda.Stage(testCtx(t), "Start")
		_, err := invoke(t, h, []byte(`{"action_id": 5}`))
		if got := errorName(t, err); got != "TaskFailed" {
			t.Errorf("got %s (%v), want TaskFailed", got, err)
		}
	})
	t.Run("Transient", func(t *testing.T) {
		gone := deps.NewLambdaWithLogger(s.config(t, map[string]string{deps.EnvTable: "no-such-table"}), quiet())
		_, err := s.stage(t, gone, "Start", "start.json", ids)
		if got := errorName(t, err); got != "Transient" {
			t.Errorf("got %s (%v), want Transient", got, err)
		}
	})
	t.Run("unknown stage", func(t *testing.T) {
		if _, err := s.lambda.Stage(testCtx(t), "NoSuchStage"); err == nil {
			t.Error("built a handler for a stage that does not exist")
		}
	})
}

// A whole batch that cannot be stored is reported message by message, except the
// malformed message, which can never succeed and is dropped.
func TestConductorPartialBatchFailure(t *testing.T) {
	s := newStack(t)
	gone := deps.NewLambdaWithLogger(s.config(t, map[string]string{deps.EnvTable: "no-such-table"}), quiet())
	h, err := gone.Conductor(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := invoke(t, h, event(t, "conductor/status-batch.json", nil))
	if err != nil {
		t.Fatal(err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range resp.BatchItemFailures {
		got = append(got, f.ItemIdentifier[len(f.ItemIdentifier)-1:])
	}
	if strings.Join(got, ",") != "1,2,4" {
		t.Errorf("failed messages: got %v, want 1,2,4 (3 is malformed)", got)
	}
}

func TestCheckerEvent(t *testing.T) {
	s := newStack(t)
	h, err := s.lambda.Checker(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := invoke(t, h, event(t, "checker/schedule.json", nil))
	if err != nil {
		t.Fatal(err)
	}
	var r struct{ Batches, Stale, Launched *int }
	if err := json.Unmarshal(out, &r); err != nil || r.Batches == nil || r.Stale == nil || r.Launched == nil {
		t.Fatalf("checker report: got %s, %v", out, err)
	}
}
