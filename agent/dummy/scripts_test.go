package dummy_test

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/straas/straas/agent/dummy"
	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/errs"
)

// fakeRepo is a script repo: files by ref, then path. It records what was read.
type fakeRepo struct {
	refs map[string]map[string]string
	err  error // returned for every read when set

	mu    sync.Mutex
	reads []string // "ref:path"
}

func (r *fakeRepo) read(ctx context.Context, ref, path string) ([]byte, error) {
	r.mu.Lock()
	r.reads = append(r.reads, ref+":"+path)
	r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	files, ok := r.refs[ref]
	if !ok {
		return nil, errs.NotFoundf("ref %q not found", ref)
	}
	content, ok := files[path]
	if !ok {
		return nil, errs.NotFoundf("%s not found at %s", path, ref)
	}
	return []byte(content), nil
}

// zkFiles are the scripts of zookeeper 3.5.9, with edits (a "" value removes a file).
func zkFiles(edits map[string]string) map[string]string {
	files := map[string]string{
		"components/zookeeper.json":            `{"type": "zookeeper", "validate_ports": {"zookeeper": [3888, 2181, 2888]}}`,
		"cmd/zookeeper/3.5.9/install.json":     `{"package": "zookeeper", "version": "3.5.9-1"}`,
		"cmd/zookeeper/3.5.9/runpuppet.sh":     "puppet apply ...\n",
		"cmd/zookeeper/3.5.9/validate.sh":      "nc -z localhost 2181\n",
		"guestcmds/zk-cmd/ruok":                "echo ruok | nc localhost 2181\n",
		"guestcmds/zk-cmd/create_namespace":    "zkCli.sh create \"$1\" ''\n",
		"puppet/manifests/zookeeper/site.pp":   "",
		"pre_config/zookeeper/pre_config.json": "{}",
	}
	maps.Copy(files, edits)
	maps.DeleteFunc(files, func(_, v string) bool { return v == "" })
	return files
}

var (
	zkInstall  = agentproto.Command{Kind: agentproto.CmdInstall, Role: "zookeeper", Type: "zookeeper", Version: "3.5.9", Package: &agentproto.Package{Name: "zookeeper", Version: "3.5.9-1"}}
	zkPre      = agentproto.Command{Kind: agentproto.CmdPreConfigure, SitePP: "class { 'zookeeper': }\n"}
	zkConfig   = agentproto.Command{Kind: agentproto.CmdConfigure, Ref: "c1"}
	zkValidate = agentproto.Command{Kind: agentproto.CmdValidate}
)

func guest(command string) agentproto.Command {
	return agentproto.Command{Kind: agentproto.CmdGuest, Command: command}
}

func syncTo(ref string) agentproto.Command {
	return agentproto.Command{Kind: agentproto.CmdSyncScripts, Ref: ref}
}

type step struct {
	cmd  agentproto.Command
	ok   bool
	want string // in the output (ok) or the error
	exit int    // checked when not 0
}

