package api

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/shared/blob/dirblob"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/stages"
)

func TestRemovalRefused(t *testing.T) {
	zk := stages.TypeInfo{ComponentType: model.ComponentType{Type: "zookeeper", MinSize: 1, Quorum: true},
		Self: []string{"zookeeper"}, Dependents: []string{"zookeeper"}}
	kafka := stages.TypeInfo{ComponentType: model.ComponentType{Type: "kafka", MinSize: 1},
		Drain: &stages.DrainInfo{Roles: []string{"kafka"}, Command: "kafka-cmd/reassign_partitions"}}
	storm := stages.TypeInfo{ComponentType: model.ComponentType{Type: "storm", MinSize: 2}, Self: []string{"nimbus"}}
	nodes := func(role string, statuses ...string) []model.Node {
		var out []model.Node
		for i, s := range statuses {
			out = append(out, model.Node{ID: "n" + string(rune('1'+i)), Name: "node-" + string(rune('1'+i)), Role: role, Status: s})
		}
		return out
	}
	tests := []struct {
		name  string
		ti    stages.TypeInfo
		nodes []model.Node
		force bool
		want  string // "" = allowed; else a phrase of the 409
	}{
		{"zookeeper 4 -> 3", zk, nodes("zookeeper", "ACTIVE", "ACTIVE", "ACTIVE", "ACTIVE"), false, ""},
		{"zookeeper 3 -> 2 is below the quorum-safe size", zk, nodes("zookeeper", "ACTIVE", "ACTIVE", "ACTIVE"), false, "quorum-safe minimum"},
		{"zookeeper with a FAILED node and two members down", zk, nodes("zookeeper", "ACTIVE", "UNREACHABLE", "FAILED", "UNREACHABLE", "ACTIVE"), false, "majority"},
		{"zookeeper 5 -> 4 with three others down", zk, nodes("zookeeper", "ACTIVE", "UNREACHABLE", "UNREACHABLE", "ACTIVE", "UNREACHABLE"), false, "majority"},
		{"a FAILED node is no member", zk, nodes("zookeeper", "FAILED", "ACTIVE", "ACTIVE", "ACTIVE"), false, ""},
		{"kafka with a broker left to take the data", kafka, nodes("kafka", "ACTIVE", "ACTIVE"), false, ""},
		{"the last kafka broker: below the minimum", kafka, nodes("kafka", "ACTIVE"), false, "below the minimum"},
		{"the only serving broker holds data nothing else holds", kafka, nodes("kafka", "ACTIVE", "UNREACHABLE"), false, "nothing else holds"},
		{"an unreachable broker cannot drain", kafka, nodes("kafka", "UNREACHABLE", "ACTIVE"), false, "cannot run"},
		{"an unreachable broker with force", kafka, nodes("kafka", "UNREACHABLE", "ACTIVE"), true, ""},
		{"the last nimbus", storm, append(nodes("nimbus", "ACTIVE"), model.Node{ID: "s1", Role: "supervisor", Status: "ACTIVE"}, model.Node{ID: "s2", Role: "supervisor", Status: "ACTIVE"}), false, "last nimbus"},
		{"storm below its minimum", storm, []model.Node{{ID: "s1", Role: "supervisor", Status: "ACTIVE"}, {ID: "n1", Role: "nimbus", Status: "ACTIVE"}}, false, "minimum of 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			op := &nodeOp{n: tc.nodes[0], c: model.Component{Name: "c", Type: tc.ti.Type}, ti: tc.ti, nodes: tc.nodes, force: tc.force}
			err := op.removalRefused()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || errs.KindOf(err) != errs.Conflict || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want a conflict saying %q", err, tc.want)
			}
		})
	}
}

func TestObjectKey(t *testing.T) {
	tests := []struct {
		typ, dc, path string
		want, field   string
	}{
		{"swift", "az1", "jars/wc.jar", "tenants/p1/swift/az1/jars/wc.jar", ""},
		{"swift", "az1", "a/../b", "", "path"},
		{"swift", "az1", "a//b", "", "path"},
		{"swift", "az1", "", "", "path"},
		{"Swift!", "az1", "x", "", "storage_type"},
		{"swift", "a/z", "x", "", "dc"},
	}
	for _, tc := range tests {
		got, err := objectKey("p1", tc.typ, tc.dc, tc.path)
		if tc.field != "" {
			if errs.FieldOf(err) != tc.field {
				t.Errorf("%s/%s/%s: got %q %v, want an error on %s", tc.typ, tc.dc, tc.path, got, err, tc.field)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s/%s/%s: got %q %v, want %q", tc.typ, tc.dc, tc.path, got, err, tc.want)
		}
	}
}

func TestSignedBlobs(t *testing.T) {
	ctx := context.Background()
	store, err := dirblob.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Put(ctx, "tenants/p/swift/az1/a b/c.jar", bytes.NewReader([]byte("jar")), 3); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	sb := &SignedBlobs{Store: store, Base: "http://api", Key: bytes.Repeat([]byte("k"), 32), Now: func() time.Time { return now }}
	u, err := sb.URL("tenants/p/swift/az1/a b/c.jar", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	get := func(target string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		sb.ServeHTTP(w, httptest.NewRequest("GET", strings.TrimPrefix(target, "http://api"), nil))
		return w
	}
	if w := get(u); w.Code != 200 || w.Body.String() != "jar" {
		t.Fatalf("signed URL %s: %d %q", u, w.Code, w.Body)
	}
	for name, bad := range map[string]string{
		"another key":         strings.Replace(u, "c.jar", "d.jar", 1),
		"a longer expiry":     strings.Replace(u, "expires=", "expires=9", 1),
		"a forged signature":  u[:len(u)-4] + "0000",
		"no signature at all": strings.Split(u, "?")[0],
	} {
		if w := get(bad); w.Code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, w.Code)
		}
	}
	now = now.Add(2 * time.Hour)
	if w := get(u); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "expired") {
		t.Errorf("expired URL: %d %s", w.Code, w.Body)
	}
	if _, err := (&SignedBlobs{Store: store}).URL("k", time.Hour); err == nil {
		t.Error("a URL without a signing key")
	}
}

func TestDecodeStrict(t *testing.T) {
	s := &Server{MaxBody: 1 << 10}
	tests := []struct {
		body, field string
		empty       bool
	}{
		{`{"count": 2, "role": "x"}`, "", false},
		{`{"count": 2, "extra": 1}`, "extra", false},
		{`{"count": "two"}`, "count", false},
		{`{"count": 1} {"count": 2}`, "body", false},
		{``, "", true},
		{``, "body", false},
	}
	for _, tc := range tests {
		r := httptest.NewRequest("POST", "/x", strings.NewReader(tc.body))
		r.Header.Set("Content-Type", "application/json")
		var v FlexupRequest
		err := s.decodeStrict(r, &v, tc.empty)
		if tc.field == "" && err != nil || tc.field != "" && errs.FieldOf(err) != tc.field {
			t.Errorf("%q (empty ok %v): %v, want field %q", tc.body, tc.empty, err, tc.field)
		}
	}
}
