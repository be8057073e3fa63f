package gitrepo

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "sitepp", name+".pp")
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from %s:\n--- got\n%s\n--- want\n%s", name, p, got, want)
	}
}

// TestSitePPFromTheRepos renders what a node receives end to end: the effective
// configuration (with a user override) layered with pre-config's parameters.
func TestSitePPFromTheRepos(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepos(t)
	const b = "test-1@phx01"
	if _, err := r.CreateBranch(ctx, b); err != nil {
		t.Fatal(err)
	}
	user := userJSON(`{"section":"kafka","options":[{"key":"num_partitions","value":8},{"key":"heap_opts","value":"-Xmx2G \"big\" $HEAP"}]}`)
	if _, err := r.WriteFile(ctx, b, "app/kafka/2.8.1/user.json", user, "tune", Author{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	zk := zkComponent(3)
	kafka := ComponentInfo{ID: "c-kfk", Name: "kfk", Type: "kafka", Version: "2.8.1", Nodes: []NodeInfo{
		{ID: "k1", Name: "kfk-1", Role: "kafka", Index: 1, IPs: []string{"10.0.1.1"}},
		{ID: "k2", Name: "kfk-2", Role: "kafka", Index: 2, IPs: []string{"10.0.1.2"}},
	}}
	storm := ComponentInfo{ID: "c-strm", Name: "strm", Type: "storm", Version: "0.10", Nodes: []NodeInfo{
		{ID: "s1", Name: "strm-1", Role: "nimbus", Index: 1, IPs: []string{"10.0.2.1"}},
		{ID: "s2", Name: "strm-2", Role: "supervisor", Index: 2, IPs: []string{"10.0.2.2"}},
	}}
	cases := []struct {
		name   string
		comp   ComponentInfo
		deps   []ComponentInfo
		nodeID string
		role   string
	}{
		{"zookeeper-3.4.6-node2", zk, nil, "zk2", "zookeeper"},
		{"kafka-2.8.1-node1", kafka, []ComponentInfo{zk}, "k1", "kafka"},
		{"storm-0.10-nimbus", storm, []ComponentInfo{zk}, "s1", "nimbus"},
		{"storm-0.10-supervisor", storm, []ComponentInfo{zk}, "s2", "supervisor"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			base, err := r.EffectiveSectionsFor(ctx, b, tt.comp.Type, tt.comp.Version, tt.role)
			if err != nil {
				t.Fatal(err)
			}
			out, err := r.PreConfig(ctx, tt.comp.Type, tt.comp.Version, PreConfigInput{Topology: topo, Component: tt.comp, Dependencies: tt.deps})
			if err != nil {
				t.Fatal(err)
			}
			sections := out.ForNode(base, tt.nodeID)
			got := RenderSitePP(tt.role, sections)
			golden(t, tt.name, got)

			// Sections travel as JSON in commands; the rendering must not change.
			var round map[string]map[string]any
			b, _ := json.Marshal(sections)
			if err := json.Unmarshal(b, &round); err != nil {
				t.Fatal(err)
			}
			if again := RenderSitePP(tt.role, round); again != got {
				t.Errorf("site.pp changed after a JSON round trip:\n%s", again)
			}
		})
	}
}

func TestSitePPValues(t *testing.T) {
	sections := map[string]map[string]any{
		"zeta": {},
		"alpha::beta": {
			"str":    `say "hi" to $USER \ now`,
			"multi":  "a\nb\tc",
			"int":    int64(-3),
			"plain":  7,
			"float":  0.75,
			"whole":  float64(2181),
			"yes":    true,
			"no":     false,
			"none":   nil,
			"list":   []any{"a", int64(1), 1.5, false},
			"strs":   []string{"x", "y"},
			"ints":   []int{6700, 6701},
			"empty":  []any{},
			"hash":   map[string]any{"b": "2", "a": map[string]any{"n": int64(1)}},
			"emptyh": map[string]any{},
		},
	}
	got := RenderSitePP("test", sections)
	for range 5 { // map order must not leak into the output
		if again := RenderSitePP("test", sections); again != got {
			t.Fatal("RenderSitePP is not deterministic")
		}
	}
	golden(t, "values", got)
}
