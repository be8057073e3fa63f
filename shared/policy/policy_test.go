package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		field      string // "" = valid
	}{
		{"health defaults", `{"type":"straas.policy.health","version":"1.0"}`, ""},
		{"health full", `{"type":"straas.policy.health","version":"1.0","properties":{"detection":{"modes":["heartbeat"],"interval":1,"count":3},"recovery":{"actions":["replace"],"grace_period":1}}}`, ""},
		{"no type", `{"version":"1.0"}`, "spec.type"},
		{"unknown type", `{"type":"senlin.policy.lb","version":"1.0"}`, "spec.type"},
		{"unknown version", `{"type":"straas.policy.health","version":"9.9"}`, "spec.version"},
		{"unknown top field", `{"type":"straas.policy.health","version":"1.0","propertys":{}}`, "spec"},
		{"unknown property", `{"type":"straas.policy.health","version":"1.0","properties":{"detection":{"intervall":3}}}`, "spec.properties.intervall"},
		{"bad mode", `{"type":"straas.policy.health","version":"1.0","properties":{"detection":{"modes":["ping"]}}}`, "spec.properties.detection.modes[0]"},
		{"steps out of order", `{"type":"straas.policy.health","version":"1.0","properties":{"recovery":{"actions":["replace","restart"]}}}`, "spec.properties.recovery.actions[1]"},
		{"restart cannot wait", `{"type":"straas.policy.health","version":"1.0","properties":{"recovery":{"window_steps":["restart"]}}}`, "spec.properties.recovery.window_steps[0]"},
		{"scaling ok", `{"type":"straas.policy.scaling","version":"1.0","properties":{"min_size":1,"max_size":5,"triggers":[{"metric":"cpu","threshold":80,"action":"scale_out"}]}}`, ""},
		{"scaling max below min", `{"type":"straas.policy.scaling","version":"1.0","properties":{"min_size":4,"max_size":3}}`, "spec.properties.max_size"},
		{"scaling bad adjustment", `{"type":"straas.policy.scaling","version":"1.0","properties":{"min_size":1,"max_size":3,"scale_out":{"type":"DOUBLE"}}}`, "spec.properties.scale_out.type"},
		{"scaling bad trigger", `{"type":"straas.policy.scaling","version":"1.0","properties":{"min_size":1,"max_size":3,"triggers":[{"metric":"cpu","threshold":1,"action":"grow"}]}}`, "spec.properties.triggers[0].action"},
		{"deletion bad criteria", `{"type":"straas.policy.deletion","version":"1.0","properties":{"criteria":"LARGEST_FIRST"}}`, "spec.properties.criteria"},
		{"placement min without enabled", `{"type":"straas.policy.placement","version":"1.0","properties":{"fault_domain":{"min_domains":2}}}`, "spec.properties.fault_domain.min_domains"},
		{"not json", `{"type":`, "spec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSpec("spec", []byte(tc.spec))
			if tc.field == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if !errs.Is(err, errs.Invalid) || errs.FieldOf(err) != tc.field {
				t.Fatalf("got %v (field %q), want Invalid on %q", err, errs.FieldOf(err), tc.field)
			}
		})
	}
}

func TestTypesDocumentEveryType(t *testing.T) {
	docs := Types()
	var names []string
	for _, d := range docs {
		names = append(names, d.Name)
		if d.Summary == "" || d.Doc == "" || len(d.Properties) == 0 {
			t.Errorf("%s is not documented", d.Name)
		}
		b, _ := json.Marshal(d.Example)
		if _, err := ParseSpec("example", b); err != nil {
			t.Errorf("%s: its example does not validate: %v", d.Name, err)
		}
	}
	want := []string{"straas.policy.deletion-1.0", "straas.policy.health-1.0", "straas.policy.placement-1.0", "straas.policy.scaling-1.0"}
	if !slices.Equal(names, want) {
		t.Fatalf("types %v, want %v", names, want)
	}
	if d, ok := LookupType(TypeHealth); !ok || d.Version != "1.0" {
		t.Errorf("LookupType(%s) = %+v, %v", TypeHealth, d, ok)
	}
}

