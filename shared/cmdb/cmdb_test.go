package cmdb_test

import (
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/straas/straas/shared/cmdb"
	"github.com/straas/straas/shared/cmdb/cmdbtest"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store/bolt"
)

func boltStore(t *testing.T) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStored(t *testing.T) {
	cmdbtest.Run(t, func(t *testing.T) cmdb.CMDB { return cmdb.Stored{S: boltStore(t)} })
}

func TestHTTP(t *testing.T) {
	cmdbtest.Run(t, func(t *testing.T) cmdb.CMDB {
		srv := httptest.NewServer(cmdb.Handler(cmdb.Stored{S: boltStore(t)}))
		t.Cleanup(srv.Close)
		return cmdb.NewHTTP(srv.URL, "secret")
	})
}

func TestBuildOrdersComponentsAndNodes(t *testing.T) {
	topo := &model.Topology{ID: "t1", Name: "demo", AvailabilityZone: "az1", Status: "ACTIVE"}
	comps := []model.Component{{ID: "c1", Name: "zk", Type: "zookeeper"}, {ID: "c2", Name: "kafka", Type: "kafka", DependsOn: []string{"zk"}}}
	nodes := map[string][]model.Node{
		"c1": {{ID: "c1-2", Index: 2, IPs: []string{"10.0.0.2"}}, {ID: "c1-1", Index: 1, IPs: []string{"10.0.0.1"}}},
	}
	m := cmdb.Build(topo, comps, nodes, time.Unix(0, 0))
	if len(m.Components) != 2 || m.Components[0].Name != "zk" || m.Components[1].Name != "kafka" {
		t.Fatalf("components %+v, want zk then kafka", m.Components)
	}
	if got := m.Components[0].Nodes; len(got) != 2 || got[0].ID != "c1-1" || got[1].ID != "c1-2" {
		t.Errorf("zk nodes %+v, want by index", got)
	}
	if m.Components[1].Nodes == nil || m.Components[1].DependsOn[0] != "zk" {
		t.Errorf("kafka: nodes %v (want an empty list), depends_on %v", m.Components[1].Nodes, m.Components[1].DependsOn)
	}
}
