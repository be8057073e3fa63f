package gitrepo

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/errs"
)

// redisFiles is everything a user of straas commits to add redis 7.2 and a sentinel
// type that depends on it: data and scripts only.
var redisFiles = map[string]string{
	"components/redis.json": `{
  "type": "redis", "versions": ["7.2"], "roles": ["redis"],
  "default_flavor": "small", "min_size": 1,
  "membership": {"dependents": ["redis"]},
  "validate_ports": {"redis": [6379]},
  "services": {"redis": ["redis-server"]}
}`,
	"components/sentinel.json": `{
  "type": "sentinel", "versions": ["7.2"], "roles": ["sentinel"],
  "default_flavor": "tiny", "min_size": 3, "quorum": true,
  "dependencies": [{"type": "redis", "required": true}],
  "membership": {"self": ["sentinel"]},
  "validate_ports": {"sentinel": [26379]}
}`,
	"pre_config/redis/pre_config.json": `{
  "component": [
    {"section": "redis", "key": "cluster_name", "type": "string", "template": "{{ .Topology.Name }}-{{ .Component.Name }}"}
  ],
  "node": [
    {"section": "redis", "key": "replicaof", "type": "string",
     "template": "{{ if gt .Node.Index 1 }}{{ (first (nodes .Component \"redis\")).IP }} {{ option .Component \"redis\" \"port\" 6379 }}{{ end }}"}
  ]
}`,
	"pre_config/sentinel/pre_config.json": `{
  "component": [
    {"section": "sentinel", "key": "monitor", "type": "string",
     "template": "{{ $r := dep \"redis\" }}{{ .Topology.Name }}-{{ $r.Name }} {{ (first (nodes $r \"redis\")).IP }} {{ option $r \"redis\" \"port\" 6379 }} {{ add (div (len .Component.Nodes) 2) 1 }}"},
    {"section": "sentinel", "key": "peers", "type": "list", "template": "{{ range nodes .Component \"sentinel\" }}{{ .IP }}:26379\n{{ end }}"}
  ],
  "operations": [
    {"name": "announce", "dependency": "redis", "role": "redis", "nodes": "all",
     "command": "redis-cmd/config_set", "args": "replica-announce-ip {{ .Node.IP }}"}
  ]
}`,
	"guestcmds/redis-cmd/config_set":            "#!/bin/sh\n# config_set <key> <value>: CONFIG SET on the local redis.\nexec redis-cli CONFIG SET \"$@\"\n",
	"cmd/redis/7.2/install.json":                `{"package": "redis-server", "version": "5:7.2.4-1"}`,
	"cmd/redis/7.2/runpuppet.sh":                "#!/bin/sh\nexec puppet apply --modulepath=\"$1/puppet/modules\" \"$1/puppet/manifests/redis/site.pp\"\n",
	"cmd/redis/7.2/validate.sh":                 "#!/bin/sh\nredis-cli -p 6379 ping | grep -q PONG\n",
	"cmd/sentinel/7.2/install.json":             `{"package": "redis-sentinel", "version": "5:7.2.4-1"}`,
	"cmd/sentinel/7.2/runpuppet.sh":             "#!/bin/sh\nexec puppet apply --modulepath=\"$1/puppet/modules\" \"$1/puppet/manifests/sentinel/site.pp\"\n",
	"cmd/sentinel/7.2/validate.sh":              "#!/bin/sh\nredis-cli -p 26379 ping | grep -q PONG\n",
	"puppet/manifests/redis/site.pp":            "# written by pre-config\n",
	"puppet/manifests/sentinel/site.pp":         "# written by pre-config\n",
	"puppet/modules/redis/manifests/init.pp":    "class redis (Integer $port = 6379, String $cluster_name = '', String $replicaof = '') {\n  service { 'redis-server': ensure => running }\n}\n",
	"puppet/modules/sentinel/manifests/init.pp": "class sentinel (String $monitor, Array[String] $peers = []) {\n  service { 'redis-sentinel': ensure => running }\n}\n",
}

