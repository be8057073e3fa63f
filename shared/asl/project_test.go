package asl

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/straas/straas/shared/workflow"
)

// The project's creation workflow runs on the interpreter with stand-in stage
// functions: those that wait for a token answer it at once, as a fast agent would.
func TestProjectCreationWorkflow(t *testing.T) {
	subst := map[string]string{}
	var eng atomic.Pointer[Engine]
	var mu sync.Mutex
	calls := map[string]int{}
	funcs := map[string]workflow.Func{}
	stand := func(name string) workflow.Func {
		return func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			var p map[string]any
			if err := json.Unmarshal(in, &p); err != nil {
				return nil, err
			}
			mu.Lock()
			calls[name]++
			mu.Unlock()
			if tok, ok := p["token"].(string); ok {
				return json.RawMessage(`{}`), eng.Load().SendTaskSuccess(ctx, tok, []byte(`{"ok":true}`))
			}
			switch name {
			case "StartFunctionArn":
				return json.RawMessage(`{"components":["zk","kafka"],"timeouts":{"stage":60}}`), nil
			case "FinishJobFunctionArn":
				return json.RawMessage(`{"status":"SUCCEEDED"}`), nil
			}
			return json.RawMessage(`{}`), nil
		}
	}
	// Every ${Name} the files use gets a stand-in function.
	files, _ := filepath.Glob("../../statemachines/*.asl.json")
	for _, f := range files {
		def, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range substRE.FindAllSubmatch(def, -1) {
			key := string(m[1])
			arn := "arn:straas:function:" + strings.TrimSuffix(key, "FunctionArn")
			subst[key] = arn
			funcs[arn] = stand(key)
		}
	}
	machines, err := LoadDir("../../statemachines", subst)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := machines["creation"]
	if !ok {
		t.Fatal("no creation machine")
	}
	h := newHarness(t, map[string]*Machine{"creation": m}, funcs, hopts{noRun: true})
	eng.Store(h.eng)
	h.run()
	x := h.await(h.start("creation", "job1", `{"action_id":"a1","topology_id":"t1"}`), false)
	if x.Status != workflow.Succeeded {
		t.Fatalf("%s %s %s", x.Status, x.Error, x.Cause)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, per := range []string{"SpawnFunctionArn", "AwaitHelloFunctionArn", "FinishComponentFunctionArn"} {
		if calls[per] != 2 {
			t.Errorf("%s ran %d times, want once per component", per, calls[per])
		}
	}
	if calls["FailComponentFunctionArn"] != 0 || calls["StartFunctionArn"] != 1 || calls["FinishJobFunctionArn"] != 1 {
		t.Errorf("calls: %v", calls)
	}
	ev, _ := h.eng.Events(context.Background(), x.ID)
	t.Logf("creation of 2 components: %d history events", ev.Total())
}