func health(t *testing.T, props string) *HealthSpec {
	t.Helper()
	p, err := ParseSpec("spec", []byte(`{"type":"straas.policy.health","version":"1.0","properties":`+props+`}`))
	if err != nil {
		t.Fatal(err)
	}
	return p.Health()
}

func TestHealthDetect(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	h := health(t, `{"detection":{"interval":10,"count":3}}`)
	for _, tc := range []struct {
		name  string
		o     Observation
		floor time.Duration
		mode  string // "" = healthy
	}{
		{"fresh", Observation{Status: model.NodeActive, LastSeen: now.Add(-5 * time.Second), Services: map[string]string{"zk": "running"}}, 0, ""},
		{"silent", Observation{Status: model.NodeActive, LastSeen: now.Add(-31 * time.Second)}, 0, DetectHeartbeat},
		{"silent under the floor", Observation{Status: model.NodeActive, LastSeen: now.Add(-31 * time.Second)}, time.Minute, ""},
		{"unreachable", Observation{Status: model.NodeUnreachable, LastSeen: now.Add(-40 * time.Second)}, 0, DetectHeartbeat},
		{"service failed", Observation{Status: model.NodeActive, LastSeen: now, Services: map[string]string{"zk": "failed"}}, 0, DetectService},
		{"service stopped in maintenance", Observation{Status: model.NodeMaintenance, LastSeen: now, Services: map[string]string{"zk": "stopped"}}, 0, ""},
		{"host down wins", Observation{Status: model.NodeActive, LastSeen: now.Add(-time.Hour), HostDown: true}, 0, DetectHost},
		{"failed node", Observation{Status: model.NodeFailed, LastSeen: now, Error: "validate: exit 1"}, 0, DetectStatus},
		{"being created", Observation{Status: model.NodeInstalled, LastSeen: now.Add(-time.Hour)}, 0, ""},
		{"being deleted", Observation{Status: model.NodeDeleting, LastSeen: now.Add(-time.Hour)}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, bad := h.Detect(now, tc.o, tc.floor)
			if tc.mode == "" && bad {
				t.Fatalf("got failure %+v, want healthy", f)
			}
			if tc.mode != "" && (!bad || f.Mode != tc.mode) {
				t.Fatalf("got %+v %v, want mode %s", f, bad, tc.mode)
			}
		})
	}
	only := health(t, `{"detection":{"modes":["service_status"],"services":["kafka"]}}`)
	if _, bad := only.Detect(now, Observation{Status: model.NodeActive, LastSeen: now.Add(-time.Hour), Services: map[string]string{"other": "failed", "kafka": "running"}}, 0); bad {
		t.Error("a policy watching only kafka's service flagged silence or another service")
	}
}

func TestHealthSteps(t *testing.T) {
	h := health(t, `{}`)
	for _, tc := range []struct {
		mode string
		want []string
	}{
		{DetectService, []string{StepRestart, StepReboot, StepReplace}},
		{DetectHeartbeat, []string{StepReboot, StepReplace}},
		{DetectHost, []string{StepReplace}},
	} {
		if got := h.Steps(Failure{Mode: tc.mode}); !slices.Equal(got, tc.want) {
			t.Errorf("steps for %s = %v, want %v", tc.mode, got, tc.want)
		}
	}
	restartOnly := health(t, `{"recovery":{"actions":["restart"]}}`)
	if got := restartOnly.Steps(Failure{Mode: DetectHost}); len(got) != 0 {
		t.Errorf("restart-only policy on a down host: %v, want no step", got)
	}
	if MaxConcurrent(true, 5) != 1 || MaxConcurrent(false, 3) != 3 || MaxConcurrent(false, 0) != 1 {
		t.Error("MaxConcurrent: quorum components recover one node at a time")
	}
}

func scaling(t *testing.T, props string) *ScalingSpec {
	t.Helper()
	p, err := ParseSpec("spec", []byte(`{"type":"straas.policy.scaling","version":"1.0","properties":`+props+`}`))
	if err != nil {
		t.Fatal(err)
	}
	return p.Scaling()
}

