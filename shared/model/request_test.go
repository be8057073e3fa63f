package model

import (
	"strings"
	"testing"

	"github.com/straas/straas/shared/errs"
)

type fakeCatalog map[string]ComponentType

func (c fakeCatalog) ComponentType(t string) (ComponentType, bool) { ct, ok := c[t]; return ct, ok }
func (c fakeCatalog) ComponentTypeNames() []string                 { return []string{"kafka", "storm", "zookeeper"} }
func (fakeCatalog) HasFlavor(n string) bool                        { return n == "tiny" || n == "large" || n == "small" }
func (fakeCatalog) HasZone(az string) bool                         { return az == "phx01" || az == "az1" }

var cat = fakeCatalog{
	"zookeeper": {Type: "zookeeper", Versions: []string{"3.4.6"}, Roles: []string{"zookeeper"}, DefaultFlavor: "small", Quorum: true},
	"kafka":     {Type: "kafka", Versions: []string{"0.10.2.1"}, Roles: []string{"kafka"}, DefaultFlavor: "small"},
	"storm":     {Type: "storm", Versions: []string{"0.10"}, Roles: []string{"nimbus", "supervisor"}, DefaultFlavor: "small"},
}

// seedExample is seed 000 §4.3.2.1's body as written (with its closing bracket restored).
const seedExample = `{
  "name": "test-1",
  "availability_zone": "phx01",
  "components": [
        {
            "name": "zk",
            "type": "zookeeper",
            "version": "3.4.6",
            "size": 1,
            "enable_fault_domain": true,
            "min_num_of_fault_domain": 4,
            "anti_affinity_group": "zk-test-group",
            "flavor": "tiny"
        },{
            "name": "strm",
            "type": "storm",
            "version": "0.10",
            "size": 3,
            "enable_cname": false,
            "depends_on": "zk",
            "submodules": [
                     {
                         "role": "nimbus",
                         "name": "nmbus",
                         "size": 1,
                         "enable cname": true,
                         "flavor": "large"
                     },{
                         "role": "supervisor",
                         "name": "supervsr",
                         "size": 2
                     }
                ]
        }]
}`

func TestDecodeCreateTopologySeedExample(t *testing.T) {
	req, err := DecodeCreateTopology([]byte(seedExample), cat)
	if err != nil {
		t.Fatalf("seed example rejected: %v", err)
	}
	strm := req.Components[1]
	if got := strm.DependsOn; len(got) != 1 || got[0] != "zk" {
		t.Errorf("depends_on = %v, want [zk]", got)
	}
	if strm.Size != 3 {
		t.Errorf("storm size = %d, want 3", strm.Size)
	}
	if e := strm.Submodules[0].EnableCName; e == nil || !*e {
		t.Errorf(`"enable cname" not taken as enable_cname: %v`, e)
	}
	if got := DependencyOrder(req.Components); strings.Join(got, ",") != "zk,strm" {
		t.Errorf("dependency order = %v", got)
	}
}

func TestDecodeCreateTopologyErrors(t *testing.T) {
	zk := `{"name":"zk","type":"zookeeper","version":"3.4.6","size":3}`
	body := func(comps ...string) string {
		return `{"name":"t1","availability_zone":"az1","components":[` + strings.Join(comps, ",") + `]}`
	}
	tests := []struct {
		name, body, field string
	}{
		{"not json", `{`, "body"},
		{"unknown top field", `{"name":"t1","availability_zone":"az1","colour":"red","components":[` + zk + `]}`, "colour"},
		{"unknown component field", body(`{"name":"zk","type":"zookeeper","version":"3.4.6","size":3,"sise":1}`), "components[0].sise"},
		{"missing name", `{"availability_zone":"az1","components":[` + zk + `]}`, "name"},
		{"missing az", `{"name":"t1","components":[` + zk + `]}`, "availability_zone"},
		{"missing components", `{"name":"t1","availability_zone":"az1"}`, "components"},
		{"empty components", body(), "components"},
		{"bad name", `{"name":"a b","availability_zone":"az1","components":[` + zk + `]}`, "name"},
		{"unknown az", `{"name":"t1","availability_zone":"nowhere","components":[` + zk + `]}`, "availability_zone"},
		{"duplicate component", body(zk, zk), "components[1].name"},
		{"size zero", body(`{"name":"zk","type":"zookeeper","version":"3.4.6","size":0}`), "components[0].size"},
		{"size missing", body(`{"name":"zk","type":"zookeeper","version":"3.4.6"}`), "components[0].size"},
		{"size wrong type", body(`{"name":"zk","type":"zookeeper","version":"3.4.6","size":"3"}`), "components[0].size"},
		{"unknown type", body(`{"name":"x","type":"mongodb","version":"1","size":1}`), "components[0].type"},
		{"unknown version", body(`{"name":"zk","type":"zookeeper","version":"9.9","size":1}`), "components[0].version"},
		{"unknown flavor", body(`{"name":"zk","type":"zookeeper","version":"3.4.6","size":1,"flavor":"huge"}`), "components[0].flavor"},
		{"unknown dependency", body(zk, `{"name":"k","type":"kafka","version":"0.10.2.1","size":1,"depends_on":["nope"]}`), "components[1].depends_on"},
		{"self dependency", body(`{"name":"k","type":"kafka","version":"0.10.2.1","size":1,"depends_on":"k"}`), "components[0].depends_on"},
		{"cycle", body(`{"name":"a","type":"kafka","version":"0.10.2.1","size":1,"depends_on":"b"}`, `{"name":"b","type":"kafka","version":"0.10.2.1","size":1,"depends_on":"a"}`), "components[1].depends_on"},
		{"depends_on wrong type", body(`{"name":"k","type":"kafka","version":"0.10.2.1","size":1,"depends_on":3}`), "components[0].depends_on"},
		{"storm without submodules", body(`{"name":"s","type":"storm","version":"0.10","size":3}`), "components[0].submodules"},
		{"unknown role", body(`{"name":"s","type":"storm","version":"0.10","submodules":[{"role":"worker","size":1}]}`), "components[0].submodules[0].role"},
		{"size mismatch", body(`{"name":"s","type":"storm","version":"0.10","size":5,"submodules":[{"role":"nimbus","size":1},{"role":"supervisor","size":2}]}`), "components[0].size"},
		{"submodule size zero", body(`{"name":"s","type":"storm","version":"0.10","submodules":[{"role":"nimbus","size":0}]}`), "components[0].submodules[0].size"},
		{"fault domains without enable", body(`{"name":"zk","type":"zookeeper","version":"3.4.6","size":1,"min_num_of_fault_domain":2}`), "components[0].min_num_of_fault_domain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeCreateTopology([]byte(tc.body), cat)
			if err == nil {
				t.Fatal("accepted, want an error")
			}
			if k := errs.KindOf(err); k != errs.Invalid {
				t.Errorf("kind = %v, want invalid (%v)", k, err)
			}
			if got := errs.FieldOf(err); got != tc.field {
				t.Errorf("field = %q, want %q (%v)", got, tc.field, err)
			}
		})
	}
}