func TestNewComponentTypeFromFilesOnly(t *testing.T) {
	ctx := context.Background()
	r, dir := newRepos(t)
	bare := filepath.Join(dir, "scripts.git")
	// Warm the catalog first, then push as git would: received objects stay packed, which
	// go-git only sees after reindexing.
	if _, err := r.ComponentTypes(ctx); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, "", "--git-dir", bare, "config", "receive.unpackLimit", "1")
	work := filepath.Join(t.TempDir(), "scripts")
	gitCmd(t, "", "clone", "--quiet", bare, work)
	for p, content := range redisFiles {
		full := filepath.Join(work, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if filepath.Ext(p) == ".sh" || filepath.Dir(filepath.Dir(p)) == "guestcmds" {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	gitCmd(t, work, "add", "-A")
	gitCmd(t, work, "commit", "--quiet", "-m", "Add redis 7.2 and sentinel 7.2")
	gitCmd(t, work, "push", "--quiet", "origin", "master")
	if packs, _ := filepath.Glob(filepath.Join(bare, "objects", "pack", "*.pack")); len(packs) == 0 {
		t.Fatal("the push left no pack: the reindex path is not exercised")
	}

	admin := Author{Name: "root"}
	redisDefault := []byte(`{"type":"ini","content":[{"section":"redis","options":[
	  {"key":"port","value":6380,"type":"int"},
	  {"key":"maxmemory","value":"1gb","type":"string","user_changeable":true,"restart_required":false}]}]}`)
	sentinelDefault := []byte(`{"type":"ini","content":[{"section":"sentinel","options":[
	  {"key":"down_after_milliseconds","value":5000,"type":"int","user_changeable":true}]}]}`)
	for p, b := range map[string][]byte{"app/redis/7.2/default.json": redisDefault, "app/sentinel/7.2/default.json": sentinelDefault} {
		if _, err := r.WriteFile(ctx, Master, p, b, "Add "+p, admin); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}

	if err := r.Verify(ctx); err != nil {
		t.Fatalf("Verify after adding redis: %v", err)
	}
	types, err := r.ComponentTypes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ct := range types {
		names = append(names, ct.Type)
	}
	if !slices.Equal(names, []string{"kafka", "redis", "sentinel", "storm", "zookeeper"}) {
		t.Fatalf("catalog after the push: %v", names)
	}
	sd, _ := r.TypeDef(ctx, "sentinel")
	if !sd.Quorum || sd.MinSize != 3 || sd.Dependencies[0].Type != "redis" || !sd.ReconfigureSelf("sentinel") {
		t.Errorf("sentinel definition %+v", sd)
	}
	if p, err := r.Install(ctx, "sentinel", "sentinel", "7.2"); err != nil || p != (agentproto.Package{Name: "redis-sentinel", Version: "5:7.2.4-1"}) {
		t.Errorf("Install(sentinel) = %+v, %v", p, err)
	}
	if g, _ := r.GuestCommands(ctx); !slices.Equal(g["redis-cmd"], []string{"config_set"}) {
		t.Errorf("guest commands: %v", g)
	}

	redisSections, err := r.EffectiveSections(ctx, Master, "redis", "7.2")
	if err != nil {
		t.Fatal(err)
	}
	redis := ComponentInfo{ID: "c-r", Name: "cache", Type: "redis", Version: "7.2", Sections: redisSections, Nodes: []NodeInfo{
		{ID: "r1", Name: "cache-1", Role: "redis", Index: 1, IPs: []string{"10.0.3.1"}},
		{ID: "r2", Name: "cache-2", Role: "redis", Index: 2, IPs: []string{"10.0.3.2"}},
	}}
	out, err := r.PreConfig(ctx, "redis", "7.2", PreConfigInput{Topology: topo, Component: redis})
	if err != nil {
		t.Fatal(err)
	}
	wantRedis := map[string]Sections{
		"r1": {"redis": {"replicaof": ""}},
		"r2": {"redis": {"replicaof": "10.0.3.1 6380"}},
	}
	if !reflect.DeepEqual(out.Nodes, wantRedis) || out.Component["redis"]["cluster_name"] != "test-1-cache" {
		t.Errorf("redis pre-config: %+v", out)
	}

	sentinel := ComponentInfo{ID: "c-s", Name: "watch", Type: "sentinel", Version: "7.2", Nodes: []NodeInfo{
		{ID: "w1", Name: "watch-1", Role: "sentinel", Index: 1, IPs: []string{"10.0.4.1"}},
		{ID: "w2", Name: "watch-2", Role: "sentinel", Index: 2, IPs: []string{"10.0.4.2"}},
		{ID: "w3", Name: "watch-3", Role: "sentinel", Index: 3, IPs: []string{"10.0.4.3"}},
	}}
	out, err = r.PreConfig(ctx, "sentinel", "7.2", PreConfigInput{Topology: topo, Component: sentinel, Dependencies: []ComponentInfo{redis}})
	if err != nil {
		t.Fatal(err)
	}
	wantComp := Sections{"sentinel": {
		"monitor": "test-1-cache 10.0.3.1 6380 2",
		"peers":   []any{"10.0.4.1:26379", "10.0.4.2:26379", "10.0.4.3:26379"},
	}}
	wantOps := []Operation{
		{Name: "announce", Command: "redis-cmd/config_set", Args: "replica-announce-ip 10.0.3.1", Component: "cache", ComponentID: "c-r", Role: "redis", NodeID: "r1", NodeName: "cache-1"},
		{Name: "announce", Command: "redis-cmd/config_set", Args: "replica-announce-ip 10.0.3.2", Component: "cache", ComponentID: "c-r", Role: "redis", NodeID: "r2", NodeName: "cache-2"},
	}
	if !reflect.DeepEqual(out.Component, wantComp) || !reflect.DeepEqual(out.Operations, wantOps) {
		t.Errorf("sentinel pre-config:\n got %+v\n     %+v\nwant %+v\n     %+v", out.Component, out.Operations, wantComp, wantOps)
	}
}

func TestBrokenComponentFileIsIsolated(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepos(t)
	bad := []Change{
		{Path: "components/cassandra.json", Content: []byte(`{"type":"cassandra","versions":["4.1"],"roles":["cassandra"],"default_flavor":"large","default_layout":[{"role":"seed"}]}`)},
		{Path: "components/typo.json", Content: []byte(`{"type":"typo","versoins":["1"]}`)},
	}
	if _, err := r.Scripts.Commit(ctx, Master, bad, "broken types", Author{Name: "root"}); err != nil {
		t.Fatal(err)
	}
	types, err := r.ComponentTypes(ctx)
	if err != nil || len(types) != 3 {
		t.Errorf("ComponentTypes with broken files: %d types, %v; want the 3 good ones", len(types), err)
	}
	_, err = r.TypeDef(ctx, "cassandra")
	if !errs.Is(err, errs.Invalid) || errs.FieldOf(err) != "default_layout[0].role" || !strings.Contains(err.Error(), "components/cassandra.json") {
		t.Errorf("TypeDef(cassandra): %v (field %q)", err, errs.FieldOf(err))
	}
	_, err = r.TypeDef(ctx, "typo")
	if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), `unknown field "versoins"`) || !strings.Contains(err.Error(), "components/typo.json") {
		t.Errorf("TypeDef(typo): %v", err)
	}
	if err := r.Verify(ctx); err == nil {
		t.Error("Verify passed with broken component files")
	}
}