func TestScalingDecide(t *testing.T) {
	for _, tc := range []struct {
		name     string
		props    string
		dir      string
		current  int
		count    int
		target   int
		conflict bool
	}{
		{"change in capacity", `{"min_size":1,"max_size":10,"scale_out":{"number":2}}`, ScaleOut, 3, 0, 5, false},
		{"receiver count overrides", `{"min_size":1,"max_size":10}`, ScaleOut, 3, 4, 7, false},
		{"clipped at max", `{"min_size":1,"max_size":4,"scale_out":{"number":3}}`, ScaleOut, 3, 0, 4, false},
		{"refused at max", `{"min_size":1,"max_size":3}`, ScaleOut, 3, 0, 0, true},
		{"refused without best effort", `{"min_size":1,"max_size":4,"scale_out":{"number":3,"best_effort":false}}`, ScaleOut, 3, 0, 0, true},
		{"exact capacity out", `{"min_size":1,"max_size":10,"scale_out":{"type":"EXACT_CAPACITY","number":6}}`, ScaleOut, 3, 0, 6, false},
		{"exact capacity already there", `{"min_size":1,"max_size":10,"scale_out":{"type":"EXACT_CAPACITY","number":3}}`, ScaleOut, 3, 0, 0, true},
		{"percentage with min step", `{"min_size":1,"max_size":100,"scale_out":{"type":"CHANGE_IN_PERCENTAGE","number":10,"min_step":2}}`, ScaleOut, 5, 0, 7, false},
		{"percentage", `{"min_size":1,"max_size":100,"scale_out":{"type":"CHANGE_IN_PERCENTAGE","number":50}}`, ScaleOut, 10, 0, 15, false},
		{"scale in", `{"min_size":2,"max_size":10}`, ScaleIn, 5, 0, 4, false},
		{"scale in clipped at min", `{"min_size":2,"max_size":10,"scale_in":{"number":5}}`, ScaleIn, 4, 0, 2, false},
		{"scale in refused at min", `{"min_size":2,"max_size":10}`, ScaleIn, 2, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := scaling(t, tc.props)
			d, err := s.Decide(tc.dir, tc.current, tc.count, 1)
			if tc.conflict {
				if !errs.Is(err, errs.Conflict) {
					t.Fatalf("got %+v, %v; want a conflict", d, err)
				}
				return
			}
			if err != nil || d.Target != tc.target {
				t.Fatalf("got target %d (%v), want %d", d.Target, err, tc.target)
			}
		})
	}
	// No policy: a receiver may scale out by one, scale in down to the type's minimum.
	var none *ScalingSpec
	if d, err := none.Decide(ScaleOut, 3, 0, 1); err != nil || d.Target != 4 {
		t.Errorf("no policy: scale out got %+v %v", d, err)
	}
	if _, err := none.Decide(ScaleIn, 3, 0, 3); !errs.Is(err, errs.Conflict) {
		t.Errorf("no policy: scale in below the type's minimum: %v", err)
	}
}

func TestScalingCooldown(t *testing.T) {
	s := scaling(t, `{"min_size":1,"max_size":3,"cooldown":60}`)
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	last := now.Add(-30 * time.Second)
	if until, in := s.InCooldown(now, &last); !in || !until.Equal(now.Add(30*time.Second)) {
		t.Errorf("30 s after a scaling: cooldown %v until %s", in, until)
	}
	old := now.Add(-61 * time.Second)
	if _, in := s.InCooldown(now, &old); in {
		t.Error("61 s after a scaling: still in cooldown")
	}
	if _, in := s.InCooldown(now, nil); in {
		t.Error("never scaled: in cooldown")
	}
}

