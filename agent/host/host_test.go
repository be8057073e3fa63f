package host_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/straas/straas/agent/host"
	"github.com/straas/straas/shared/agentproto"
)

// scripts lays out a tiny script repo: a "zk" role at version 1.0 whose service is a
// marker file.
var scripts = map[string]string{
	"cmd/zk/1.0/install.sh":      "echo \"installing $1 $2\"\n",
	"cmd/zk/1.0/runpuppet.sh":    "test -f \"$1/puppet/manifests/zk/site.pp\" || { echo 'no site.pp' >&2; exit 4; }\ntouch \"$STRAAS_SCRIPT_BASE/running\"\necho applied\n",
	"cmd/zk/1.0/validate.sh":     "test -f \"$1/running\" || { echo 'port 2181 closed' >&2; exit 1; }\necho 'port 2181 open'\n",
	"cmd/kafka/2.0/install.json": `{"package": "kafka", "version": "2.0-1", "verify": "echo verified {name} {version}"}`,
	"cmd/zk/1.0/service.sh": `case "$1" in
start|restart) touch "$STRAAS_SCRIPT_BASE/running" ;;
stop) rm -f "$STRAAS_SCRIPT_BASE/running" ;;
status) test -f "$STRAAS_SCRIPT_BASE/running" || exit 3 ;;
esac
echo "$1 done"
`,
	"guestcmds/zk-cmd/echo":       "echo \"args: $* ns=$STRAAS_PARAM_NAMESPACE\"\n",
	"guestcmds/admin-cmd/sleep":   "sleep 30\n",
	"guestcmds/admin-cmd/spew":    "head -c 200000 /dev/zero | tr '\\0' x\n",
	"guestcmds/admin-cmd/orphans": "sleep 30 &\nsleep 30\n",
}

func newBackend(t *testing.T) (*host.Backend, string) {
	t.Helper()
	dir := t.TempDir()
	base := filepath.Join(dir, "scripts")
	for p, body := range scripts {
		path := filepath.Join(base, p)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o755)
		if strings.HasSuffix(p, "validate.sh") {
			mode = 0o644 // not executable: run through the shell
		}
		if strings.HasSuffix(p, ".json") {
			body = strings.TrimPrefix(body, "#!/bin/sh\n")
		} else {
			body = "#!/bin/sh\n" + body
		}
		if err := os.WriteFile(path, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	b, err := host.New(host.Config{ScriptsDir: base, Hostname: "h1", VerifyCommand: "test {name} = zookeeper"})
	if err != nil {
		t.Fatal(err)
	}
	return b, base
}

func TestHostCommands(t *testing.T) {
	b, base := newBackend(t)
	ctx := context.Background()
	steps := []struct {
		cmd    agentproto.Command
		ok     bool
		exit   int
		output string
		errSub string
	}{
		{agentproto.Command{Kind: agentproto.CmdConfigure, Role: "zk", Version: "1.0"}, false, 4, "", "exit status 4"},
		{agentproto.Command{Kind: agentproto.CmdInstall, Role: "zk", Type: "zookeeper", Version: "1.0"}, true, 0, "installing zookeeper 1.0", ""},
		{agentproto.Command{Kind: agentproto.CmdInstall, Role: "zk", Package: &agentproto.Package{Name: "other", Version: "1.0"}}, false, 1, "installing other 1.0", "verification failed"},
		{agentproto.Command{Kind: agentproto.CmdInstall, Type: "zookeeper", Version: "9.9", Params: map[string]string{"install_command": "echo E: no {name}={version}; exit 100"}}, false, 100, "E: no zookeeper=9.9", "exit status 100"},
		{agentproto.Command{Kind: agentproto.CmdInstall, Type: "zookeeper", Version: "1.0; rm -rf /"}, false, 2, "", "not a valid version"},
		{agentproto.Command{Kind: agentproto.CmdInstall, Role: "kafka", Type: "kafka", Version: "2.0", Params: map[string]string{"install_command": "echo apt {name}={version}"}}, true, 0, "apt kafka=2.0-1\nverified kafka 2.0-1", ""},
		{agentproto.Command{Kind: agentproto.CmdInstall, Role: "zk", Type: "zookeeper", Version: "1.0"}, true, 0, "installing zookeeper 1.0", ""},
		{agentproto.Command{Kind: agentproto.CmdValidate}, false, 1, "port 2181 closed", ""},
		{agentproto.Command{Kind: agentproto.CmdPreConfigure, Sections: agentproto.Sections{"zookeeper": {"client_port": 2181.0}}}, true, 0, "site.pp", ""},
		{agentproto.Command{Kind: agentproto.CmdConfigure, Ref: "zk@az1&t1"}, true, 0, "applied", ""},
		{agentproto.Command{Kind: agentproto.CmdValidate}, true, 0, "port 2181 open", ""},
		{agentproto.Command{Kind: agentproto.CmdStop}, true, 0, "stop done", ""},
		{agentproto.Command{Kind: agentproto.CmdValidate}, false, 1, "", ""},
		{agentproto.Command{Kind: agentproto.CmdStart}, true, 0, "start done", ""},
		{agentproto.Command{Kind: agentproto.CmdGuest, Command: "zk-cmd/echo", Args: "create /kafka", Params: map[string]string{"namespace": "kafka"}}, true, 0, "args: create /kafka ns=kafka", ""},
		{agentproto.Command{Kind: agentproto.CmdGuest, Command: "zk-cmd/missing"}, false, 127, "", "no such file"},
		{agentproto.Command{Kind: agentproto.CmdGuest, Command: "../../etc/passwd"}, false, 127, "", "not a valid name"},
		{agentproto.Command{Kind: agentproto.CmdDrain}, true, 0, "nothing to drain", ""},
		{agentproto.Command{Kind: "frobnicate"}, false, 2, "", "unknown command kind"},
	}
	for i, s := range steps {
		o := b.Exec(ctx, &s.cmd)
		if o.OK != s.ok || o.ExitStatus != s.exit || !strings.Contains(o.Output, s.output) || !strings.Contains(o.Error, s.errSub) {
			t.Fatalf("step %d (%s): outcome = %+v; want ok=%v exit=%d output~%q error~%q", i, s.cmd.Kind, o, s.ok, s.exit, s.output, s.errSub)
		}
	}
	pp, err := os.ReadFile(filepath.Join(base, "puppet", "manifests", "zk", "site.pp"))
	if err != nil || !strings.Contains(string(pp), "client_port => 2181,") {
		t.Fatalf("site.pp = %q, %v", pp, err)
	}
	st := b.Status(ctx)
	if st.Installed != "1.0" || st.ConfigRef != "zk@az1&t1" || st.Services["zk"] != "running" {
		t.Fatalf("status = %+v", st)
	}
	if _, ok := st.Metrics["disk"]; !ok {
		t.Fatalf("no disk metric in %v", st.Metrics)
	}
	// Role and version survive a restart of the agent.
	b2, err := host.New(host.Config{ScriptsDir: base})
	if err != nil {
		t.Fatal(err)
	}
	if st := b2.Status(ctx); st.Installed != "1.0" || st.Services["zk"] != "running" {
		t.Fatalf("status after reload = %+v", st)
	}
}

func TestHostTimeoutsAndOutput(t *testing.T) {
	b, _ := newBackend(t)
	for _, name := range []string{"admin-cmd/sleep", "admin-cmd/orphans"} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		start := time.Now()
		o := b.Exec(ctx, &agentproto.Command{Kind: agentproto.CmdGuest, Command: name})
		cancel()
		if o.OK || o.ExitStatus != -1 || !strings.Contains(o.Error, "timed out") {
			t.Fatalf("%s: outcome = %+v", name, o)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s: took %v to stop", name, d)
		}
	}
	o := b.Exec(context.Background(), &agentproto.Command{Kind: agentproto.CmdGuest, Command: "admin-cmd/spew"})
	if !o.OK || len(o.Output) > agentproto.MaxOutput || !strings.Contains(o.Output, "truncated") {
		t.Fatalf("spew: ok=%v len(output)=%d", o.OK, len(o.Output))
	}
}

