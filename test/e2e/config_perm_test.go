package e2e

import (
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/test/harness"
)

// TestConfigRoutes: every configuration route for every kind of caller (seed 000 §4.1.2
// rule 3): admins do everything; users read the defaults, change only the user-changeable
// keys of their own topologies' user.json (403 naming the others), and tag only their own
// branches; another user's branch is not found. The tags routes are not shadowed by the
// file routes, and every write is a commit visible with git log, authored by the caller.
func TestConfigRoutes(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	users := map[string]*client.Client{
		"admin": s.Client(t, "admin"), "demo": s.Client(t, "demo"), "demo2": s.Client(t, "demo2"), "other": s.Client(t, "other"),
	}
	demo := users["demo"]
	topo, act := create(t, demo, zkBody("perm-1", 1), 60*time.Second)
	if act.Status != "SUCCEEDED" {
		t.Fatalf("creation: %s %+v", act.Status, act.Error)
	}
	topo2, act := create(t, demo, zkBody("perm-2", 1), 60*time.Second)
	if act.Status != "SUCCEEDED" {
		t.Fatalf("creation: %s %+v", act.Status, act.Error)
	}
	zk := componentNamed(t, demo, topo.ID, "zk")
	branch := topo.ConfigBranch // perm-1@az1
	var masterHead configEntry
	cfgMust(t, users["admin"], "GET", treePath("master", ""), nil, &masterHead)

	user := func(kv map[string]any) map[string]any { return userJSON("zookeeper", kv) }
	iniFile := func(section, key string, value any, typ string) map[string]any {
		v := fmt.Sprintf("%v", value)
		if s, ok := value.(string); ok {
			v = fmt.Sprintf("%q", s)
		}
		return map[string]any{"content": fmt.Sprintf(`{"type":"ini","content":[{"section":%q,"options":[{"key":%q,"value":%s,"type":%q}]}]}`,
			section, key, v, typ), "message": "admin setting " + key}
	}
	userFile := treePath(branch, "app/zookeeper/3.4.6/user.json")
	tags := func(ref string) string { return v1 + "/configurations/tree/" + url.PathEscape(ref) + "/tags" }
	dryRun := func(ref string) string {
		return v1 + "/components/" + zk.ID + "/tree/" + url.PathEscape(ref) + "?dry_run=true"
	}

	type step struct {
		name         string
		who          string
		method, path string
		body         any
		status       int
		field        string // of the error, when set
		contains     string // in the error message, when set
	}
	steps := []step{
		// Reads.
		{"defaults, admin", "admin", "GET", treePath("master", "app/zookeeper/3.4.6/default.json"), nil, 200, "", ""},
		{"defaults, owner", "demo", "GET", treePath("master", "app/zookeeper/3.4.6/default.json"), nil, 200, "", ""},
		{"defaults, other tenant", "other", "GET", treePath("master", "app/zookeeper/3.4.6/default.json"), nil, 200, "", ""},
		{"defaults folder", "demo2", "GET", treePath("master", "app/zookeeper"), nil, 200, "", ""},
		{"top folder", "demo", "GET", treePath("master", ""), nil, 200, "", ""},
		{"service, admin", "admin", "GET", treePath("master", "service/default.json"), nil, 200, "", ""},
		{"service, user", "demo", "GET", treePath("master", "service/default.json"), nil, 403, "", "admins"},
		{"own branch", "demo", "GET", userFile, nil, 200, "", ""},
		{"own branch, peer", "demo2", "GET", userFile, nil, 404, "", ""},
		{"own branch, other tenant", "other", "GET", userFile, nil, 404, "", ""},
		{"own branch, admin", "admin", "GET", userFile, nil, 200, "", ""},
		{"commit, admin", "admin", "GET", treePath(masterHead.Commit, "app/zookeeper/3.4.6/user.json"), nil, 200, "", ""},
		{"commit, user", "demo", "GET", treePath(masterHead.Commit, "app/zookeeper/3.4.6/user.json"), nil, 403, "", "commit"},
		{"missing file", "admin", "GET", treePath("master", "app/zookeeper/9.9/default.json"), nil, 404, "", ""},
		{"missing tag", "demo", "GET", treePath(branch+"&nope", "app"), nil, 404, "", ""},
		{"missing branch", "admin", "GET", treePath("nope@az1", "app"), nil, 404, "", ""},
		{"bad ref", "admin", "GET", treePath("a&b&c", "app"), nil, 400, "ref", ""},

		// Writes.
		{"user key, owner", "demo", "PUT", userFile, user(map[string]any{"tick_time": 2500}), 200, "", ""},
		{"user key, peer", "demo2", "PUT", userFile, user(map[string]any{"tick_time": 2600}), 404, "", ""},
		{"user key, other tenant", "other", "PUT", userFile, user(map[string]any{"tick_time": 2600}), 404, "", ""},
		{"admin key, owner", "demo", "PUT", userFile, user(map[string]any{"tick_time": 2500, "client_port": 2182, "data_dir": "/x"}), 403, "content", "zookeeper.client_port, zookeeper.data_dir"},
		{"admin key, admin", "admin", "PUT", userFile, user(map[string]any{"tick_time": 2500, "client_port": 2182}), 200, "", ""},
		{"unknown key", "demo", "PUT", userFile, user(map[string]any{"tick_tock": 1}), 403, "content", "zookeeper.tick_tock"},
		{"removing an admin's key, owner", "demo", "PUT", userFile, user(map[string]any{"tick_time": 2500}), 403, "content", "zookeeper.client_port"},
		{"wrong type", "demo", "PUT", userFile, user(map[string]any{"client_port": 2182, "tick_time": "fast"}), 400, "content[0].options[1].value", ""},
		{"not JSON", "demo", "PUT", userFile, map[string]any{"content": "{not json"}, 400, "", ""},
		{"unknown body field", "demo", "PUT", userFile, map[string]any{"content": "{}", "colour": "red"}, 400, "colour", ""},
		{"default.json, owner", "demo", "PUT", treePath(branch, "app/zookeeper/3.4.6/default.json"), iniFile("zookeeper", "tick_time", 1, "int"), 403, "", "user.json"},
		{"master user.json, owner", "demo", "PUT", treePath("master", "app/zookeeper/3.4.6/user.json"), user(map[string]any{"tick_time": 1}), 403, "", "master"},
		{"service, owner", "demo", "PUT", treePath("master", "service/api.json"), iniFile("api", "x", 1, "int"), 403, "", ""},
		{"service, admin", "admin", "PUT", treePath("master", "service/api.json"), iniFile("api", "request_log", true, "bool"), 200, "", ""},
		{"service, admin, bad field", "admin", "PUT", treePath("master", "service/api.json"), iniFile("api", "workers", "many", "int"), 400, "content[0].options[0].value", ""},
		{"outside service/ and app/", "admin", "PUT", treePath("master", "README.md"), map[string]any{"content": "x"}, 400, "path", ""},
		{"write a tag", "demo", "PUT", treePath(branch+"&v1", "app/zookeeper/3.4.6/user.json"), user(map[string]any{"tick_time": 1}), 400, "ref", ""},

		// Tags.
		{"tag own branch", "demo", "POST", tags(branch), map[string]any{"tag": "v1", "message": "first"}, 201, "", ""},
		{"tag twice", "demo", "POST", tags(branch), map[string]any{"tag": "v1"}, 409, "", ""},
		{"tag, peer", "demo2", "POST", tags(branch), map[string]any{"tag": "v2"}, 404, "", ""},
		{"tag, other tenant", "other", "POST", tags(branch), map[string]any{"tag": "v2"}, 404, "", ""},
		{"bad tag name", "demo", "POST", tags(branch), map[string]any{"tag": "no spaces"}, 400, "tag", ""},
		{"tag master, user", "demo", "POST", tags("master"), map[string]any{"tag": "rel-1"}, 403, "", ""},
		{"tag master, admin", "admin", "POST", tags("master"), map[string]any{"tag": "rel-1"}, 201, "", ""},
		{"admin tag on a user's branch", "admin", "POST", tags(branch), map[string]any{"tag": "adm"}, 201, "", ""},
		{"list tags", "demo", "GET", tags(branch), nil, 200, "", ""},
		{"list tags, peer", "demo2", "GET", tags(branch), nil, 404, "", ""},
		{"list master tags, user", "other", "GET", tags("master"), nil, 200, "", ""},
		{"list tags of a tag", "demo", "GET", tags(branch + "&v1"), nil, 400, "ref", ""},
		{"show tag", "demo", "GET", tags(branch) + "/v1", nil, 200, "", ""},
		{"read at the tag", "demo", "GET", treePath(branch+"&v1", "app/zookeeper/3.4.6/user.json"), nil, 200, "", ""},
		{"not a file under tags", "demo", "GET", tags(branch) + "/v1/x", nil, 404, "", ""},
		{"delete admin tag, user", "demo", "DELETE", tags(branch) + "/adm", nil, 403, "", ""},
		{"delete admin tag, admin", "admin", "DELETE", tags(branch) + "/adm", nil, 204, "", ""},
		{"delete master tag, user", "demo", "DELETE", tags("master") + "/rel-1", nil, 403, "", ""},
		{"delete tag, peer", "demo2", "DELETE", tags(branch) + "/v1", nil, 404, "", ""},
		{"delete missing tag", "demo", "DELETE", tags(branch) + "/v9", nil, 404, "", ""},

		// Applying (dry runs: nothing changes).
		{"dry run, owner", "demo", "PUT", dryRun(branch), nil, 202, "", ""},
		{"dry run at a tag, owner", "demo", "PUT", dryRun(branch + "&v1"), nil, 202, "", ""},
		{"dry run of master, owner", "demo", "PUT", dryRun("master"), nil, 202, "", ""},
		{"dry run, peer", "demo2", "PUT", dryRun(branch), nil, 404, "", ""},
		{"dry run, other tenant", "other", "PUT", dryRun(branch), nil, 404, "", ""},
		{"dry run, admin", "admin", "PUT", dryRun(branch), nil, 202, "", ""},
		{"another topology's branch", "demo", "PUT", dryRun(topo2.ConfigBranch), nil, 403, "", "perm-1@az1"},
		{"a commit, user", "demo", "PUT", dryRun(masterHead.Commit), nil, 403, "", "admins"},
		{"a commit, admin", "admin", "PUT", dryRun(masterHead.Commit), nil, 202, "", ""},
		{"missing tag", "demo", "PUT", dryRun(branch + "&nope"), nil, 404, "", ""},
		{"bad restart", "demo", "PUT", dryRun(branch) + "&restart=sometimes", nil, 400, "restart", ""},
		{"bad parallel", "demo", "PUT", dryRun(branch) + "&parallel=0", nil, 400, "parallel", ""},
		{"too parallel", "demo", "PUT", dryRun(branch) + "&parallel=1000", nil, 400, "parallel", ""},
		{"bad dry_run", "demo", "PUT", v1 + "/components/" + zk.ID + "/tree/master?dry_run=maybe", nil, 400, "dry_run", ""},

		// Upgrades.
		{"unknown version", "demo", "PUT", v1 + "/components/" + zk.ID, map[string]any{"version": "9.9.9"}, 400, "version", "3.4.6, 3.5.9"},
		{"same version", "demo", "PUT", v1 + "/components/" + zk.ID, map[string]any{"version": "3.4.6"}, 400, "version", "already"},
		{"unknown field", "demo", "PUT", v1 + "/components/" + zk.ID, map[string]any{"version": "3.5.9", "size": 9}, 400, "size", ""},
		{"upgrade, peer", "demo2", "PUT", v1 + "/components/" + zk.ID, map[string]any{"version": "3.5.9"}, 404, "", ""},

		// The script repo: admins only.
		{"scripts, admin", "admin", "GET", v1 + "/scripts/tree/master/components/zookeeper.json", nil, 200, "", ""},
		{"scripts folder, admin", "admin", "GET", v1 + "/scripts/tree/master/", nil, 200, "", ""},
		{"scripts, user", "demo", "GET", v1 + "/scripts/tree/master/components/zookeeper.json", nil, 403, "", ""},
		{"commit scripts, user", "demo", "POST", v1 + "/scripts/commits", map[string]any{"files": []any{map[string]any{"path": "x", "content": "y"}}}, 403, "", ""},
		{"commit scripts, bad path", "admin", "POST", v1 + "/scripts/commits", map[string]any{"files": []any{map[string]any{"path": "../x", "content": "y"}}}, 400, "files[0].path", ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			status, e := cfgCall(t, users[st.who], st.method, st.path, st.body, nil)
			if status != st.status {
				t.Fatalf("%s %s as %s: %d %v, want %d", st.method, st.path, st.who, status, e, st.status)
			}
			if e == nil {
				return
			}
			if st.field != "" && e.Field != st.field {
				t.Errorf("error field %q (%s), want %q", e.Field, e.Message, st.field)
			}
			if st.contains != "" && !strings.Contains(e.Message, st.contains) {
				t.Errorf("error %q does not say %q", e.Message, st.contains)
			}
		})
	}

	// What the reads and tags showed.
	var f configEntry
	cfgMust(t, demo, "GET", userFile, nil, &f)
	if f.Type != "file" || f.Content == nil || !strings.Contains(*f.Content, "client_port") || f.Ref != branch {
		t.Errorf("user.json after the admin's write: %+v", f)
	}
	var dir configEntry
	cfgMust(t, demo, "GET", treePath("master", "app/zookeeper"), nil, &dir)
	if dir.Type != "folder" || len(dir.Files) != 2 || dir.Files[0].Name != "3.4.6" || dir.Files[0].Type != "folder" {
		t.Errorf("app/zookeeper listing: %+v", dir)
	}
	var tl struct {
		Branch string `json:"branch"`
		Tags   []struct {
			Tag, Branch, Role, Ref, Commit string
			GitTag                         string `json:"git_tag"`
			Tagger                         struct{ Name string }
		} `json:"tags"`
	}
	cfgMust(t, demo, "GET", tags(branch), nil, &tl)
	if len(tl.Tags) != 1 || tl.Tags[0].Tag != "v1" || tl.Tags[0].Role != "user" || tl.Tags[0].GitTag != "user&perm-1@az1&v1" ||
		tl.Tags[0].Ref != "perm-1@az1&v1" || tl.Tags[0].Tagger.Name != "demo" {
		t.Errorf("tags of %s: %+v", branch, tl)
	}
	cfgMust(t, users["admin"], "GET", tags("master"), nil, &tl)
	if len(tl.Tags) != 1 || tl.Tags[0].GitTag != "admin&master&rel-1" {
		t.Errorf("tags of master: %+v", tl)
	}
	if st, e := cfgCall(t, demo, "DELETE", tags(branch)+"/v1", nil, nil); st != 204 {
		t.Errorf("delete own tag: %d %v", st, e)
	}
	if st, _ := cfgCall(t, demo, "GET", tags(branch)+"/v1", nil, nil); st != 404 {
		t.Errorf("deleted tag: %d, want 404", st)
	}

	// Nothing was applied by the dry runs or refused calls.
	for _, n := range componentNamed(t, demo, topo.ID, "zk").Nodes {
		if n.ConfigRef != zk.Nodes[0].ConfigRef || n.Status != "ACTIVE" {
			t.Errorf("node %s changed: %s at %s", n.Name, n.Status, n.ConfigRef)
		}
	}

	// History: every write is a commit by its caller, on its branch.
	gitDir := filepath.Join(s.DataDir, "git", "config.git")
	if log := gitLog(t, gitDir, branch); !strings.Contains(log, "demo\tset tick_time\n") || !strings.Contains(log, "admin\tset client_port, tick_time\n") {
		t.Errorf("git log of %s lacks the writes of demo and admin:\n%s", branch, log)
	}
	if m := gitLog(t, gitDir, "master"); !strings.Contains(m, "admin\tadmin setting request_log") {
		t.Errorf("git log of master lacks the admin's write:\n%s", m)
	}
	if out, err := exec.Command("git", "--git-dir", gitDir, "tag", "--list").CombinedOutput(); err != nil || !strings.Contains(string(out), "admin&master&rel-1") {
		t.Errorf("git tags: %s %v", out, err)
	}
}

// gitLog is `git log --format='%an<TAB>%s' ref` of a bare repo.
func gitLog(t *testing.T, gitDir, ref string) string {
	t.Helper()
	out, err := exec.Command("git", "--git-dir", gitDir, "log", "--format=%an%x09%s", ref).CombinedOutput()
	if err != nil {
		t.Fatalf("git log %s: %v\n%s", ref, err, out)
	}
	return string(out)
}