func TestScalingEvaluate(t *testing.T) {
	s := scaling(t, `{"min_size":1,"max_size":9,"triggers":[{"metric":"cpu","threshold":80,"intervals":3,"action":"scale_out"},{"metric":"cpu","comparison":"lt","threshold":20,"intervals":2,"action":"scale_in"}]}`)
	var prev map[string]int
	steps := []struct {
		cpu  []float64
		load string
		fire string
	}{
		{[]float64{90, 85}, LoadNormal, ""},
		{[]float64{90, 95}, LoadNormal, ""},
		{[]float64{99, 81}, LoadOverload, ScaleOut},
		{[]float64{50, 60}, LoadNormal, ""}, // the streak breaks
		{[]float64{10, 12}, LoadNormal, ""},
		{[]float64{10, 12}, LoadUnderload, ScaleIn},
		{nil, LoadUnderload, ""}, // no data keeps the state but fires nothing
	}
	for i, st := range steps {
		ev := s.Evaluate(prev, map[string][]float64{"cpu": st.cpu})
		fire := ""
		if ev.Fire != nil {
			fire = ev.Fire.Action
		}
		if ev.Load != st.load || fire != st.fire {
			t.Fatalf("interval %d (cpu %v): load %s fire %q, want %s %q (breaches %v)", i, st.cpu, ev.Load, fire, st.load, st.fire, ev.Breaches)
		}
		prev = ev.Breaches
	}
	tr := Trigger{Metric: "cpu", Statistic: "max", Comparison: "ge", Threshold: 5, Intervals: 1, Action: ScaleOut}
	if v, _ := tr.Value([]float64{1, 7, 3}); v != 7 || !tr.Holds(7) || tr.Holds(4) {
		t.Errorf("max statistic: %v", v)
	}
	if !strings.Contains(s.Triggers[0].Describe(), "avg cpu > 80 for 3 intervals") {
		t.Errorf("describe: %s", s.Triggers[0].Describe())
	}
}

