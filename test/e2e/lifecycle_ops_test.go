package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/test/harness"
)

// TestLifecycleServicesAndCommands: services stop, start and restart with their status
// following in heartbeats (and a stop that would lose the quorum refused); guest
// commands on a node, a component (per-node timeout: answered nodes keep their results)
// and a topology, the legacy route, unknown and admin-only commands.
func TestLifecycleServicesAndCommands(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	ctx := context.Background()
	topo := lcCreate(t, c, lcTopology("ops-1", 3, 0, -1))
	zk := lcComp(t, topo, "zk")
	n1, n2, n3 := lcNode(t, zk, 1), lcNode(t, zk, 2), lcNode(t, zk, 3)
	service := func(n client.Node) string {
		var out struct {
			Node client.Node `json:"node"`
		}
		lcMust(t, c, "GET", lcAPI+"/nodes/"+n.ID, nil, &out)
		return out.Node.Services["zookeeper"]
	}

	lcSucceeded(t, lcStart(t, c, "DELETE", lcAPI+"/nodes/"+n1.ID+"/services", nil))
	harness.Eventually(t, 10*time.Second, "node 1's heartbeat says zookeeper stopped", func() bool { return service(n1) == "stopped" })
	if e := lcCall(t, c, "DELETE", lcAPI+"/nodes/"+n2.ID+"/services", nil, nil); e == nil || e.Status != 409 || !strings.Contains(e.Message, "majority") {
		t.Errorf("stopping a second member of three: %v, want 409 about the majority", e)
	}
	lcSucceeded(t, lcStart(t, c, "POST", lcAPI+"/nodes/"+n1.ID+"/services", nil))
	harness.Eventually(t, 10*time.Second, "node 1's heartbeat says zookeeper running", func() bool { return service(n1) == "running" })
	a := lcStart(t, c, "PUT", lcAPI+"/nodes/"+n2.ID+"/services?service=zookeeper", nil)
	lcSucceeded(t, a)
	if st, ok := lcStage(a, "zk", "restart"); !ok || st.NodesDone != 1 {
		t.Errorf("restart stage %+v", st)
	}
	if e := lcCall(t, c, "PUT", lcAPI+"/nodes/"+n2.ID+"/services?service=nginx", nil, nil); e == nil || e.Status != 400 || e.Field != "service" {
		t.Errorf("restart of an unknown service: %v, want 400 on service", e)
	}

	// A guest command on one node: exit status and output.
	var one struct {
		Result struct {
			Status     string `json:"status"`
			ExitStatus int    `json:"exit_status"`
			Output     string `json:"output"`
		} `json:"result"`
	}
	lcMust(t, c, "POST", lcAPI+"/nodes/"+n1.ID+"/commands", map[string]any{"command": "zk-cmd/ruok"}, &one)
	if one.Result.Status != "ok" || one.Result.ExitStatus != 0 || one.Result.Output != "ok" {
		t.Errorf("ruok: %+v", one.Result)
	}
	if st := lcState(t, s, n1); st.LastGuest != "zk-cmd/ruok" {
		t.Errorf("node 1 ran %q, want zk-cmd/ruok", st.LastGuest)
	}
	e := lcCall(t, c, "POST", lcAPI+"/nodes/"+n1.ID+"/commands", map[string]any{"command": "zk-cmd/nope"}, nil)
	if e == nil || e.Status != 400 || !strings.Contains(e.Message, "zk-cmd/srvr") || !strings.Contains(e.Message, "assist-cmd/list") {
		t.Errorf("unknown command: %v, want 400 listing the commands", e)
	}
	if e := lcCall(t, c, "POST", lcAPI+"/nodes/"+n1.ID+"/commands", map[string]any{"command": "admin-cmd/agent_info"}, nil); e == nil || e.Status != 403 {
		t.Errorf("admin command as a user: %v, want 403", e)
	}
	admin := s.Client(t, "admin")
	lcMust(t, admin, "POST", lcAPI+"/nodes/"+n1.ID+"/commands", map[string]any{"command": "admin-cmd/agent_info"}, &one)
	if one.Result.Status != "ok" {
		t.Errorf("admin command as admin: %+v", one.Result)
	}

	// On a component, with node 3 silent: the others' results stay, node 3 times out.
	s.Admin(t, "PUT", "/vms/"+n3.ServerID+"/agent", map[string]any{"silent": true})
	var group struct {
		Results []struct {
			Name, Status, Output string
		} `json:"results"`
		OK       int `json:"ok"`
		TimedOut int `json:"timed_out"`
	}
	start := time.Now()
	lcMust(t, c, "POST", lcAPI+"/components/"+zk.ID+"/commands", map[string]any{"command": "zk-cmd/stat", "timeout_seconds": 5}, &group)
	took := time.Since(start)
	s.Admin(t, "PUT", "/vms/"+n3.ServerID+"/agent", map[string]any{"silent": false})
	if group.OK != 2 || group.TimedOut != 1 || len(group.Results) != 3 {
		t.Errorf("component command with a silent node: %+v, want 2 ok and 1 timeout", group)
	}
	for _, r := range group.Results {
		want := "ok"
		if r.Name == n3.Name {
			want = "timeout"
		}
		if r.Status != want {
			t.Errorf("%s: %s, want %s", r.Name, r.Status, want)
		}
	}
	if took < 5*time.Second || took > 20*time.Second {
		t.Errorf("the call took %s; want about the 5 s timeout", took)
	}

	// On a topology, and through the legacy route by node name.
	harness.Eventually(t, 10*time.Second, "node 3 answers again", func() bool {
		lcMust(t, c, "POST", lcAPI+"/topologies/"+topo.ID+"/commands", map[string]any{"command": "assist-cmd/list", "timeout_seconds": 1}, &group)
		return group.OK == 3
	})
	lcMust(t, c, "POST", "/straas/guestcmd/"+zk.ID+"/"+n2.Name, map[string]any{"command": "zk-cmd/mntr", "args": "-v"}, &one)
	if one.Result.Status != "ok" || lcState(t, s, n2).LastGuest != "zk-cmd/mntr -v" {
		t.Errorf("legacy guestcmd: %+v, node ran %q", one.Result, lcState(t, s, n2).LastGuest)
	}
	if e := lcCall(t, c, "POST", "/straas/guestcmd/"+zk.ID+"/nobody", map[string]any{"command": "zk-cmd/ruok"}, nil); e == nil || e.Status != 404 {
		t.Errorf("legacy guestcmd to an unknown node: %v, want 404", e)
	}
	other := s.Client(t, "other")
	if e := lcCall(t, other, "POST", lcAPI+"/nodes/"+n1.ID+"/commands", map[string]any{"command": "zk-cmd/ruok"}, nil); e == nil || e.Status != 404 {
		t.Errorf("another tenant's command: %v, want 404", e)
	}
	_ = ctx
}

