package stages

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/bolt"
)

func TestAppliedRef(t *testing.T) {
	topo := &model.Topology{ConfigBranch: "t@az1"}
	tests := []struct {
		name string
		refs []string
		want string
	}{
		{"no node applied anything: the branch", []string{"", ""}, "t@az1"},
		{"the ref most members run", []string{"aaa", "bbb", "bbb", ""}, "bbb"},
		{"a tie picks the smallest, deterministically", []string{"bbb", "aaa"}, "aaa"},
		{"new nodes without a ref do not count", []string{"", "", "ccc"}, "ccc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var nodes []model.Node
			for _, r := range tc.refs {
				nodes = append(nodes, model.Node{ConfigRef: r})
			}
			if got := appliedRef(topo, nodes); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestComponentStatus(t *testing.T) {
	tests := []struct {
		statuses []string
		want     string
	}{
		{[]string{"ACTIVE", "ACTIVE"}, "ACTIVE"},
		{[]string{"ACTIVE", "FAILED"}, "ACTIVE"}, // a FAILED node is no member
		{[]string{"ACTIVE", NodeRestartRequired}, "ACTIVE"},
		{[]string{"ACTIVE", "UNREACHABLE"}, "DEGRADED"},
		{[]string{"ACTIVE", "SPAWNING"}, "DEGRADED"},
		{[]string{"FAILED", "DELETING"}, "FAILED"},
	}
	for _, tc := range tests {
		var nodes []model.Node
		for _, s := range tc.statuses {
			nodes = append(nodes, model.Node{Status: s})
		}
		if got := componentStatus(nodes); got != tc.want {
			t.Errorf("%v: got %s, want %s", tc.statuses, got, tc.want)
		}
	}
}

func TestSplitStageAndChildCause(t *testing.T) {
	for in, want := range map[string][2]string{
		"install: E: Version '1' for 'x' was not found": {"install", "E: Version '1' for 'x' was not found"},
		"verify_spawn: no answer within 15m0s":          {"verify_spawn", "no answer within 15m0s"},
		"spawn: Nova put the server in ERROR":           {"spawn", "Nova put the server in ERROR"},
		"no stage here":                                 {"", "no stage here"},
	} {
		if s, why := splitStage(in); s != want[0] || why != want[1] {
			t.Errorf("splitStage(%q) = %q, %q; want %q, %q", in, s, why, want[0], want[1])
		}
	}
	child := StatesError{Error: "States.TaskFailed", Cause: `{"Name":"act-1-abc","StateMachineArn":"arn:aws:states:local:0:stateMachine:config_change","Error":"NodeCommandFailed","Cause":"validate failed on node z-1"}`}
	if got := childCause(child); got != "config_change (execution act-1-abc) failed: NodeCommandFailed: validate failed on node z-1" {
		t.Errorf("childCause = %q", got)
	}
	plain := StatesError{Error: "NodeCommandFailed", Cause: "drain failed on 1 of 1 nodes"}
	if got := childCause(plain); got != plain.Cause {
		t.Errorf("childCause of a plain error = %q", got)
	}
}

func TestTypeInfo(t *testing.T) {
	kafka := TypeInfo{Drain: &DrainInfo{Roles: []string{"kafka"}, Command: "kafka-cmd/reassign_partitions"}}
	zk := TypeInfo{Self: []string{"zookeeper"}, Dependents: []string{"zookeeper"}}
	if _, ok := kafka.DrainFor("kafka"); !ok {
		t.Error("kafka brokers drain")
	}
	if _, ok := kafka.DrainFor("other"); ok {
		t.Error("a role the drain does not name drains")
	}
	if !zk.ReconfigureSelf("zookeeper") || !zk.ReconfigureDependents("zookeeper") || zk.ReconfigureSelf("x") {
		t.Error("zookeeper membership")
	}
	if (TypeInfo{}).ReconfigureSelf("any") {
		t.Error("no membership reconfigures nothing")
	}
}

// TestPlanRestarts orders the members waiting for a restart: followers by index, the
// leader (by the probe's answers, else the highest index) last.
func TestPlanRestarts(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		type_   string
		outputs map[int]string // probe output by node index
		waiting []int          // members RESTART_REQUIRED (node 2 is the replaced one)
		want    string
	}{
		{"probe names node 1", "zookeeper", map[int]string{1: "Mode: leader", 3: "Mode: follower", 4: "Mode: follower"}, []int{1, 3, 4}, "t-zk-3,t-zk-4,t-zk-1"},
		{"no probe answer: highest index", "zookeeper", map[int]string{}, []int{1, 3, 4}, "t-zk-1,t-zk-3,t-zk-4"},
		{"a type without a probe: highest index", "etcd", map[int]string{1: "Mode: leader"}, []int{1, 3}, "t-zk-1,t-zk-3"},
		{"the leader needs no restart", "zookeeper", map[int]string{4: "Mode: leader"}, []int{1, 3}, "t-zk-1,t-zk-3"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := bolt.Open(filepath.Join(t.TempDir(), "s.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			d := db.New(s, nil)
			e := NewEnv(Env{DB: d})
			comp := model.Component{ID: "c", TopologyID: "t", Name: "zk", Type: tc.type_, Status: model.StatusUpdating}
			cr, _ := db.ComponentRecord(&comp)
			if err := d.S.Write(ctx, putAny(cr)); err != nil {
				t.Fatal(err)
			}
			act := "a" + string(rune('0'+i))
			var targets []batch.Target
			for idx := 1; idx <= 4; idx++ {
				n := model.Node{ID: NodeID("c", idx), Name: "t-zk-" + string(rune('0'+idx)), ComponentID: "c", TopologyID: "t", Index: idx, Status: model.NodeActive}
				for _, w := range tc.waiting {
					if w == idx {
						n.Status = NodeRestartRequired
					}
				}
				if err := d.PutNode(ctx, &n); err != nil {
					t.Fatal(err)
				}
				if idx != 2 {
					targets = append(targets, batch.Target{NodeID: n.ID, NodeName: n.Name})
				}
			}
			bid := batch.ID(act, "c", StageLeaderProbe)
			if _, err := e.Batches.Open(ctx, batch.Spec{ID: bid, ActionID: act, ComponentID: "c", Stage: StageLeaderProbe, Tolerate: true,
				OnOK: batch.Keep, OnFail: batch.Keep, Timeout: probeTimeout, Targets: targets}); err != nil {
				t.Fatal(err)
			}
			for idx, out := range tc.outputs {
				if _, err := e.Batches.Record(ctx, bid, NodeID("c", idx), batch.Result{OK: true, Output: out}); err != nil {
					t.Fatal(err)
				}
			}
			plan, err := e.PlanRestarts(ctx, OpIn{Ref: Ref{ActionID: act, TopologyID: "t", ComponentID: "c"}, NodeID: NodeID("c", 2)})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, st := range plan.Steps {
				got = append(got, st.Name)
				if st.Stage != StageRestartPre+st.Name {
					t.Errorf("step %s: stage %q", st.Name, st.Stage)
				}
			}
			if strings.Join(got, ",") != tc.want {
				t.Errorf("order %v, want %s", got, tc.want)
			}
		})
	}
}

func putAny(r store.Record) store.Op { return store.Put(r, store.Any) }