func TestSelectVictims(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	cands := []Candidate{
		{ID: "a", Role: "r", CreatedAt: t0, Healthy: true, FaultDomain: "rack1"},
		{ID: "b", Role: "r", CreatedAt: t0.Add(time.Hour), Healthy: true, FaultDomain: "rack1"},
		{ID: "c", Role: "r", CreatedAt: t0.Add(2 * time.Hour), Healthy: true, FaultDomain: "rack2"},
		{ID: "d", Role: "r", CreatedAt: t0.Add(3 * time.Hour), Healthy: false, FaultDomain: "rack3"},
		{ID: "e", Role: "other", CreatedAt: t0.Add(4 * time.Hour), Healthy: true},
	}
	del := func(c string) *DeletionSpec { return &DeletionSpec{Criteria: c} }
	for _, tc := range []struct {
		name string
		spec *DeletionSpec
		role string
		n    int
		want []string
	}{
		{"unhealthy first then crowded rack, oldest", del(OldestFirst), "r", 2, []string{"d", "a"}},
		{"youngest within the crowded rack", del(YoungestFirst), "r", 2, []string{"d", "b"}},
		{"all of a role", del(OldestFirst), "r", 9, []string{"d", "a", "b", "c"}},
		{"any role", del(YoungestFirst), "", 2, []string{"d", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.spec.SelectVictims(cands, tc.role, tc.n, func(int) int { return 0 })
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	// RANDOM uses the random source: different sources, different picks among equals.
	plain := []Candidate{{ID: "x", Healthy: true}, {ID: "y", Healthy: true}, {ID: "z", Healthy: true}}
	seen := map[string]bool{}
	for k := 0; k < 3; k++ {
		got := del(Random).SelectVictims(plain, "", 1, func(n int) int { return k % n })
		seen[got[0]] = true
	}
	if len(seen) < 2 {
		t.Errorf("RANDOM always picked %v", seen)
	}
}

func TestSpreadAndPlacement(t *testing.T) {
	s := SpreadOf([]string{"r1", "r2", "r1", ""}, 3)
	if s.Distinct() != 2 || s.OK() || s.Unknown != 1 {
		t.Errorf("spread %+v", s)
	}
	if !SpreadOf([]string{"r1", "r2", "r3"}, 3).OK() {
		t.Error("three racks for min 3 is not OK")
	}
	if got := PreferredDomain([]string{"r1", "r2", "r3"}, map[string]int{"r1": 2, "r2": 1, "r3": 1}); got != "r2" {
		t.Errorf("preferred domain %s, want r2", got)
	}
	p := &PlacementSpec{FaultDomain: FaultDomainSpec{Enabled: true, MinDomains: 3}}
	c := &model.Component{}
	if !p.Apply(c) || !c.EnableFaultDomain || c.MinNumOfFaultDomain != 3 || p.Apply(c) {
		t.Errorf("apply placement: %+v", c)
	}
}

func TestResolve(t *testing.T) {
	ls := func(own Settings, prop ...string) *LevelState { return &LevelState{Own: own, Propagated: prop} }
	for _, tc := range []struct {
		name      string
		topo, c   *LevelState
		node      *LevelState
		wantLevel string // which level is resolved: node unless c or node nil
		want      Settings
	}{
		{"defaults", nil, nil, nil, "topology", Defaults},
		{"topology own", ls(Settings{Autohealing: Off}), nil, nil, "topology", Settings{Autoscaling: On, Autohealing: Off, Maintenance: Off}},
		{"topology not propagated stays there", ls(Settings{Autohealing: Off}), ls(Settings{}), nil, "component", Defaults},
		{"topology propagated reaches components", ls(Settings{Autohealing: Off}, FieldAutohealing), ls(Settings{}), nil, "component", Settings{Autoscaling: On, Autohealing: Off, Maintenance: Off}},
		{"topology propagated reaches nodes", ls(Settings{Autoscaling: Off}, FieldAutoscaling), ls(Settings{}), ls(Settings{}), "node", Settings{Autoscaling: Off, Autohealing: On, Maintenance: Off}},
		{"component applies to its nodes", nil, ls(Settings{Maintenance: MaintRestart}), ls(Settings{}), "node", Settings{Autoscaling: On, Autohealing: On, Maintenance: MaintRestart}},
		{"node overrides component", nil, ls(Settings{Autohealing: Off}), ls(Settings{Autohealing: On}), "node", Defaults},
		{"component overrides propagated topology", ls(Settings{Autohealing: Off}, FieldAutohealing), ls(Settings{Autohealing: On}), ls(Settings{}), "node", Defaults},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got Settings
			switch tc.wantLevel {
			case "topology":
				got = Resolve(tc.topo, nil, nil)
			case "component":
				got = Resolve(tc.topo, tc.c, nil)
			default:
				got = Resolve(tc.topo, tc.c, tc.node)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestLevelStateApply(t *testing.T) {
	var l LevelState
	if ch := l.Apply(Command{Settings: Settings{Autohealing: Off}}); !slices.Equal(ch, []string{FieldAutohealing}) {
		t.Fatalf("changed %v", ch)
	}
	if ch := l.Apply(Command{Settings: Settings{Autohealing: Off}}); len(ch) != 0 {
		t.Fatalf("the same command again changed %v", ch)
	}
	if ch := l.Apply(Command{Settings: Settings{Autohealing: Off}, Propagate: true}); !slices.Equal(ch, []string{FieldAutohealing}) || !l.propagates(FieldAutohealing) {
		t.Fatalf("propagating changed %v, state %+v", ch, l)
	}
	if !l.Clear([]string{FieldAutohealing}) || l.Own.Autohealing != "" || l.propagates(FieldAutohealing) {
		t.Fatalf("clear: %+v", l)
	}
	if err := (Settings{Maintenance: "reboot"}).Validate(""); !errs.Is(err, errs.Invalid) || errs.FieldOf(err) != "maintenance" {
		t.Errorf("maintenance reboot: %v", err)
	}
	if err := (Settings{Autoscaling: "yes"}).Validate("x."); errs.FieldOf(err) != "x.autoscaling" {
		t.Errorf("autoscaling yes: %v", err)
	}
	if ok, why := HealingAllowed(Settings{Autohealing: On, Maintenance: MaintRestart}, false); ok || why == "" {
		t.Error("healing allowed during maintenance restart")
	}
	if ok, _ := HealingAllowed(Defaults, true); ok {
		t.Error("healing allowed on a node with the maintenance flag")
	}
	if ok, _ := HealingAllowed(Defaults, false); !ok {
		t.Error("healing refused by default")
	}
}

func TestWindows(t *testing.T) {
	paris, _ := time.LoadLocation("Europe/Paris")
	sat2 := []Window{{Cron: "0 2 * * SAT", Duration: "4h", TimeZone: "Europe/Paris"}}
	for _, tc := range []struct {
		name  string
		ws    []Window
		now   time.Time
		open  bool
		opens time.Time
	}{
		{"no windows: always", nil, time.Date(2024, 6, 5, 12, 0, 0, 0, time.UTC), true, time.Date(2024, 6, 5, 12, 0, 0, 0, time.UTC)},
		{"before: next saturday 02:00 Paris", sat2, time.Date(2024, 6, 5, 12, 0, 0, 0, paris), false, time.Date(2024, 6, 8, 2, 0, 0, 0, paris)},
		{"inside", sat2, time.Date(2024, 6, 8, 3, 30, 0, 0, paris), true, time.Date(2024, 6, 8, 3, 30, 0, 0, paris)},
		{"just closed", sat2, time.Date(2024, 6, 8, 6, 0, 0, 0, paris), false, time.Date(2024, 6, 15, 2, 0, 0, 0, paris)},
		{"earliest of two", append([]Window{{Cron: "30 23 * * *", Duration: "30m"}}, sat2...), time.Date(2024, 6, 5, 12, 0, 0, 0, time.UTC), false, time.Date(2024, 6, 5, 23, 30, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := NextOpening(tc.ws, tc.now)
			if o.Open != tc.open || !o.Opens.Equal(tc.opens) {
				t.Fatalf("got open %v at %s, want %v at %s", o.Open, o.Opens, tc.open, tc.opens)
			}
		})
	}
	if o := NextOpening(sat2, time.Date(2024, 6, 5, 12, 0, 0, 0, paris)); !strings.Contains(o.Describe(), "opens at 2024-06-08T02:00:00+02:00") {
		t.Errorf("describe: %s", o.Describe())
	}
	for _, tc := range []struct {
		ws    []Window
		field string
	}{
		{[]Window{{Cron: "0 2 * *", Duration: "1h"}}, "w[0].cron"},
		{[]Window{{Cron: "0 2 * * *", Duration: "forever"}}, "w[0].duration"},
		{[]Window{{Cron: "0 2 * * *", Duration: "10s"}}, "w[0].duration"},
		{[]Window{{Cron: "0 2 * * *", Duration: "1h", TimeZone: "Mars/Olympus"}}, "w[0].time_zone"},
	} {
		if err := ValidateWindows("w", tc.ws); errs.FieldOf(err) != tc.field {
			t.Errorf("%+v: got %v, want Invalid on %s", tc.ws, err, tc.field)
		}
	}
}

func TestPlanConvergence(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	zkType := model.ComponentType{Type: "zookeeper", Roles: []string{"zookeeper"}, Quorum: true}
	kType := model.ComponentType{Type: "kafka", Roles: []string{"kafka"}}
	mk := func(comp string, n int, flavor string) []model.Node {
		var out []model.Node
		for i := 1; i <= n; i++ {
			out = append(out, model.Node{ID: comp + "-" + string(rune('0'+i)), Name: comp + string(rune('0'+i)), ComponentID: comp,
				Role: map[string]string{"zk": "zookeeper", "kafka": "kafka"}[comp], Status: model.NodeActive, Flavor: flavor,
				CreatedAt: t0.Add(time.Duration(i) * time.Hour)})
		}
		return out
	}
	observed := func() []Observed {
		return []Observed{
			{Component: model.Component{ID: "zk", Name: "zk", Type: "zookeeper", Version: "3.4.6", Size: 3, Flavor: "small", DependsOn: []string{}}, Type: zkType, Nodes: mk("zk", 3, "small")},
			{Component: model.Component{ID: "kafka", Name: "kafka", Type: "kafka", Version: "0.10.2.1", Size: 2, Flavor: "medium", DependsOn: []string{"zk"}}, Type: kType,
				Nodes: mk("kafka", 2, "medium"), Deletion: &DeletionSpec{Criteria: OldestFirst}},
		}
	}
	spec := func(zkFlavor string, kafka int, version string, extra ...model.ComponentSpec) *model.CreateTopology {
		return &model.CreateTopology{Name: "t", AvailabilityZone: "az1", Components: append([]model.ComponentSpec{
			{Name: "zk", Type: "zookeeper", Version: "3.4.6", Size: 3, Flavor: zkFlavor},
			{Name: "kafka", Type: "kafka", Version: version, Size: kafka, Flavor: "medium", DependsOn: model.StringList{"zk"}},
		}, extra...)}
	}
	for _, tc := range []struct {
		name        string
		desired     *model.CreateTopology
		changes     int
		steps       string
		unsupported int
	}{
		{"in sync", spec("small", 2, "0.10.2.1"), 0, "", 0},
		{"grow and upgrade kafka", spec("small", 3, "2.8.1"), 2, "upgrade kafka, add kafka x1", 0},
		{"shrink kafka, oldest first", spec("small", 1, "0.10.2.1"), 1, "remove kafka-1", 0},
		{"new zk flavor: replace each", spec("large", 2, "0.10.2.1"), 3, "replace zk-1, replace zk-2, replace zk-3", 0},
		{"a new component", spec("small", 2, "0.10.2.1", model.ComponentSpec{Name: "x", Type: "kafka", Version: "0.10.2.1", Size: 1}), 0, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := PlanConvergence("topo", "t", "az1", tc.desired, observed(), 1)
			var steps []string
			for _, s := range p.Steps() {
				switch s.Kind {
				case StepAdd:
					steps = append(steps, fmt.Sprintf("add %s x%d", s.Component, s.Count))
				case StepUpgrade:
					steps = append(steps, "upgrade "+s.Component)
				default:
					steps = append(steps, s.Kind+" "+s.NodeID)
				}
			}
			if p.Changes != tc.changes || strings.Join(steps, ", ") != tc.steps || len(p.Unsupported) != tc.unsupported {
				t.Fatalf("changes %d steps %q unsupported %v; want %d %q %d", p.Changes, strings.Join(steps, ", "), p.Unsupported, tc.changes, tc.steps, tc.unsupported)
			}
			// Planning twice at one revision plans the same.
			a, _ := json.Marshal(PlanConvergence("topo", "t", "az1", tc.desired, observed(), 1))
			b, _ := json.Marshal(p)
			if string(a) != string(b) {
				t.Error("two plans of the same inputs differ")
			}
		})
	}
	// Growing kafka lists what reconfigures with its membership: kafka's dependents (none)
	// and, for zookeeper (a quorum), itself.
	grow := spec("small", 2, "0.10.2.1")
	grow.Components[0].Size = 4
	p := PlanConvergence("topo", "t", "az1", grow, observed(), 1)
	if got := p.Components[0].Reconfigure; !slices.Equal(got, []string{"zk", "kafka"}) {
		t.Errorf("zk grows: reconfigure %v, want zk and its dependent kafka", got)
	}
}

func TestDrift(t *testing.T) {
	c := &model.Component{Name: "kafka", Version: "2.8.1", Size: 2, Flavor: "medium"}
	nodes := []model.Node{
		{ID: "a", Name: "k1", Role: "kafka", Status: model.NodeActive, Flavor: "medium"},
		{ID: "b", Name: "k2", Role: "kafka", Status: model.NodeUnreachable, Flavor: "small"},
		{ID: "c", Name: "k3", Role: "kafka", Status: model.NodeDeleting, Flavor: "medium"},
	}
	got := Drift(c, model.ComponentType{}, nodes, map[string]string{"a": "0.10.2.1", "b": "2.8.1"})
	want := []string{"kafka: node k1 runs 0.10.2.1, want 2.8.1", "kafka: node k2 has flavor small, want medium", "kafka: node k2 is UNREACHABLE"}
	if !slices.Equal(got, want) {
		t.Fatalf("drift %q, want %q", got, want)
	}
	if got := Drift(c, model.ComponentType{}, nodes[:1], map[string]string{"a": "2.8.1"}); !slices.Equal(got, []string{"kafka: 1 kafka node(s), want 2"}) {
		t.Fatalf("missing node: %q", got)
	}
}