func TestHostPutFile(t *testing.T) {
	b, _ := newBackend(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/blobs/app.jar" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("jar bytes"))
	}))
	defer srv.Close()
	target := filepath.Join(t.TempDir(), "opt", "app.jar")
	o := b.Exec(context.Background(), &agentproto.Command{Kind: agentproto.CmdPutFile, File: &agentproto.File{Key: "app.jar", URL: srv.URL + "/blobs/app.jar", TargetPath: target}})
	if !o.OK {
		t.Fatalf("put_file: %+v", o)
	}
	if got, _ := os.ReadFile(target); string(got) != "jar bytes" {
		t.Fatalf("file = %q", got)
	}
	for _, f := range []*agentproto.File{
		{Key: "x", URL: srv.URL + "/missing", TargetPath: target},
		{Key: "x", URL: srv.URL + "/blobs/app.jar", TargetPath: "relative/path"},
		{Key: "x", TargetPath: target},
	} {
		if o := b.Exec(context.Background(), &agentproto.Command{Kind: agentproto.CmdPutFile, File: f}); o.OK {
			t.Fatalf("put_file %+v succeeded", f)
		}
	}
}

func TestHostSyncScripts(t *testing.T) {
	// An upstream script repo with a tag v1 and a later commit on master.
	upstream := t.TempDir()
	repo, err := git.PlainInit(upstream, false)
	if err != nil {
		t.Fatal(err)
	}
	wt, _ := repo.Worktree()
	commit := func(content string) {
		t.Helper()
		path := filepath.Join(upstream, "guestcmds", "assist-cmd", "version")
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte("#!/bin/sh\necho "+content+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add("guestcmds"); err != nil {
			t.Fatal(err)
		}
		h, err := wt.Commit(content, &git.CommitOptions{Author: &object.Signature{Name: "t", Email: "t@x", When: time.Now()}})
		if err != nil {
			t.Fatal(err)
		}
		if content == "one" {
			if _, err := repo.CreateTag("v1", h, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	commit("one")
	commit("two")
	head, _ := repo.Head()
	branch := head.Name().Short()

	base := filepath.Join(t.TempDir(), "scripts")
	b, err := host.New(host.Config{ScriptsDir: base, ScriptsRepo: upstream})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	version := &agentproto.Command{Kind: agentproto.CmdGuest, Command: "assist-cmd/version"}
	for _, step := range []struct{ ref, want string }{{"v1", "one"}, {branch, "two"}, {"v1", "one"}} {
		if o := b.Exec(ctx, &agentproto.Command{Kind: agentproto.CmdSyncScripts, Ref: step.ref}); !o.OK {
			t.Fatalf("sync %s: %+v", step.ref, o)
		}
		if o := b.Exec(ctx, version); !o.OK || strings.TrimSpace(o.Output) != step.want {
			t.Fatalf("after sync to %s: %+v, want output %q", step.ref, o, step.want)
		}
		if st := b.Status(ctx); st.ScriptsRef != step.ref {
			t.Fatalf("scripts ref = %q, want %q", st.ScriptsRef, step.ref)
		}
	}
	if o := b.Exec(ctx, &agentproto.Command{Kind: agentproto.CmdSyncScripts, Ref: "nope"}); o.OK || !strings.Contains(o.Error, "unknown ref") {
		t.Fatalf("sync to an unknown ref: %+v", o)
	}
}
