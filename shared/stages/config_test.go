package stages

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
)

func TestPlanNode(t *testing.T) {
	secs := func(tick, retain any) map[string]map[string]any {
		return map[string]map[string]any{"zookeeper": {"tick_time": tick, "autopurge_snap_retain_count": retain, "servers": []any{"a", "b"}}}
	}
	// What a node received, as the store gives it back: numbers are float64.
	received := func(tick, retain float64) *model.NodeConfig {
		return &model.NodeConfig{Ref: "c0", Sections: secs(tick, retain)}
	}
	restartKeys := map[string]bool{"zookeeper.tick_time": true, "zookeeper.autopurge_snap_retain_count": false}
	node := func(status string, cfg *model.NodeConfig, f ...func(*model.Node)) model.Node {
		n := model.Node{ID: "n1", Name: "t-zk-1", Role: "zookeeper", Index: 1, Status: status, Config: cfg, ConfigRef: "c0", InstalledVersion: "3.4.6"}
		for _, fn := range f {
			fn(&n)
		}
		return n
	}
	target := model.NodeConfig{Ref: "c1", Sections: secs(int64(2000), int64(3))}
	tests := []struct {
		name    string
		node    model.Node
		target  model.NodeConfig
		version string
		restart string
		keys    map[string]bool
		want    NodePlan // only the decision fields are compared
		changes []string
	}{
		{name: "unchanged (ints against stored floats)", node: node(model.NodeActive, received(2000, 3)), want: NodePlan{}},
		{name: "restart_required option", node: node(model.NodeActive, received(1000, 3)),
			want: NodePlan{Roll: true, Restart: true, RestartRequired: true}, changes: []string{"zookeeper.tick_time"}},
		{name: "option without restart", node: node(model.NodeActive, received(2000, 1)),
			want: NodePlan{Roll: true}, changes: []string{"zookeeper.autopurge_snap_retain_count"}},
		{name: "computed option restarts", node: node(model.NodeActive, received(2000, 3)),
			target: model.NodeConfig{Ref: "c1", Sections: map[string]map[string]any{"zookeeper": {"tick_time": int64(2000), "autopurge_snap_retain_count": int64(3), "servers": []any{"a", "b", "c"}}}},
			want:   NodePlan{Roll: true, Restart: true, RestartRequired: true}, changes: []string{"zookeeper.servers"}},
		{name: "without option metadata every change restarts", node: node(model.NodeActive, received(2000, 1)), keys: map[string]bool{},
			want: NodePlan{Roll: true, Restart: true, RestartRequired: true}, changes: []string{"zookeeper.autopurge_snap_retain_count"}},
		{name: "restart none", node: node(model.NodeActive, received(1000, 3)), restart: RestartNone,
			want: NodePlan{Roll: true, RestartRequired: true}, changes: []string{"zookeeper.tick_time"}},
		{name: "restart all rolls unchanged nodes", node: node(model.NodeActive, received(2000, 3)), restart: RestartAll,
			want: NodePlan{Roll: true, Restart: true}},
		{name: "first configuration", node: node(model.NodeInstalled, nil, func(n *model.Node) { n.ConfigRef, n.InstalledVersion = "", "" }),
			want: NodePlan{Roll: true, First: true}},
		{name: "first configuration, restart all", node: node(model.NodeInstalled, nil), restart: RestartAll,
			want: NodePlan{Roll: true, First: true}},
		{name: "unreachable is skipped", node: node(model.NodeUnreachable, received(1000, 3)),
			want: NodePlan{Skipped: "node is UNREACHABLE", RestartRequired: true}, changes: []string{"zookeeper.tick_time"}},
		{name: "maintenance is skipped", node: node(model.NodeMaintenance, received(2000, 3)), restart: RestartAll,
			want: NodePlan{Skipped: "node is MAINTENANCE"}},
		{name: "pending restart", node: node(NodeRestartRequired, received(2000, 3)),
			want: NodePlan{Roll: true, Restart: true, RestartRequired: true}},
		{name: "pending restart, restart none", node: node(NodeRestartRequired, received(2000, 3)), restart: RestartNone,
			want: NodePlan{RestartRequired: true}},
		{name: "version change installs", node: node(model.NodeActive, received(2000, 3)), version: "3.5.9",
			want: NodePlan{Roll: true, Restart: true, RestartRequired: true, Install: "3.5.9"}},
		{name: "received but never validated", node: node(model.NodeActive, received(2000, 3), func(n *model.Node) { n.Config.Ref = "c9" }),
			want: NodePlan{Roll: true, Restart: true, RestartRequired: true, Incomplete: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tgt, version, restart, keys := tc.target, tc.version, tc.restart, tc.keys
			if tgt.Sections == nil {
				tgt = target
			}
			if version == "" {
				version = "3.4.6"
			}
			if restart == "" {
				restart = RestartChanged
			}
			if keys == nil {
				keys = restartKeys
			}
			if len(keys) == 0 {
				keys = nil
			}
			got := planNode(&tc.node, tgt, version, restart, keys)
			dec := NodePlan{Roll: got.Roll, Restart: got.Restart, RestartRequired: got.RestartRequired, Install: got.Install,
				First: got.First, Incomplete: got.Incomplete, Skipped: got.Skipped}
			if !reflect.DeepEqual(dec, tc.want) {
				t.Errorf("got %+v, want %+v", dec, tc.want)
			}
			var changed []string
			for _, ch := range got.Changes {
				changed = append(changed, ch.Key)
			}
			if !reflect.DeepEqual(changed, tc.changes) {
				t.Errorf("changes %v, want %v", changed, tc.changes)
			}
			if got.Config.Ref != tgt.Ref || got.NodeID != tc.node.ID {
				t.Errorf("plan of node %s carries config %q", got.NodeID, got.Config.Ref)
			}
		})
	}
}