// lcUpload stores a file through the storage API (an octet-stream body).
func lcUpload(t *testing.T, c *client.Client, path string, data []byte) int {
	t.Helper()
	req, _ := http.NewRequest("POST", c.URL+lcAPI+"/storage/"+path, bytes.NewReader(data))
	req.Header.Set("X-Auth-Token", c.Token)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestLifecycleStorageFilesScriptsStormJar: the storage API (upload, list, download,
// delete, per tenant), files pushed to a component's nodes, script sync, and the legacy
// storm jar route.
func TestLifecycleStorageFilesScriptsStormJar(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, lcTopology("files-1", 1, 0, 1))
	zk, strm := lcComp(t, topo, "zk"), lcComp(t, topo, "strm")

	conf := []byte("tickTime=2000\n")
	if code := lcUpload(t, c, "swift/regions/az1/conf/zoo.extra", conf); code != 201 {
		t.Fatalf("upload: %d", code)
	}
	var list struct {
		Objects []struct {
			Path string `json:"path"`
			Size int64  `json:"size"`
		} `json:"objects"`
	}
	lcMust(t, c, "GET", lcAPI+"/storage/swift/regions/az1/conf/", nil, &list)
	if len(list.Objects) != 1 || list.Objects[0].Path != "conf/zoo.extra" || list.Objects[0].Size != int64(len(conf)) {
		t.Errorf("listing: %+v", list.Objects)
	}
	lcMust(t, s.Client(t, "other"), "GET", lcAPI+"/storage/swift/regions/az1/", nil, &list)
	if len(list.Objects) != 0 {
		t.Errorf("another tenant lists %+v", list.Objects)
	}
	if code := lcUpload(t, c, "swift/regions/nowhere/x", conf); code != 400 {
		t.Errorf("upload to an unknown region: %d, want 400", code)
	}

	// Files: every node of the component writes the object at the target path.
	a := lcStart(t, c, "POST", lcAPI+"/nodes/files", map[string]any{"scope": "component", "items": []string{zk.ID},
		"container": "conf", "filename": "zoo.extra", "target_path": "/etc/zookeeper/zoo.extra"})
	lcSucceeded(t, a)
	for _, n := range zk.Nodes {
		got, err := os.ReadFile(filepath.Join(lcVMDir(t, s, n.ServerID), "files", "etc", "zookeeper", "zoo.extra"))
		if err != nil || !bytes.Equal(got, conf) {
			t.Errorf("node %s: %q %v, want the uploaded file", n.Name, got, err)
		}
	}
	if e := lcCall(t, c, "POST", lcAPI+"/nodes/files", map[string]any{"scope": "component", "items": []string{zk.ID},
		"container": "conf", "filename": "missing", "target_path": "/etc/x"}, nil); e == nil || e.Status != 400 || e.Field != "filename" {
		t.Errorf("files of a missing object: %v, want 400 on filename", e)
	}
	if e := lcCall(t, s.Client(t, "other"), "POST", lcAPI+"/nodes/files", map[string]any{"scope": "component", "items": []string{zk.ID},
		"container": "conf", "filename": "zoo.extra", "target_path": "/etc/x"}, nil); e == nil || e.Status != 404 {
		t.Errorf("files on another tenant's component: %v, want 404", e)
	}

	// Script sync: every node fetches the script repo's current commit.
	var sync struct {
		Action client.ActionRef `json:"action"`
		Nodes  int              `json:"nodes"`
		Ref    string           `json:"scripts_ref"`
	}
	lcMust(t, c, "PUT", lcAPI+"/nodes/scripts", map[string]any{"scope": "topology", "items": []string{topo.ID}}, &sync)
	lcSucceeded(t, harness.WaitAction(t, c, sync.Action.ID, 60*time.Second))
	if sync.Nodes != 3 || len(sync.Ref) != 40 {
		t.Errorf("script sync answer %+v", sync)
	}
	for _, comp := range lcTopo(t, c, topo.ID).Components {
		for _, n := range comp.Nodes {
			if st := lcState(t, s, n); st.ScriptsRef != sync.Ref {
				t.Errorf("node %s has scripts %s, want %s", n.Name, st.ScriptsRef, sync.Ref)
			}
		}
	}

	// With apply, a configuration change of each component follows the sync.
	a = lcStart(t, c, "PUT", lcAPI+"/nodes/scripts", map[string]any{"scope": "component", "items": []string{zk.ID, strm.ID}, "apply": true})
	lcSucceeded(t, a)
	for _, comp := range []string{"zk", "strm"} {
		if st, ok := lcStage(a, comp, "config_change/done"); !ok || st.Status != "SUCCEEDED" {
			t.Errorf("script sync with apply: no configuration change of %s:\n%s", comp, lcStages(a))
		}
	}

	// Storm jar: nimbus fetches the jar and runs storm jar.
	jar := []byte("PK\x03\x04 a jar")
	if code := lcUpload(t, c, "swift/regions/az1/jars/wc.jar", jar); code != 201 {
		t.Fatalf("upload jar: %d", code)
	}
	var sj struct {
		Nimbus string `json:"nimbus"`
		Jar    string `json:"jar"`
		Upload struct {
			Status string `json:"status"`
		} `json:"upload"`
		Submit struct {
			Status string `json:"status"`
		} `json:"submit"`
	}
	lcMust(t, c, "POST", "/straas/stormjar/"+strm.ID, map[string]any{"container": "jars", "filename": "wc.jar",
		"main_class": "org.example.WordCount", "topology_name": "wordcount", "args": []string{"10"}}, &sj)
	nimbus := lcNode(t, strm, 1)
	if sj.Nimbus != nimbus.Name || sj.Upload.Status != "ok" || sj.Submit.Status != "ok" {
		t.Fatalf("storm jar: %+v", sj)
	}
	st := lcState(t, s, nimbus)
	if st.LastGuest != "storm-cmd/storm_jar /opt/straas/jars/wc.jar org.example.WordCount wordcount 10" {
		t.Errorf("nimbus ran %q", st.LastGuest)
	}
	if got, _ := os.ReadFile(filepath.Join(lcVMDir(t, s, nimbus.ServerID), "files", "opt", "straas", "jars", "wc.jar")); !bytes.Equal(got, jar) {
		t.Errorf("jar on nimbus: %q", got)
	}
	if e := lcCall(t, c, "POST", "/straas/stormjar/"+zk.ID, map[string]any{"container": "jars", "filename": "wc.jar",
		"main_class": "a.B", "topology_name": "x"}, nil); e == nil || e.Status != 400 {
		t.Errorf("storm jar on zookeeper: %v, want 400", e)
	}

	// Download through the signed URL of a listing (no token), and delete.
	var signed struct {
		Objects []struct {
			Path string `json:"path"`
			URL  string `json:"url"`
		} `json:"objects"`
	}
	lcMust(t, c, "GET", lcAPI+"/storage/swift/regions/az1/jars/wc.jar?urls=true", nil, &signed)
	if len(signed.Objects) != 1 || signed.Objects[0].URL == "" {
		t.Fatalf("listing with urls: %+v", signed.Objects)
	}
	resp, err := http.Get(signed.Objects[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(got, jar) {
		t.Errorf("download: %d %q", resp.StatusCode, got)
	}
	resp, err = http.Get(strings.Replace(signed.Objects[0].URL, "signature=", "signature=00", 1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Errorf("a tampered URL: %s, want 403", resp.Status)
	}
	lcMust(t, c, "DELETE", lcAPI+"/storage/swift/regions/az1/jars/wc.jar", nil, nil)
	lcMust(t, c, "GET", lcAPI+"/storage/swift/regions/az1/jars/", nil, &list)
	if len(list.Objects) != 0 {
		t.Errorf("after delete: %+v", list.Objects)
	}
}
