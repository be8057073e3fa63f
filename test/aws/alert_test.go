package aws

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/straas/straas/shared/alert"
	"github.com/straas/straas/shared/alert/snsalert"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/sqsq"
	"github.com/straas/straas/test/awsendpoint"
)

// subscribedQueue makes a queue subscribed to topic (with filter, if any) and returns
// its name.
func subscribedQueue(t *testing.T, q *sqsq.Queue, topic, filter string) string {
	t.Helper()
	ctx := testCtx(t)
	name := awsendpoint.Name("alerts")
	if err := q.Ensure(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Remove(context.Background(), name) })
	arn, err := q.ARN(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := snsalert.Subscribe(ctx, awsendpoint.Config(t), topic, arn, filter); err != nil {
		t.Fatal(err)
	}
	return name
}

// receiveAlerts reads n alerts from the queue, or fails after a deadline.
func receiveAlerts(t *testing.T, q queue.Queue, name string, n int) []alert.Alert {
	t.Helper()
	ctx := testCtx(t)
	var out []alert.Alert
	deadline := time.Now().Add(30 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		msgs, err := q.Receive(ctx, name, queue.MaxBatch, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			var a alert.Alert
			if err := json.Unmarshal(m.Body, &a); err != nil {
				t.Fatalf("message %q is not an alert: %v", m.Body, err)
			}
			out = append(out, a)
			if err := q.Ack(ctx, name, m.Receipt); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(out) != n {
		t.Fatalf("got %d alerts on %s, want %d", len(out), name, n)
	}
	return out
}

func TestAlertPublish(t *testing.T) {
	cfg := awsendpoint.Config(t)
	ctx := testCtx(t)
	topic, err := snsalert.CreateTopic(ctx, cfg, awsendpoint.Name("straas-alerts"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snsalert.DeleteTopic(context.Background(), cfg, topic) })
	if again, err := snsalert.CreateTopic(ctx, cfg, topicName(topic)); err != nil || again != topic {
		t.Fatalf("CreateTopic again: got %q, %v; want %q", again, err, topic)
	}
	q := sqsq.New(cfg, sqsq.Options{})
	all := subscribedQueue(t, q, topic, "")
	critical := subscribedQueue(t, q, topic, `{"level": ["critical"]}`)

	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	alerts := []alert.Alert{
		{Key: "node/n1/stale", Level: "warning", Title: "Node n1 is stale", Message: "no heartbeat for 3m", Topology: "t1", At: at},
		{Key: "topology/t1/degraded", Level: "critical", Title: "Topology t1 degraded\nnewline and ünïcode", Message: "2 of 3 zk nodes down",
			Topology: "t1", Labels: map[string]string{"component": "zk"}, At: at},
	}
	p := snsalert.New(cfg, topic)
	for _, a := range alerts {
		if err := p.Publish(ctx, a); err != nil {
			t.Fatalf("Publish %s: %v", a.Key, err)
		}
	}
	got := receiveAlerts(t, q, all, len(alerts))
	byKey := map[string]alert.Alert{}
	for _, a := range got {
		byKey[a.Key] = a
	}
	for _, want := range alerts {
		if g := byKey[want.Key]; !reflect.DeepEqual(g, want) {
			t.Errorf("alert %s: got %+v, want %+v", want.Key, g, want)
		}
	}
	// The level attribute reaches subscriptions: the filtered one gets only critical.
	if crit := receiveAlerts(t, q, critical, 1); crit[0].Key != "topology/t1/degraded" {
		t.Fatalf("critical subscription got %s", crit[0].Key)
	}
	if msgs, err := q.Receive(ctx, critical, queue.MaxBatch, time.Second); err != nil || len(msgs) != 0 {
		t.Fatalf("critical subscription: got %d more messages (%v), want none", len(msgs), err)
	}

	if err := snsalert.New(cfg, topic+"-missing").Publish(ctx, alerts[0]); !errs.Is(err, errs.NotFound) {
		t.Fatalf("Publish to a missing topic: got %v (kind %v), want not_found", err, errs.KindOf(err))
	}
}

func topicName(arn string) string {
	for i := len(arn) - 1; i >= 0; i-- {
		if arn[i] == ':' {
			return arn[i+1:]
		}
	}
	return arn
}
