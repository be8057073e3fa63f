package asl

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/boltq"
	"github.com/straas/straas/shared/workflow"
)

func openQueue(t *testing.T) *boltq.Queue {
	t.Helper()
	q, err := boltq.Open(filepath.Join(t.TempDir(), "queue.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// recvOne waits for the one message on queue name.
func recvOne(t *testing.T, q queue.Queue, name string) []byte {
	t.Helper()
	ctx := context.Background()
	msgs, err := q.Receive(ctx, name, queue.MaxBatch, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 1 {
		t.Fatalf("got %d messages on %s, want 1", len(msgs), name)
	}
	if err := q.Ack(ctx, name, msgs[0].Receipt); err != nil {
		t.Fatal(err)
	}
	return msgs[0].Body
}

func TestSQSSendMessage(t *testing.T) {
	ctx := context.Background()
	const taskQueue = "tasks"
	cases := []struct {
		name     string
		resource string
		params   string
		input    string
		body     string // the message, byte for byte ("": none is sent)
		answer   func(t *testing.T, h *harness, body []byte)
		check    func(t *testing.T, x workflow.Execution, body []byte)
	}{
		{
			name: "object body to a queue URL", resource: ResSQSSend,
			params: `{"QueueUrl":"https://sqs.eu-west-1.amazonaws.com/123456789012/tasks","MessageBody":{"exec.$":"$$.Execution.Name","n.$":"$.n"}}`,
			input:  `{"n":1}`, body: `{"exec":"e1","n":1}`,
			check: func(t *testing.T, x workflow.Execution, body []byte) {
				var out struct {
					N    int
					Sent struct{ MessageId, MD5OfMessageBody string }
				}
				if err := json.Unmarshal(x.Output, &out); err != nil {
					t.Fatal(err)
				}
				sum := md5.Sum(body)
				if out.N != 1 || out.Sent.MessageId == "" || out.Sent.MD5OfMessageBody != hex.EncodeToString(sum[:]) {
					t.Errorf("output %s: want the input with the message id and the body's MD5 under sent", x.Output)
				}
			},
		},
		{
			name: "string body as it is, queue from a path", resource: ResSQSSend,
			params: `{"QueueUrl.$":"$.q","MessageBody.$":"$.text"}`,
			input:  `{"q":"tasks","text":"hello {not json"}`, body: `hello {not json`,
			check: func(t *testing.T, x workflow.Execution, _ []byte) {
				if x.Status != workflow.Succeeded {
					t.Errorf("status %s %s %s", x.Status, x.Error, x.Cause)
				}
			},
		},
		{
			name: "missing queue", resource: ResSQSSend,
			params: `{"QueueUrl":"https://sqs.eu-west-1.amazonaws.com/123456789012/no-such-queue","MessageBody":{"a":1}}`,
			input:  `{}`,
			check: func(t *testing.T, x workflow.Execution, _ []byte) {
				var out struct{ Err struct{ Error, Cause string } }
				_ = json.Unmarshal(x.Output, &out)
				if out.Err.Error != "SQS.QueueDoesNotExistException" || out.Err.Cause == "" {
					t.Errorf("output %s: want SQS.QueueDoesNotExistException caught", x.Output)
				}
			},
		},
		{
			name: "wait for the token", resource: ResSQSSendWait,
			params: `{"QueueUrl":"tasks","MessageBody":{"token.$":"$$.Task.Token","exec.$":"$$.Execution.Name"}}`,
			input:  `{"n":2}`,
			answer: func(t *testing.T, h *harness, body []byte) {
				var m struct{ Token, Exec string }
				if err := json.Unmarshal(body, &m); err != nil || m.Token == "" || m.Exec != "e1" {
					t.Fatalf("message %s: want the token and the execution name", body)
				}
				if err := h.eng.SendTaskSuccess(ctx, m.Token, []byte(`{"agent":"ok"}`)); err != nil {
					t.Fatal(err)
				}
			},
			check: func(t *testing.T, x workflow.Execution, _ []byte) {
				jsonEq(t, x.Output, `{"n":2,"sent":{"agent":"ok"}}`)
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := openQueue(t)
			if err := q.Ensure(ctx, taskQueue); err != nil {
				t.Fatal(err)
			}
			def := fmt.Sprintf(`{"StartAt":"S","States":{"S":{"Type":"Task","Resource":%q,"Parameters":%s,"ResultPath":"$.sent",
				"Catch":[{"ErrorEquals":["SQS.QueueDoesNotExistException"],"ResultPath":"$.err","Next":"Caught"}],"End":true},
				"Caught":{"Type":"Pass","End":true}}}`, tc.resource, tc.params)
			h := newHarness(t, map[string]*Machine{"m": mustLoad(t, "m", def)}, nil, hopts{queue: q})
			id := h.start("m", "e1", tc.input)
			var body []byte
			if tc.body != "" || tc.answer != nil {
				body = recvOne(t, q, taskQueue)
			}
			if tc.body != "" && string(body) != tc.body {
				t.Errorf("message %q, want %q", body, tc.body)
			}
			if tc.answer != nil {
				tc.answer(t, h, body)
			}
			x := h.await(id, false)
			if x.Status != workflow.Succeeded {
				t.Fatalf("status %s %s %s", x.Status, x.Error, x.Cause)
			}
			tc.check(t, x, body)
			if tc.body == "" && tc.answer == nil {
				msgs, err := q.Receive(ctx, taskQueue, queue.MaxBatch, 0)
				if err != nil || len(msgs) != 0 {
					t.Errorf("queue %s holds %d messages (%v), want none", taskQueue, len(msgs), err)
				}
			}
		})
	}
}

// A callback task over SQS times out like any other: TimeoutSeconds covers the wait
// for the token, and a late answer is refused.
func TestSQSWaitTimeout(t *testing.T) {
	ctx := context.Background()
	q := openQueue(t)
	if err := q.Ensure(ctx, "tasks"); err != nil {
		t.Fatal(err)
	}
	def := `{"StartAt":"S","States":{"S":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage.waitForTaskToken",
		"Parameters":{"QueueUrl":"tasks","MessageBody":{"token.$":"$$.Task.Token"}},"TimeoutSeconds":30,"End":true}}}`
	h := newHarness(t, map[string]*Machine{"m": mustLoad(t, "m", def)}, nil, hopts{queue: q})
	id := h.start("m", "e1", `{}`)
	var m struct{ Token string }
	if err := json.Unmarshal(recvOne(t, q, "tasks"), &m); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, h, rootThreadID(id), phToken)
	waitFor(t, "the timeout timer", func() bool { return h.clk.Waiters() == 1 })
	h.clk.Advance(30 * time.Second)
	x := h.await(id, false)
	if x.Status != workflow.Failed || x.Error != ErrTimeout {
		t.Fatalf("got %s %s, want FAILED %s", x.Status, x.Error, ErrTimeout)
	}
	if err := h.eng.SendTaskSuccess(ctx, m.Token, []byte(`{}`)); !errs.Is(err, errs.NotFound) && !errs.Is(err, errs.Conflict) {
		t.Errorf("late answer: %v, want NotFound or Conflict", err)
	}
}
