package lambda

import (
	"testing"

	"github.com/straas/straas/shared/deps"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/dynamo"
	"github.com/straas/straas/statemachines"
	"github.com/straas/straas/test/awsendpoint"
)

// `straas aws bootstrap` (deps.BootstrapLocal) makes everything the functions use, and
// running it again changes nothing.
func TestBootstrapLocalIsIdempotent(t *testing.T) {
	cfg := awsendpoint.Config(t)
	ctx := testCtx(t)
	p := awsendpoint.Name("bs")
	o := deps.LocalStack{Table: p, StatusQueue: p + "-status", Bucket: p + "-blobs", Topic: p + "-alerts", MachinePrefix: p + "-"}
	first, err := deps.BootstrapLocal(ctx, cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	again, err := deps.BootstrapLocal(ctx, cfg, o)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	for _, name := range statemachines.Names() {
		if first.StateMachines[name] == "" || again.StateMachines[name] != first.StateMachines[name] {
			t.Errorf("state machine %s: first %q, then %q", name, first.StateMachines[name], again.StateMachines[name])
		}
	}
	if first.Table != p || first.StatusQueueURL == "" || again.StatusQueueURL != first.StatusQueueURL ||
		first.Bucket != p+"-blobs" || first.TopicARN == "" || again.TopicARN != first.TopicARN {
		t.Errorf("got %+v then %+v", first, again)
	}
	s := dynamo.New(cfg, first.Table, dynamo.Options{})
	r, err := store.Encode("probe", "1", map[string]int{"n": 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, store.Put(r, store.Absent)); err != nil {
		t.Fatalf("the table does not take a record: %v", err)
	}
}
