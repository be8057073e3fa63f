package gitrepo

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
)

var topo = TopologyInfo{ID: "t1", Name: "test-1", AvailabilityZone: "phx01", Tenant: "p1"}

func zkComponent(n int) ComponentInfo {
	c := ComponentInfo{ID: "c-zk", Name: "zk", Type: "zookeeper", Version: "3.4.6"}
	ips := []string{"10.0.0.11", "10.0.0.12", "10.0.0.13", "10.0.0.14", "10.0.0.15"}
	for i := n; i >= 1; i-- { // out of order on purpose: output follows the node index
		c.Nodes = append(c.Nodes, NodeInfo{ID: "zk" + fmtInt(i), Name: "zk-" + fmtInt(i), Role: "zookeeper", Index: i, IPs: []string{ips[i-1]}, Hostname: "zk-" + fmtInt(i) + ".phx01"})
	}
	return c
}

func TestPreConfig(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepos(t)
	zk3 := zkComponent(3)
	zk1 := zkComponent(1)
	zkCustom := zkComponent(3)
	zkCustom.Sections = Sections{"zookeeper": {"client_port": float64(2182), "quorum_port": int64(2889)}}
	zk359 := zkComponent(3)
	zk359.Version = "3.5.9"
	zk359.Sections = zkCustom.Sections

	kafka := ComponentInfo{ID: "c-kfk", Name: "kfk", Type: "kafka", Version: "2.8.1", Nodes: []NodeInfo{
		{ID: "k1", Name: "kfk-1", Role: "kafka", Index: 1, IPs: []string{"10.0.1.1", "192.168.0.1"}},
		{ID: "k2", Name: "kfk-2", Role: "kafka", Index: 2, IPs: []string{"10.0.1.2"}},
		{ID: "k4", Name: "kfk-4", Role: "kafka", Index: 4, IPs: []string{"10.0.1.4"}}, // index 3 was removed
	}}
	kafka08 := kafka
	kafka08.Version = "0.8.2.2"

	// The seed's example: storm 0.10, one nimbus and two supervisors, on zookeeper 3.4.6.
	storm := ComponentInfo{ID: "c-strm", Name: "strm", Type: "storm", Version: "0.10", Nodes: []NodeInfo{
		{ID: "s2", Name: "strm-supervsr-2", Role: "supervisor", Index: 2, IPs: []string{"10.0.2.2"}},
		{ID: "s1", Name: "strm-nmbus-1", Role: "nimbus", Index: 1, IPs: []string{"10.0.2.1"}},
		{ID: "s3", Name: "strm-supervsr-3", Role: "supervisor", Index: 3, IPs: []string{"10.0.2.3"}},
	}}
	storm123 := storm
	storm123.Version = "1.2.3"
	storm123.Nodes = append(append([]NodeInfo(nil), storm.Nodes...), NodeInfo{ID: "s4", Name: "strm-nmbus-4", Role: "nimbus", Index: 4, IPs: []string{"10.0.2.4"}})

	zkOp := func(args string) []Operation {
		return []Operation{{Name: "create_namespace", Command: "zk-cmd/create_namespace", Args: args,
			Component: "zk", ComponentID: "c-zk", Role: "zookeeper", NodeID: "zk1", NodeName: "zk-1"}}
	}
	tests := []struct {
		name string
		in   PreConfigInput
		want PreConfigOutput
	}{
		{
			name: "zookeeper 3.4.6, three servers",
			in:   PreConfigInput{Topology: topo, Component: zk3},
			want: PreConfigOutput{
				File: "pre_config/zookeeper/pre_config.json",
				Component: Sections{"zookeeper": {"servers": []any{
					"server.1=10.0.0.11:2888:3888", "server.2=10.0.0.12:2888:3888", "server.3=10.0.0.13:2888:3888"}}},
				Nodes: map[string]Sections{
					"zk1": {"zookeeper": {"myid": int64(1)}},
					"zk2": {"zookeeper": {"myid": int64(2)}},
					"zk3": {"zookeeper": {"myid": int64(3)}},
				},
			},
		},
		{
			name: "zookeeper 3.5.9 with the user's quorum port",
			in:   PreConfigInput{Topology: topo, Component: zk359},
			want: PreConfigOutput{
				File: "pre_config/zookeeper/pre_config.json",
				Component: Sections{"zookeeper": {"servers": []any{
					"server.1=10.0.0.11:2889:3888", "server.2=10.0.0.12:2889:3888", "server.3=10.0.0.13:2889:3888"}}},
				Nodes: map[string]Sections{
					"zk1": {"zookeeper": {"myid": int64(1)}},
					"zk2": {"zookeeper": {"myid": int64(2)}},
					"zk3": {"zookeeper": {"myid": int64(3)}},
				},
			},
		},
		{
			name: "kafka 2.8.1 on three zookeepers with client port 2182",
			in:   PreConfigInput{Topology: topo, Component: kafka, Dependencies: []ComponentInfo{zkCustom}},
			want: PreConfigOutput{
				File: "pre_config/kafka/pre_config.json",
				Component: Sections{"kafka": {
					"zk_list":   "10.0.0.11:2182,10.0.0.12:2182,10.0.0.13:2182/test-1-kfk",
					"zk_chroot": "/test-1-kfk",
				}},
				Nodes: map[string]Sections{
					"k1": {"kafka": {"broker_id": int64(1), "advertised_host": "10.0.1.1"}},
					"k2": {"kafka": {"broker_id": int64(2), "advertised_host": "10.0.1.2"}},
					"k4": {"kafka": {"broker_id": int64(4), "advertised_host": "10.0.1.4"}},
				},
				Operations: zkOp("/test-1-kfk"),
			},
		},
		{
			name: "kafka 0.8.2.2 on one zookeeper with defaults",
			in:   PreConfigInput{Topology: topo, Component: kafka08, Dependencies: []ComponentInfo{zk1}},
			want: PreConfigOutput{
				File:      "pre_config/kafka/pre_config.json",
				Component: Sections{"kafka": {"zk_list": "10.0.0.11:2181/test-1-kfk", "zk_chroot": "/test-1-kfk"}},
				Nodes: map[string]Sections{
					"k1": {"kafka": {"broker_id": int64(1), "advertised_host": "10.0.1.1"}},
					"k2": {"kafka": {"broker_id": int64(2), "advertised_host": "10.0.1.2"}},
					"k4": {"kafka": {"broker_id": int64(4), "advertised_host": "10.0.1.4"}},
				},
				Operations: zkOp("/test-1-kfk"),
			},
		},
		{
			name: "storm 0.10: the seed's nimbus and two supervisors",
			in:   PreConfigInput{Topology: topo, Component: storm, Dependencies: []ComponentInfo{zk1}},
			want: PreConfigOutput{
				File: "pre_config/storm/pre_config.json",
				Component: Sections{"storm": {
					"zk_servers":   []any{"10.0.0.11"},
					"zk_port":      int64(2181),
					"zk_root":      "/test-1-strm",
					"nimbus_seeds": []any{"10.0.2.1"},
					"nimbus_host":  "10.0.2.1",
				}},
				Nodes: map[string]Sections{
					"s1": {"storm": {"local_hostname": "10.0.2.1"}},
					"s2": {"storm": {"local_hostname": "10.0.2.2"}},
					"s3": {"storm": {"local_hostname": "10.0.2.3"}},
				},
				Operations: zkOp("/test-1-strm"),
			},
		},
		{
			name: "storm 1.2.3 with two nimbus seeds",
			in:   PreConfigInput{Topology: topo, Component: storm123, Dependencies: []ComponentInfo{zk3}},
			want: PreConfigOutput{
				File: "pre_config/storm/pre_config.json",
				Component: Sections{"storm": {
					"zk_servers":   []any{"10.0.0.11", "10.0.0.12", "10.0.0.13"},
					"zk_port":      int64(2181),
					"zk_root":      "/test-1-strm",
					"nimbus_seeds": []any{"10.0.2.1", "10.0.2.4"},
					"nimbus_host":  "10.0.2.1",
				}},
				Nodes: map[string]Sections{
					"s1": {"storm": {"local_hostname": "10.0.2.1"}},
					"s2": {"storm": {"local_hostname": "10.0.2.2"}},
					"s3": {"storm": {"local_hostname": "10.0.2.3"}},
					"s4": {"storm": {"local_hostname": "10.0.2.4"}},
				},
				Operations: zkOp("/test-1-strm"),
			},
		},
	}
	scripts, _ := r.ScriptsRef(ctx)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.in.Component
			got, err := r.PreConfig(ctx, c.Type, c.Version, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.ScriptsRef = scripts
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PreConfig\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestPreConfigErrors(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepos(t)
	kafka := ComponentInfo{ID: "c-kfk", Name: "kfk", Type: "kafka", Version: "2.8.1", Nodes: []NodeInfo{{ID: "k1", Name: "kfk-1", Role: "kafka", Index: 1, IPs: []string{"10.0.1.1"}}}}
	noIP := zkComponent(2)
	noIP.Nodes[0].IPs = nil // zk-2
	zkA, zkB := zkComponent(1), zkComponent(1)
	zkB.Name = "zk-b"
	tests := []struct {
		name         string
		typ, version string
		in           PreConfigInput
		kind         errs.Kind
		mentions     []string
	}{
		{"kafka without zookeeper", "kafka", "2.8.1", PreConfigInput{Topology: topo, Component: kafka},
			errs.Invalid, []string{"pre_config/kafka/pre_config.json", "component[0] (kafka.zk_list)", `depends on no component named or of type "zookeeper"`}},
		{"two zookeepers", "kafka", "2.8.1", PreConfigInput{Topology: topo, Component: kafka, Dependencies: []ComponentInfo{zkA, zkB}},
			errs.Invalid, []string{`depends on 2 components of type "zookeeper": name one`}},
		{"node without an address", "zookeeper", "3.4.6", PreConfigInput{Topology: topo, Component: noIP},
			errs.Invalid, []string{"pre_config/zookeeper/pre_config.json", "zookeeper.servers", "zookeeper node zk-2 has no IP address yet"}},
		{"unknown version", "kafka", "9.9", PreConfigInput{Topology: topo}, errs.Invalid, []string{"9.9"}},
		{"component of another type", "zookeeper", "3.4.6", PreConfigInput{Topology: topo, Component: kafka}, errs.Invalid, []string{"given a kafka 2.8.1 component"}},
		{"unknown type", "redis", "7.2", PreConfigInput{Topology: topo}, errs.NotFound, []string{`"redis"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.PreConfig(ctx, tt.typ, tt.version, tt.in)
			if !errs.Is(err, tt.kind) {
				t.Fatalf("got %v (kind %v), want %v", err, errs.KindOf(err), tt.kind)
			}
			for _, m := range tt.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}

	// A broken template committed to the script repo is reported with its file.
	bad := []Change{{Path: "pre_config/kafka/2.8.1/pre_config.json", Content: []byte(`{"component":[{"section":"kafka","key":"x","type":"int","template":"{{ .Node.Index "}]}`)}}
	if _, err := r.Scripts.Commit(ctx, Master, bad, "broken template", Author{Name: "root"}); err != nil {
		t.Fatal(err)
	}
	_, err := r.PreConfig(ctx, "kafka", "2.8.1", PreConfigInput{Topology: topo, Component: kafka, Dependencies: []ComponentInfo{zkA}})
	if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "pre_config/kafka/2.8.1/pre_config.json") || errs.FieldOf(err) != "component[0]" {
		t.Errorf("broken template: %v (field %q)", err, errs.FieldOf(err))
	}
	if err := r.Verify(ctx); err == nil || !strings.Contains(err.Error(), "pre_config/kafka/2.8.1/pre_config.json") {
		t.Errorf("Verify missed the broken template: %v", err)
	}
	// Other versions still use the type's file.
	if _, err := r.PreConfig(ctx, "kafka", "0.10.2.1", PreConfigInput{Topology: topo, Component: ComponentInfo{Type: "kafka", Version: "0.10.2.1", Name: "k"}, Dependencies: []ComponentInfo{zkA}}); err != nil {
		t.Errorf("kafka 0.10.2.1 after breaking 2.8.1: %v", err)
	}
}

func TestDrainOperation(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepos(t)
	in := PreConfigInput{Topology: topo, Component: ComponentInfo{ID: "c-kfk", Name: "kfk", Type: "kafka", Version: "2.8.1"}}
	node := NodeInfo{ID: "k3", Name: "kfk-3", Role: "kafka", Index: 3}
	op, ok, err := r.DrainOperation(ctx, in, node)
	want := Operation{Name: "drain", Command: "kafka-cmd/reassign_partitions", Args: "3", Component: "kfk", ComponentID: "c-kfk", Role: "kafka", NodeID: "k3", NodeName: "kfk-3"}
	if err != nil || !ok || op != want {
		t.Errorf("DrainOperation = %+v, %v, %v; want %+v", op, ok, err, want)
	}
	in.Component.Type = "storm"
	if _, ok, err := r.DrainOperation(ctx, in, NodeInfo{Role: "supervisor"}); ok || err != nil {
		t.Errorf("storm has no drain: %v, %v", ok, err)
	}
}

func TestModelConversionAndForNode(t *testing.T) {
	c := &model.Component{ID: "c1", Name: "zk", Type: "zookeeper", Version: "3.4.6"}
	nodes := []model.Node{{ID: "n1", Name: "zk-1", Role: "zookeeper", Index: 1, IPs: []string{"10.0.0.1"}, Hostname: "h1"}}
	got := ComponentInfoOf(c, nodes)
	want := ComponentInfo{ID: "c1", Name: "zk", Type: "zookeeper", Version: "3.4.6",
		Nodes: []NodeInfo{{ID: "n1", Name: "zk-1", Role: "zookeeper", Index: 1, IPs: []string{"10.0.0.1"}, Hostname: "h1"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ComponentInfoOf = %+v", got)
	}
	if ti := TopologyInfoOf(&model.Topology{ID: "t", Name: "n", AvailabilityZone: "az", Tenant: "p"}); ti != (TopologyInfo{ID: "t", Name: "n", AvailabilityZone: "az", Tenant: "p"}) {
		t.Errorf("TopologyInfoOf = %+v", ti)
	}
	out := PreConfigOutput{
		Component: Sections{"zookeeper": {"servers": []any{"server.1=10.0.0.1:2888:3888"}}},
		Nodes:     map[string]Sections{"n1": {"zookeeper": {"myid": int64(1)}}},
	}
	base := Sections{"zookeeper": {"client_port": int64(2181), "myid": int64(99)}}
	merged := out.ForNode(base, "n1")
	wantMerged := Sections{"zookeeper": {"client_port": int64(2181), "myid": int64(1), "servers": []any{"server.1=10.0.0.1:2888:3888"}}}
	if !reflect.DeepEqual(merged, wantMerged) {
		t.Errorf("ForNode = %v", merged)
	}
	if base["zookeeper"]["myid"] != int64(99) {
		t.Error("ForNode changed its base")
	}
}
