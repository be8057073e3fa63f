package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/test/harness"
)

// readTree reads every file under dir, by slash path relative to it, with whether it is
// executable.
func readTree(t *testing.T, dir string) (map[string]string, map[string]bool) {
	t.Helper()
	files, exec := map[string]string{}, map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = string(b)
		exec[filepath.ToSlash(rel)] = info.Mode()&0o111 != 0
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, exec
}

func sorted(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestAddComponentByScripts adds a component type straas has never seen (redis 7.2, and
// sentinel 7.2 depending on it) by committing files only, through straas's own API (the
// config files with the configuration API, the scripts in one commit to the script
// repo), then provisions a topology with depends_on, changes its configuration and
// flexes it up. The files are test/e2e/testdata/redis-sentinel, the example of
// docs/adding-a-component.md.
func TestAddComponentByScripts(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	admin, demo := s.Client(t, "admin"), s.Client(t, "demo")
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "test", "e2e", "testdata", "redis-sentinel")

	// Config repo first: the script repo's check then finds each version's default.json.
	config, _ := readTree(t, filepath.Join(dir, "config"))
	for _, p := range sorted(config) {
		cfgMust(t, admin, "PUT", treePath("master", p), map[string]any{"content": config[p], "message": "Add " + p}, nil)
	}
	scripts, executable := readTree(t, filepath.Join(dir, "scripts"))
	var files []map[string]any
	for _, p := range sorted(scripts) {
		files = append(files, map[string]any{"path": p, "content": scripts[p], "executable": executable[p]})
	}
	var committed struct {
		Commit   string   `json:"commit"`
		Files    int      `json:"files"`
		Problems []string `json:"problems"`
	}
	if st, e := cfgCall(t, admin, "POST", v1+"/scripts/commits", map[string]any{"message": "Add redis 7.2 and sentinel 7.2", "files": files}, &committed); st != 201 {
		t.Fatalf("commit scripts: %d %v", st, e)
	}
	if committed.Files != len(files) || len(committed.Problems) != 0 {
		t.Fatalf("scripts commit: %+v", committed)
	}

	// The catalog has the new types at once.
	types, err := demo.ComponentTypes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ty := range types {
		names = append(names, ty.Type)
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "redis") || !strings.Contains(got, "sentinel") {
		t.Fatalf("component types after the commit: %s", got)
	}
	var exe configEntry
	cfgMust(t, admin, "GET", v1+"/scripts/tree/master/cmd/redis/7.2/validate.sh", nil, &exe)
	if exe.Content == nil || !strings.Contains(*exe.Content, "PONG") {
		t.Errorf("validate.sh in the script repo: %+v", exe)
	}

	// A user provisions a topology using them.
	body := []byte(`{"name":"cache-1","availability_zone":"az1","components":[
		{"name":"cache","type":"redis","version":"7.2","size":2},
		{"name":"watch","type":"sentinel","version":"7.2","size":3,"depends_on":["cache"]}]}`)
	topo, a := create(t, demo, body, 60*time.Second)
	if a.Status != "SUCCEEDED" || topo.Status != "ACTIVE" {
		t.Fatalf("creation with the new types: %s %+v", a.Status, a.Error)
	}
	cache := componentNamed(t, demo, topo.ID, "cache")
	watch := componentNamed(t, demo, topo.ID, "watch")
	primary := cache.Nodes[0].IPs[0]
	if got := cache.Nodes[1].Config.Sections["redis"]["replicaof"]; got != primary+" 6379" {
		t.Errorf("replica's replicaof %v, want %q", got, primary+" 6379")
	}
	for _, n := range watch.Nodes {
		mon := fmt.Sprint(n.Config.Sections["sentinel"]["monitor"])
		if mon != "cache-1-cache "+primary+" 6379 2" {
			t.Errorf("sentinel %s monitors %q", n.Name, mon)
		}
		if !strings.Contains(n.Config.SitePP, "class { 'sentinel':") {
			t.Errorf("sentinel %s site.pp:\n%s", n.Name, n.Config.SitePP)
		}
	}
	if st, ok := stageOf(a, "wait_dependencies"); ok && st.Status != "SUCCEEDED" {
		t.Errorf("dependency wait: %+v", st)
	}

	// Its owner changes its configuration.
	var w configWritten
	cfgMust(t, demo, "PUT", treePath(topo.ConfigBranch, "app/redis/7.2/user.json"), userJSON("redis", map[string]any{"maxmemory": "2gb"}), &w)
	plan, ca := apply(t, demo, cache.ID, topo.ConfigBranch, "parallel=2") // not a quorum type: both at once
	if ca.Status != "SUCCEEDED" || plan.Plan.ToRoll != 2 || plan.Plan.ToRestart != 0 || plan.Plan.Parallel != 2 {
		t.Fatalf("config change of redis: %s %+v, plan %+v", ca.Status, ca.Error, plan.Plan)
	}
	for _, n := range componentNamed(t, demo, topo.ID, "cache").Nodes {
		if n.ConfigRef != w.Commit || n.Config.Sections["redis"]["maxmemory"] != "2gb" {
			t.Errorf("redis node %s after the change: %s %v", n.Name, n.ConfigRef, n.Config.Sections["redis"])
		}
	}

	// And flexes it up: the new replica follows the primary.
	t.Run("flexup", func(t *testing.T) {
		var fx struct {
			Action client.ActionRef `json:"action"`
		}
		if st, e := cfgCall(t, demo, "POST", v1+"/components/"+cache.ID, map[string]any{"count": 1}, &fx); st != 202 {
			t.Fatalf("flexup: %d %v (POST /components/{id})", st, e)
		}
		if a := harness.WaitAction(t, demo, fx.Action.ID, 60*time.Second); a.Status != "SUCCEEDED" {
			t.Fatalf("flexup: %s %+v", a.Status, a.Error)
		}
		nodes := componentNamed(t, demo, topo.ID, "cache").Nodes
		if len(nodes) != 3 {
			t.Fatalf("cache has %d nodes after the flexup", len(nodes))
		}
		n := nodes[2]
		if n.Status != "ACTIVE" || n.Config == nil || n.Config.Sections["redis"]["replicaof"] != primary+" 6379" ||
			n.Config.Sections["redis"]["maxmemory"] != "2gb" {
			t.Errorf("new redis node %s: %s %+v", n.Name, n.Status, n.Config)
		}
	})

	// The script repo's history shows who added the type.
	out, err := exec.Command("git", "--git-dir", filepath.Join(s.DataDir, "git", "scripts.git"), "log", "--format=%an%x09%s", "master").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "admin\tAdd redis 7.2 and sentinel 7.2") {
		t.Errorf("git log of the script repo: %s %v", out, err)
	}
}

