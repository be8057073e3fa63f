package lambda

import (
	"encoding/json"
	"testing"

	"github.com/straas/straas/shared/stages"
)

// The configuration-change workflow's stage functions, on a created component.
func TestConfigChangeStageEvents(t *testing.T) {
	s := newStack(t)
	ids := s.topology(t, "config-1")
	for _, st := range []struct{ name, file string }{
		{"Start", "start.json"}, {"Spawn", "spawn.json"}, {"PreConfig", "pre-config.json"}, {"FinishComponent", "finish-component.json"},
	} {
		s.mustStage(t, st.name, st.file, ids)
	}
	var plan stages.PlanOut
	if err := json.Unmarshal(s.mustStage(t, "ConfigChangePlan", "config-change-plan.json", ids), &plan); err != nil {
		t.Fatal(err)
	}
	// The event restarts all: the component's one node is rolled.
	if plan.Run == "" || plan.Commit == "" || len(plan.Nodes) != 1 || plan.Nodes[0].NodeID != stages.NodeID(ids["cmp-sample"], 1) {
		t.Fatalf("ConfigChangePlan: got %+v, want a run, the commit to apply and the node to roll", plan)
	}
	s.mustStage(t, "ConfigChangeCommand", "config-change-command.json", ids)
	s.mustStage(t, "ConfigChangeNodeDone", "config-change-node-done.json", ids)
	for _, st := range []struct{ name, file string }{{"ConfigChangeFinish", "config-change-finish.json"}, {"ConfigChangeFailed", "config-change-failed.json"}} {
		var res map[string]any
		if err := json.Unmarshal(s.mustStage(t, st.name, st.file, ids), &res); err != nil || len(res) == 0 {
			t.Errorf("%s: got %v, %v", st.name, res, err)
		}
	}
}