func TestOutcomesFromTheScriptRepo(t *testing.T) {
	setUp := []step{{zkInstall, true, "Setting up zookeeper (3.5.9-1)", 0}, {zkPre, true, "site.pp", 0}, {zkConfig, true, "Applied catalog", 0}}
	steps := func(more ...step) []step { return append(append([]step(nil), setUp...), more...) }
	tests := []struct {
		name  string
		repo  *fakeRepo // nil: no reader
		ref   string    // the node's scripts ref at boot
		knobs dummy.Knobs
		steps []step
		check func(t *testing.T, st dummy.State)
	}{
		{
			name: "every script present", repo: &fakeRepo{refs: map[string]map[string]string{"r1": zkFiles(nil)}}, ref: "r1",
			steps: steps(
				step{zkValidate, true, "zookeeper: ports 2181, 2888, 3888 open", 0},
				step{guest("zk-cmd/ruok"), true, "ok", 0},
			),
			check: func(t *testing.T, st dummy.State) {
				if len(st.Ports) != 3 || st.Ports[0] != 2181 || st.LastGuest != "zk-cmd/ruok" {
					t.Fatalf("state = %+v", st)
				}
			},
		},
		{
			name: "no reader: as before", ref: "r1",
			steps: steps(step{zkValidate, true, "port check ok", 0}, step{guest("zk-cmd/anything"), true, "ok", 0}),
		},
		{
			name: "install.json missing", repo: &fakeRepo{refs: map[string]map[string]string{"r1": zkFiles(map[string]string{"cmd/zookeeper/3.5.9/install.json": ""})}}, ref: "r1",
			steps: []step{{zkInstall, false, "install: cmd/zookeeper/3.5.9/install.json is missing from the scripts at r1", 1}},
			check: func(t *testing.T, st dummy.State) {
				if st.Installed != nil {
					t.Fatalf("installed %+v after a failed install", st.Installed)
				}
			},
		},
		{
			name: "install.json names another package", repo: &fakeRepo{refs: map[string]map[string]string{"r1": zkFiles(map[string]string{"cmd/zookeeper/3.5.9/install.json": `{"package": "zookeeperd", "version": "3.5.9-1"}`})}}, ref: "r1",
			steps: []step{{zkInstall, false, `names package "zookeeperd", not "zookeeper"`, 100}},
		},
		{
			name: "install.json broken", repo: &fakeRepo{refs: map[string]map[string]string{"r1": zkFiles(map[string]string{"cmd/zookeeper/3.5.9/install.json": `{"pkg": 1}`})}}, ref: "r1",
			steps: []step{{zkInstall, false, `want {"package", "version"}`, 2}},
		},
		{
			name: "a command without a package installs install.json's", repo: &fakeRepo{refs: map[string]map[string]string{"r1": zkFiles(nil)}}, ref: "r1",
			steps: []step{{agentproto.Command{Kind: agentproto.CmdInstall, Role: "zookeeper", Type: "zookeeper", Version: "3.5.9"}, true, "Setting up zookeeper (3.5.9-1)", 0}},
			check: func(t *testing.T, st dummy.State) {
				if st.Installed == nil || st.Installed.Version != "3.5.9-1" || st.Version != "3.5.9" {
					t.Fatalf("state = %+v", st)
				}
			},
		},
		{
			name: "runpuppet.sh missing", repo: &fakeRepo{refs: map[string]map[string]string{"r1": zkFiles(map[string]string{"cmd/zookeeper/3.5.9/runpuppet.sh": ""})}}, ref: "r1",
			steps: []step{setUp[0], setUp[1], {zkConfig, false, "configure: cmd/zookeeper/3.5.9/runpuppet.sh is missing from the scripts at r1", 1}},
			check: func(t *testing.T, st dummy.State) {
				if st.Configured || st.ConfigRef != "" {
					t.Fatalf("configured without runpuppet.sh: %+v", st)
				}
			},
		},
		{
			name: "validate.sh missing", repo: &fakeRepo{refs: map[string]map[string]string{"r1": zkFiles(map[string]string{"cmd/zookeeper/3.5.9/validate.sh": ""})}}, ref: "r1",
			steps: steps(step{zkValidate, false, "validate: cmd/zookeeper/3.5.9/validate.sh is missing from the scripts at r1", 1}),
			check: func(t *testing.T, st dummy.State) {
				if len(st.Ports) != 0 {
					t.Fatalf("ports %v opened by a failed validate", st.Ports)
				}
			},
		},
		{
			name: "a type without ports", repo: &fakeRepo{refs: map[string]map[string]string{"r1": zkFiles(map[string]string{"components/zookeeper.json": ""})}}, ref: "r1",
			steps: steps(step{zkValidate, true, "zookeeper: port check ok", 0}),
		},
		{
			name: "guest command missing", repo: &fakeRepo{refs: map[string]map[string]string{"r1": zkFiles(nil)}}, ref: "r1",
			steps: []step{{guest("zk-cmd/nope"), false, "guestcmd: zk-cmd/nope: no such command", 127}},
			check: func(t *testing.T, st dummy.State) {
				if st.LastGuest != "" {
					t.Fatalf("ran %q", st.LastGuest)
				}
			},
		},
		{
			name: "a knob's fault wins over the files", repo: &fakeRepo{refs: map[string]map[string]string{"r1": zkFiles(map[string]string{"cmd/zookeeper/3.5.9/validate.sh": ""})}}, ref: "r1",
			knobs: dummy.Knobs{Fail: map[string]string{agentproto.CmdValidate: "port 2181 closed"}},
			steps: steps(step{zkValidate, false, "port 2181 closed", 0}),
		},
		{
			name: "a knob's install fault wins over the files", repo: &fakeRepo{refs: map[string]map[string]string{"r1": zkFiles(nil)}}, ref: "r1",
			knobs: dummy.Knobs{FailInstall: []dummy.Package{{Version: "3.5.9-1"}}},
			steps: []step{{zkInstall, false, "E: Version '3.5.9-1' for 'zookeeper' was not found", 100}},
		},
		{
			name: "an unknown ref has no scripts", repo: &fakeRepo{refs: map[string]map[string]string{"r1": zkFiles(nil)}}, ref: "gone",
			steps: []step{{zkInstall, false, "install.json is missing from the scripts at gone", 1}},
		},
		{
			name: "sync_scripts moves the ref the files are read at",
			repo: &fakeRepo{refs: map[string]map[string]string{
				"r1": zkFiles(map[string]string{"cmd/zookeeper/3.5.9/validate.sh": ""}),
				"r2": zkFiles(nil),
			}}, ref: "r1",
			steps: steps(
				step{zkValidate, false, "validate.sh is missing from the scripts at r1", 0},
				step{syncTo("r2"), true, "scripts at r2", 0},
				step{zkValidate, true, "ports 2181, 2888, 3888 open", 0},
			),
			check: func(t *testing.T, st dummy.State) {
				if st.ScriptsRef != "r2" {
					t.Fatalf("scripts ref = %q", st.ScriptsRef)
				}
			},
		},
		{
			name: "the repo cannot be read", repo: &fakeRepo{err: errs.E(errs.Unavailable, "read scripts", "git is down")}, ref: "r1",
			steps: []step{{zkInstall, false, "install: read cmd/zookeeper/3.5.9/install.json at r1: read scripts: git is down", 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := dummy.Config{Dir: t.TempDir(), Hostname: "zk-1", ScriptsRef: tc.ref, Profile: dummy.NewProfile(tc.knobs)}
			if tc.repo != nil {
				cfg.Scripts = tc.repo.read
			}
			b, err := dummy.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				o := b.Exec(context.Background(), &s.cmd)
				text := o.Output
				if !o.OK {
					text = o.Error
				}
				if o.OK != s.ok || !strings.Contains(text, s.want) || (s.exit != 0 && o.ExitStatus != s.exit) {
					t.Fatalf("step %d (%s): ok=%v exit=%d %q; want ok=%v exit=%d containing %q", i, s.cmd.Kind, o.OK, o.ExitStatus, text, s.ok, s.exit, s.want)
				}
			}
			if tc.check != nil {
				tc.check(t, b.State())
			}
		})
	}
}