// TestComponentTestCommand: `straas component test DIR` tries a candidate type on an
// in-process mock cloud and reports each step; a broken candidate fails, naming why.
func TestComponentTestCommand(t *testing.T) {
	bin := harness.Binary(t)
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "test", "e2e", "testdata", "redis-sentinel")
	out, err := exec.Command(bin, "component", "test", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("straas component test: %v\n%s", err, out)
	}
	for _, want := range []string{"lint", "commit", "verify", "create", "install/configure/validate  redis", "install/configure/validate  sentinel",
		"flexup", "config change", "delete"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "FAILED") {
		t.Errorf("a step failed:\n%s", out)
	}

	// A candidate whose type names a role without scripts fails at verify.
	broken := t.TempDir()
	files, exec2 := readTree(t, dir)
	for p, content := range files {
		if strings.HasPrefix(p, "scripts/cmd/sentinel/") {
			continue
		}
		full := filepath.Join(broken, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if exec2[p] {
			mode = 0o755
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	out, err = exec.Command(bin, "component", "test", broken).CombinedOutput()
	if err == nil {
		t.Fatalf("a candidate without sentinel's scripts passed:\n%s", out)
	}
	if !strings.Contains(string(out), "verify") || !strings.Contains(string(out), "cmd/sentinel/7.2/runpuppet.sh") {
		t.Errorf("the failure does not name the missing script:\n%s", out)
	}
}
