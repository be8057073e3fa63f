package aws

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/infra/bootstrap"
	"github.com/straas/straas/shared/alert"
	"github.com/straas/straas/shared/alert/snsalert"
	"github.com/straas/straas/shared/blob/s3blob"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/sqsq"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/dynamo"
	"github.com/straas/straas/shared/workflow"
	"github.com/straas/straas/shared/workflow/sfn"
	"github.com/straas/straas/test/awsendpoint"
)

// notify sends its input to the status queue: it proves ${StatusQueueUrl} was filled in.
const notifyASL = `{"StartAt": "Tell", "States": {"Tell": {
	"Type": "Task",
	"Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
	"Parameters": {"QueueUrl": "${StatusQueueUrl}", "MessageBody": {"token.$": "$$.Task.Token", "greeting": "${Greeting}"}},
	"HeartbeatSeconds": 60, "TimeoutSeconds": 120, "End": true}}}`

func TestBootstrap(t *testing.T) {
	cfg := awsendpoint.Config(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	write := func(name, def string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(def), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("notify.asl.json", notifyASL)
	write("echo.asl.json", `{"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"greeting": "${Greeting}"}, "End": true}}}`)
	write("README.md", "not a machine")
	o := bootstrap.Options{
		Table:            awsendpoint.Name("straas-boot"),
		StatusQueue:      awsendpoint.Name("straas-status"),
		Bucket:           awsendpoint.Name("straas-boot"),
		Topic:            awsendpoint.Name("straas-alerts"),
		StateMachinesDir: dir,
		Substitutions:    map[string]string{"Greeting": "hello"},
		MachinePrefix:    awsendpoint.Name("boot") + "-",
	}
	var r bootstrap.Result
	for i := 0; i < 2; i++ { // the second run finds everything in place
		var err error
		if r, err = bootstrap.Bootstrap(ctx, cfg, o); err != nil {
			t.Fatalf("Bootstrap run %d: %v", i+1, err)
		}
	}
	e := sfn.New(cfg, sfn.Options{Prefix: o.MachinePrefix})
	t.Cleanup(func() {
		c := context.Background()
		e.DeleteMachines(c, "notify", "echo")
		dynamo.DeleteTable(c, cfg, o.Table)
		sqsq.New(cfg, sqsq.Options{}).Remove(c, o.StatusQueue)
		s3blob.DeleteBucket(c, cfg, o.Bucket)
		snsalert.DeleteTopic(c, cfg, r.TopicARN)
	})
	if len(r.StateMachines) != 2 || r.StateMachines["notify"] == "" || r.StateMachines["echo"] == "" {
		t.Fatalf("state machines: got %v, want notify and echo", r.StateMachines)
	}
	if r.Table != o.Table || r.Bucket != o.Bucket || r.TopicARN == "" || !strings.HasSuffix(r.StatusQueueURL, "/"+o.StatusQueue) {
		t.Fatalf("got %+v", r)
	}

	// Each resource works through its adapter.
	st := dynamo.New(cfg, o.Table, dynamo.Options{})
	rec := store.Record{Kind: "k", ID: "1", Data: []byte(`{}`), Index: map[string]store.IndexKey{store.IdxDue: {Part: "lease", Sort: "a"}}}
	if err := st.Write(ctx, store.Put(rec, store.Absent)); err != nil {
		t.Fatalf("store: %v", err)
	}
	q := sqsq.New(cfg, sqsq.Options{})
	if _, err := q.Receive(ctx, queue.DeadLetter(o.StatusQueue), 1, 0); err != nil {
		t.Fatalf("status dead-letter queue: %v", err)
	}
	bs, err := s3blob.New(cfg, s3blob.Options{Bucket: o.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	if err := bs.Put(ctx, "x/y", strings.NewReader("z"), 1); err != nil {
		t.Fatalf("blob: %v", err)
	}
	if err := snsalert.New(cfg, r.TopicARN).Publish(ctx, alert.Alert{Key: "k", Level: "warning", At: time.Now()}); err != nil {
		t.Fatalf("alert: %v", err)
	}

	// The machines run, with the substitutions filled in.
	id, err := e.Start(ctx, "echo", "e1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ex := awaitExecution(t, e, id); ex.Status != workflow.Succeeded || !bytes.Equal(bytes.ReplaceAll(ex.Output, []byte(" "), nil), []byte(`{"greeting":"hello"}`)) {
		t.Fatalf("echo: got %s output %s", ex.Status, ex.Output)
	}
	id, err = e.Start(ctx, "notify", "n1", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	msgs := receiveN(t, q, o.StatusQueue, 1)
	var body struct{ Token, Greeting string }
	if err := json.Unmarshal(msgs[0].Body, &body); err != nil || body.Greeting != "hello" || body.Token == "" {
		t.Fatalf("status queue got %s", msgs[0].Body)
	}
	if err := e.Stop(ctx, id, "Done", ""); err != nil {
		t.Fatal(err)
	}

	// A definition with a placeholder nobody fills is refused, naming the file.
	write("broken.asl.json", `{"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "${Nope}", "End": true}}}`)
	_, err = bootstrap.Bootstrap(ctx, cfg, o)
	if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "broken.asl.json") || !strings.Contains(err.Error(), "Nope") {
		t.Fatalf("Bootstrap with an unfilled placeholder: got %v, want invalid naming broken.asl.json and Nope", err)
	}
}

func awaitExecution(t *testing.T, e workflow.Engine, id string) workflow.Execution {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ex, err := e.Describe(testCtx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if ex.Status != workflow.Running {
			return ex
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still running", id)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-testCtx(t).Done():
			t.Fatal("context done")
		}
	}
}

func receiveN(t *testing.T, q queue.Queue, name string, n int) []queue.Message {
	t.Helper()
	var out []queue.Message
	deadline := time.Now().Add(30 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		msgs, err := q.Receive(testCtx(t), name, n-len(out), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, msgs...)
	}
	if len(out) < n {
		t.Fatalf("got %d messages on %s, want %d", len(out), name, n)
	}
	return out
}
