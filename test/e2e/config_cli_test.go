package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/test/harness"
)

// TestConfigCLI drives the configuration through the CLI as a user would: straas config
// get|put|tag|tags|apply|untag and straas component upgrade.
func TestConfigCLI(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo, act := create(t, c, zkBody("cli-1", 1), 60*time.Second)
	if act.Status != "SUCCEEDED" {
		t.Fatalf("creation: %s %+v", act.Status, act.Error)
	}
	zk := componentNamed(t, c, topo.ID, "zk")
	cli := s.CLI(t, "STRAAS_TOKEN="+c.Token)
	run := func(wantOK bool, args ...string) string {
		t.Helper()
		out, err := cli(args...)
		if (err == nil) != wantOK {
			t.Fatalf("straas %s: %v (want success %v)\n%s", strings.Join(args, " "), err, wantOK, out)
		}
		return string(out)
	}
	expect := func(out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
	}

	expect(run(true, "config", "get", "master", "app/zookeeper"), "3.4.6", "3.5.9", "folder")
	expect(run(true, "config", "get", "master", "app/zookeeper/3.4.6/default.json"), `"key": "tick_time"`)
	branch := topo.ConfigBranch
	user := `{"type":"ini","content":[{"section":"zookeeper","options":[{"key":"tick_time","value":2222}]}]}`
	expect(run(true, "config", "put", branch, "app/zookeeper/3.4.6/user.json", "--content", user, "-m", "cli change"), "committed app/zookeeper/3.4.6/user.json to "+branch)
	expect(run(true, "config", "get", branch, "app/zookeeper/3.4.6/user.json"), "2222")
	expect(run(false, "config", "put", branch, "app/zookeeper/3.4.6/user.json", "--content",
		`{"type":"ini","content":[{"section":"zookeeper","options":[{"key":"client_port","value":1}]}]}`), "not user-changeable: zookeeper.client_port")
	expect(run(true, "config", "tag", branch, "t1", "-m", "from the cli"), "tagged "+branch+"&t1", "user&"+branch+"&t1")
	expect(run(true, "config", "tags", branch), "t1", "user", "from the cli")
	var tags struct {
		Tags []struct{ Tag string } `json:"tags"`
	}
	if err := json.Unmarshal([]byte(run(true, "-o", "json", "config", "tags", branch)), &tags); err != nil || len(tags.Tags) != 1 {
		t.Errorf("config tags -o json: %v %+v", err, tags)
	}
	expect(run(true, "config", "apply", zk.ID, branch, "--dry-run"), "1 nodes to roll (1 restarted)", "zookeeper.tick_time: 2000 -> 2222")
	expect(run(true, "config", "apply", zk.ID, branch, "--wait"), "SUCCEEDED", "config_change/"+zk.Nodes[0].Name)
	if n := componentNamed(t, c, topo.ID, "zk").Nodes[0]; n.Config.Sections["zookeeper"]["tick_time"] != float64(2222) {
		t.Errorf("after config apply: tick_time %v", n.Config.Sections["zookeeper"]["tick_time"])
	}
	expect(run(true, "config", "untag", branch, "t1"), "deleted tag t1")
	expect(run(true, "component", "upgrade", zk.ID, "3.5.9", "--wait"), "install 3.5.9", "SUCCEEDED")
	if got := componentNamed(t, c, topo.ID, "zk"); got.Version != "3.5.9" || got.Nodes[0].InstalledVersion != "3.5.9" {
		t.Errorf("after component upgrade: %s, node at %s", got.Version, got.Nodes[0].InstalledVersion)
	}
}