func TestDiffSections(t *testing.T) {
	have := map[string]map[string]any{"a": {"x": float64(1), "y": "s", "gone": true}, "old": {"k": 1}}
	want := map[string]map[string]any{"a": {"x": int64(1), "y": "t", "new": []any{1}}, "fresh": {"k": 2}}
	got := diffSections(have, want)
	var keys []string
	for _, c := range got {
		keys = append(keys, fmt.Sprintf("%s:%v->%v", c.Key, c.From, c.To))
	}
	wantKeys := []string{"a.gone:true-><nil>", "a.new:<nil>->[1]", "a.y:s->t", "fresh.k:<nil>->2", "old.k:1-><nil>"}
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("diff:\n got %v\nwant %v", keys, wantKeys)
	}
	if d := diffSections(nil, nil); len(d) != 0 {
		t.Errorf("diff of nothing: %v", d)
	}
}

func TestConfigChangeInNormalize(t *testing.T) {
	tests := []struct {
		in          ConfigChangeIn
		field       string
		reason, rst string
	}{
		{in: ConfigChangeIn{TopologyID: "t", ComponentID: "c"}, reason: ReasonApply, rst: RestartChanged},
		{in: ConfigChangeIn{TopologyID: "t", ComponentID: "c", Reason: ReasonFlexup, Restart: RestartNone}, reason: ReasonFlexup, rst: RestartNone},
		{in: ConfigChangeIn{TopologyID: "t", ComponentID: "c", Reason: "whim"}, field: "reason"},
		{in: ConfigChangeIn{TopologyID: "t", ComponentID: "c", Restart: "sometimes"}, field: "restart"},
		{in: ConfigChangeIn{TopologyID: "t"}, field: "component_id"},
	}
	for _, tc := range tests {
		in := tc.in
		err := in.Normalize()
		switch {
		case tc.field != "":
			if !errs.Is(err, errs.Invalid) || errs.FieldOf(err) != tc.field {
				t.Errorf("%+v: %v, want an Invalid error on %s", tc.in, err, tc.field)
			}
		case err != nil || in.Reason != tc.reason || in.Restart != tc.rst:
			t.Errorf("%+v: %v, reason %q restart %q", tc.in, err, in.Reason, in.Restart)
		}
	}
}

func TestRollSteps(t *testing.T) {
	tests := []struct {
		nr   nodeRoll
		want string
	}{
		{nodeRoll{}, "[pre_configure configure validate]"},
		{nodeRoll{Restart: true}, "[pre_configure configure restart validate]"},
		{nodeRoll{Install: "3.5.9", Restart: true}, "[install pre_configure configure restart validate]"},
	}
	for _, tc := range tests {
		if got := fmt.Sprint(rollSteps(&tc.nr)); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.nr, got, tc.want)
		}
	}
}