func TestScriptsAreReadAtTheNodesRef(t *testing.T) {
	repo := &fakeRepo{refs: map[string]map[string]string{"abcdef0123456789abcdef0123456789abcdef01": zkFiles(nil)}}
	b, err := dummy.New(dummy.Config{Dir: t.TempDir(), ScriptsRef: "abcdef0123456789abcdef0123456789abcdef01", Scripts: repo.read})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []agentproto.Command{zkInstall, zkPre, zkConfig, zkValidate, guest("zk-cmd/create_namespace")} {
		if o := b.Exec(ctx, &c); !o.OK {
			t.Fatalf("%s: %+v", c.Kind, o)
		}
	}
	want := []string{
		"cmd/zookeeper/3.5.9/install.json", "cmd/zookeeper/3.5.9/runpuppet.sh",
		"cmd/zookeeper/3.5.9/validate.sh", "components/zookeeper.json", "guestcmds/zk-cmd/create_namespace",
	}
	repo.mu.Lock()
	reads := append([]string(nil), repo.reads...)
	repo.mu.Unlock()
	got := map[string]bool{}
	for _, r := range reads {
		ref, p, _ := strings.Cut(r, ":")
		if ref != "abcdef0123456789abcdef0123456789abcdef01" {
			t.Errorf("read %s at %q, want the node's ref", p, ref)
		}
		got[p] = true
	}
	for _, p := range want {
		if !got[p] {
			t.Errorf("%s was not read (reads: %v)", p, reads)
		}
	}
	if len(got) != len(want) {
		t.Errorf("read %v, want exactly %v", reads, want)
	}
	// Messages shorten a commit hash.
	o := b.Exec(ctx, &agentproto.Command{Kind: agentproto.CmdGuest, Command: "zk-cmd/nope"})
	if o.OK || !strings.Contains(o.Error, "not in the scripts at abcdef012345)") {
		t.Fatalf("missing guest command: %+v", o)
	}
}

func TestInjectedMetrics(t *testing.T) {
	ctx := context.Background()
	p := dummy.NewProfile(dummy.Knobs{Metrics: map[string]float64{"cpu": 95, "requests_per_second": 1200}})
	b, err := dummy.New(dummy.Config{Dir: t.TempDir(), Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		set    func()
		metric string
		want   float64 // -1: simulated (0 < v < 100)
	}{
		{"fleet-wide cpu", func() {}, "cpu", 95},
		{"an app-specific metric", func() {}, "requests_per_second", 1200},
		{"others stay simulated", func() {}, "mem", -1},
		{"a node's own knobs win", func() { b.SetKnobs(&dummy.Knobs{Metrics: map[string]float64{"cpu": 10}}) }, "cpu", 10},
		{"cleared: simulated again", func() { b.SetKnobs(nil); p.Set(dummy.Knobs{}) }, "cpu", -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.set()
			v, ok := b.Status(ctx).Metrics[tc.metric]
			switch {
			case tc.want == -1 && (!ok || v <= 0 || v >= 100 || v == 95 || v == 10):
				t.Fatalf("%s = %v (present %v), want a simulated value", tc.metric, v, ok)
			case tc.want != -1 && v != tc.want:
				t.Fatalf("%s = %v, want %v", tc.metric, v, tc.want)
			}
		})
	}
	for _, bad := range []map[string]float64{{"cpu": 101}, {"mem": -1}, {"disk": 250}} {
		if err := (&dummy.Knobs{Metrics: bad}).Validate(); !errs.Is(err, errs.Invalid) {
			t.Errorf("metrics %v: %v, want Invalid", bad, err)
		}
	}
	if err := (&dummy.Knobs{Metrics: map[string]float64{"cpu": 100, "queue_depth": 5000}}).Validate(); err != nil {
		t.Fatal(err)
	}
}
