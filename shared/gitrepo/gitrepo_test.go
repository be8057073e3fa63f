package gitrepo

import (
	"context"
	"io/fs"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straas/straas/defaults"
	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
)

var t0 = time.Date(2026, 5, 6, 10, 0, 0, 0, time.UTC)

func newRepos(t *testing.T) (*Repos, string) {
	t.Helper()
	dir := t.TempDir()
	r, err := Open(context.Background(), Options{Dir: dir, Logger: quietLogger(), Clock: clock.NewFake(t0)})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return r, dir
}

func fsck(t *testing.T, bare string) {
	t.Helper()
	gitCmd(t, "", "--git-dir", bare, "fsck", "--strict", "--no-progress")
}

func TestOpenSeedsOnce(t *testing.T) {
	ctx := context.Background()
	r, dir := newRepos(t)
	cfg1, _ := r.ResolveRef(ctx, Master)
	scr1, _ := r.ScriptsRef(ctx)

	// A restart opens the same directory: nothing is seeded or committed again.
	r2, err := Open(ctx, Options{Dir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	cfg2, _ := r2.ResolveRef(ctx, Master)
	scr2, _ := r2.ScriptsRef(ctx)
	if cfg1 != cfg2 || scr1 != scr2 {
		t.Errorf("reopen moved master: config %s -> %s, scripts %s -> %s", cfg1, cfg2, scr1, scr2)
	}
	for repo, seedMsg := range map[string]string{"config.git": "Seed the config repo", "scripts.git": "Seed the script repo"} {
		bare := filepath.Join(dir, repo)
		if n := gitCmd(t, "", "--git-dir", bare, "rev-list", "--count", "master"); n != "1" {
			t.Errorf("%s: %s commits, want 1", repo, n)
		}
		if log := gitCmd(t, "", "--git-dir", bare, "log", "--format=%an <%ae>: %s"); !strings.Contains(log, "straas <straas@localhost>: "+seedMsg) {
			t.Errorf("%s: git log %q is not the readable seed commit", repo, log)
		}
		fsck(t, bare)
	}
	scripts := filepath.Join(dir, "scripts.git")
	for path, mode := range map[string]string{
		"cmd/zookeeper/3.4.6/runpuppet.sh":  "100755",
		"guestcmds/zk-cmd/create_namespace": "100755",
		"cmd/zookeeper/3.4.6/install.json":  "100644",
	} {
		got := strings.Fields(gitCmd(t, "", "--git-dir", scripts, "ls-tree", "master", path))
		if len(got) == 0 || got[0] != mode {
			t.Errorf("%s: ls-tree %v, want mode %s", path, got, mode)
		}
	}
}

func TestDefaultsVerifyAndPassTheSchema(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepos(t)
	if err := r.Verify(ctx); err != nil {
		t.Fatalf("the shipped defaults do not verify:\n%v", err)
	}
	n := 0
	err := fs.WalkDir(defaults.Config(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isIniPath(p) {
			return err
		}
		b, err := fs.ReadFile(defaults.Config(), p)
		if err != nil {
			return err
		}
		n++
		if err := r.ValidateConfigFile(ctx, Master, p, b); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 18 {
		t.Errorf("validated %d JSON-ini files, want every default (at least 18)", n)
	}
}

func TestCatalog(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepos(t)
	types, err := r.ComponentTypes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []model.ComponentType{
		{Type: "kafka", Versions: []string{"0.8.2.2", "0.10.2.1", "2.8.1"}, Roles: []string{"kafka"}, DefaultFlavor: "medium", DefaultImage: "ubuntu-16.04", MinSize: 1},
		{Type: "storm", Versions: []string{"0.10", "1.2.3"}, Roles: []string{"nimbus", "supervisor"}, DefaultFlavor: "medium", DefaultImage: "ubuntu-16.04", MinSize: 2},
		{Type: "zookeeper", Versions: []string{"3.4.6", "3.5.9"}, Roles: []string{"zookeeper"}, DefaultFlavor: "small", DefaultImage: "ubuntu-16.04", MinSize: 1, Quorum: true},
	}
	if !reflect.DeepEqual(types, want) {
		t.Errorf("ComponentTypes:\n got %+v\nwant %+v", types, want)
	}

	tests := []struct {
		typ, role        string
		defaultRole      string
		self, dependents bool
		ports            []int
		drain            bool
		requires         []string
		layoutSize       int
		layout           map[string]int
	}{
		{typ: "zookeeper", role: "zookeeper", defaultRole: "zookeeper", self: true, dependents: true, ports: []int{2181}, layoutSize: 3, layout: map[string]int{"zookeeper": 3}},
		{typ: "kafka", role: "kafka", defaultRole: "kafka", ports: []int{9092}, drain: true, requires: []string{"zookeeper"}, layoutSize: 4, layout: map[string]int{"kafka": 4}},
		{typ: "storm", role: "nimbus", defaultRole: "nimbus", self: true, ports: []int{6627, 8080}, requires: []string{"zookeeper"}, layoutSize: 3, layout: map[string]int{"nimbus": 1, "supervisor": 2}},
		{typ: "storm", role: "supervisor", defaultRole: "nimbus", requires: []string{"zookeeper"}, layoutSize: 1, layout: map[string]int{"nimbus": 1, "supervisor": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"/"+tt.role, func(t *testing.T) {
			d, err := r.TypeDef(ctx, tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.DefaultRole(); got != tt.defaultRole {
				t.Errorf("DefaultRole = %q, want %q", got, tt.defaultRole)
			}
			if got := d.ReconfigureSelf(tt.role); got != tt.self {
				t.Errorf("ReconfigureSelf(%s) = %v, want %v", tt.role, got, tt.self)
			}
			if got := d.ReconfigureDependents(tt.role); got != tt.dependents {
				t.Errorf("ReconfigureDependents(%s) = %v, want %v", tt.role, got, tt.dependents)
			}
			if got := d.ValidatePorts[tt.role]; !slices.Equal(got, tt.ports) {
				t.Errorf("ValidatePorts[%s] = %v, want %v", tt.role, got, tt.ports)
			}
			if _, got := d.DrainFor(tt.role); got != tt.drain {
				t.Errorf("DrainFor(%s) = %v, want %v", tt.role, got, tt.drain)
			}
			var req []string
			for _, dep := range d.Dependencies {
				if dep.Required {
					req = append(req, dep.Type)
				}
			}
			if !slices.Equal(req, tt.requires) {
				t.Errorf("required dependencies %v, want %v", req, tt.requires)
			}
			got := map[string]int{}
			for _, rc := range d.Layout(&model.Component{Type: tt.typ, Size: tt.layoutSize, Flavor: "f"}) {
				got[rc.Role] = rc.Count
				if rc.Flavor != "f" {
					t.Errorf("layout role %s lost the component's flavor", rc.Role)
				}
			}
			if !reflect.DeepEqual(got, tt.layout) {
				t.Errorf("Layout(size %d) = %v, want %v", tt.layoutSize, got, tt.layout)
			}
		})
	}

	// The seed's storm example: submodules win over the default layout.
	storm, _ := r.TypeDef(ctx, "storm")
	l := storm.Layout(&model.Component{Type: "storm", Size: 3, Flavor: "medium", Submodules: []model.Submodule{
		{Role: "nimbus", Name: "nmbus", Size: 1, Flavor: "large"}, {Role: "supervisor", Name: "supervsr", Size: 2},
	}})
	if len(l) != 2 || l[0] != (model.RoleCount{Role: "nimbus", Count: 1, Flavor: "large"}) || l[1] != (model.RoleCount{Role: "supervisor", Count: 2, Flavor: "medium"}) {
		t.Errorf("storm layout with submodules = %+v", l)
	}

	if _, err := r.TypeDef(ctx, "cassandra"); !errs.Is(err, errs.NotFound) {
		t.Errorf("unknown type: got %v, want not found", err)
	}
}

func TestInstall(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepos(t)
	tests := []struct {
		typ, role, version string
		want               agentproto.Package
		kind               errs.Kind
	}{
		{"zookeeper", "zookeeper", "3.4.6", agentproto.Package{Name: "zookeeper", Version: "3.4.6-1"}, 0},
		{"zookeeper", "zookeeper", "3.5.9", agentproto.Package{Name: "zookeeper", Version: "3.5.9-1"}, 0},
		{"kafka", "kafka", "0.8.2.2", agentproto.Package{Name: "kafka", Version: "0.8.2.2-1"}, 0},
		{"kafka", "kafka", "2.8.1", agentproto.Package{Name: "kafka", Version: "2.8.1-1"}, 0},
		{"storm", "nimbus", "0.10", agentproto.Package{Name: "storm-nimbus", Version: "0.10.2-1"}, 0},
		{"storm", "supervisor", "1.2.3", agentproto.Package{Name: "storm-supervisor", Version: "1.2.3-1"}, 0},
		{"storm", "kafka", "0.10", agentproto.Package{}, errs.Invalid},
		{"kafka", "kafka", "9.9", agentproto.Package{}, errs.Invalid},
		{"redis", "redis", "7.2", agentproto.Package{}, errs.NotFound},
	}
	for _, tt := range tests {
		got, err := r.Install(ctx, tt.typ, tt.role, tt.version)
		if tt.kind != 0 {
			if !errs.Is(err, tt.kind) {
				t.Errorf("Install(%s, %s, %s): got %v, want a %v error", tt.typ, tt.role, tt.version, err, tt.kind)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Install(%s, %s, %s) = %+v, %v; want %+v", tt.typ, tt.role, tt.version, got, err, tt.want)
		}
	}
}

func TestGuestCommands(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepos(t)
	got, err := r.GuestCommands(ctx)
	if err != nil {
		t.Fatal(err)
	}
	musts := map[string][]string{
		"zk-cmd":     {"create_namespace", "srvr", "stat"},
		"kafka-cmd":  {"list_topics", "reassign_partitions"},
		"storm-cmd":  {"storm_jar"},
		"admin-cmd":  {"puppet_apply"},
		"assist-cmd": {"list"},
	}
	if len(got) != len(musts) {
		t.Errorf("groups %v, want exactly %d", got, len(musts))
	}
	for g, cmds := range musts {
		for _, c := range cmds {
			if !slices.Contains(got[g], c) {
				t.Errorf("group %s lacks %s: %v", g, c, got[g])
			}
		}
	}
	if b, err := r.GuestCommand(ctx, "zk-cmd/create_namespace"); err != nil || !strings.HasPrefix(string(b), "#!/bin/sh") {
		t.Errorf("GuestCommand(zk-cmd/create_namespace) = %.20q, %v", b, err)
	}
	for _, bad := range []string{"zk-cmd/nope", "nope", "zk-cmd/../../components/kafka.json", "/srvr"} {
		if _, err := r.GuestCommand(ctx, bad); !errs.Is(err, errs.Invalid) {
			t.Errorf("GuestCommand(%q): got %v, want invalid", bad, err)
		}
	}
}

func TestRefNames(t *testing.T) {
	tests := []struct {
		ref  string
		want Ref
		ok   bool
	}{
		{"", Ref{Branch: "master"}, true},
		{"master", Ref{Branch: "master"}, true},
		{"develop", Ref{Branch: "develop"}, true},
		{"test-1@phx01", Ref{Branch: "test-1@phx01"}, true},
		{"test-1@phx01&test-v1.0.0", Ref{Branch: "test-1@phx01", Tag: "test-v1.0.0"}, true},
		{"master&rel-2", Ref{Branch: "master", Tag: "rel-2"}, true},
		{strings.Repeat("ab", 20), Ref{Commit: strings.Repeat("ab", 20)}, true},
		{"a@b@c", Ref{}, false},
		{"test-1@phx01&", Ref{}, false},
		{"test-1@phx01&a&b", Ref{}, false},
		{"test-1@phx01&v@1", Ref{}, false},
		{"../etc", Ref{}, false},
		{"-rf", Ref{}, false},
		{"x.lock", Ref{}, false},
		{"sp ace", Ref{}, false},
		{"@phx01", Ref{}, false},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.ref)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v ok=%v", tt.ref, got, err, tt.want, tt.ok)
		}
		if err != nil && (!errs.Is(err, errs.Invalid) || errs.FieldOf(err) != "ref") {
			t.Errorf("ParseRef(%q): error %v should be invalid on field ref", tt.ref, err)
		}
		if err == nil && got.String() != tt.ref && tt.ref != "" {
			t.Errorf("Ref(%q).String() = %q", tt.ref, got.String())
		}
	}
	name := GitTagName(TagRoleUser, "test-1@phx01", "test-v1.0.0")
	if name != "user&test-1@phx01&test-v1.0.0" {
		t.Errorf("GitTagName = %q", name)
	}
	if role, b, tag, ok := ParseGitTagName(name); !ok || role != "user" || b != "test-1@phx01" || tag != "test-v1.0.0" {
		t.Errorf("ParseGitTagName(%q) = %q %q %q %v", name, role, b, tag, ok)
	}
	if _, _, _, ok := ParseGitTagName("root&b&t"); ok {
		t.Error("ParseGitTagName accepted role root")
	}
}

func userJSON(opts string) []byte {
	return []byte(`{"type":"ini","content":[` + opts + `]}`)
}

func TestBranchesAndTags(t *testing.T) {
	ctx := context.Background()
	r, dir := newRepos(t)
	const b = "test-1@phx01"
	master, _ := r.ResolveRef(ctx, Master)
	h1, err := r.CreateBranch(ctx, b)
	if err != nil || h1 != master {
		t.Fatalf("CreateBranch = %s, %v; want master's %s", h1, err, master)
	}
	if h, err := r.CreateBranch(ctx, b); err != nil || h != h1 {
		t.Fatalf("second CreateBranch = %s, %v; want the same %s", h, err, h1)
	}
	if _, err := r.CreateBranch(ctx, "bad branch"); !errs.Is(err, errs.Invalid) {
		t.Errorf("CreateBranch(bad branch): %v", err)
	}
	alice := Author{Name: "alice", Email: "alice@example.com"}
	p := "app/zookeeper/3.4.6/user.json"
	v1 := userJSON(`{"section":"zookeeper","options":[{"key":"tick_time","value":3000}]}`)
	c1, err := r.WriteFile(ctx, b, p, v1, "slower ticks", alice)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := r.WriteFile(ctx, b, p, v1, "same again", alice); err != nil || again != c1 {
		t.Errorf("rewriting the same content made commit %s (%v), want none (%s)", again, err, c1)
	}
	tag, err := r.CreateTag(ctx, b, "test-v1.0.0", TagRoleUser, "before tuning", alice)
	if err != nil {
		t.Fatal(err)
	}
	wantTag := Tag{Name: "test-v1.0.0", Branch: b, Role: "user", GitName: "user&test-1@phx01&test-v1.0.0",
		Ref: b + "&test-v1.0.0", Commit: c1, Message: "before tuning", Tagger: alice, Date: t0}
	if !reflect.DeepEqual(tag, wantTag) {
		t.Errorf("CreateTag =\n %+v\nwant\n %+v", tag, wantTag)
	}
	c2, err := r.WriteFile(ctx, b, p, userJSON(`{"section":"zookeeper","options":[{"key":"tick_time","value":4000}]}`), "", alice)
	if err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{b: c2, b + "&test-v1.0.0": c1, Master: master, c1: c1} {
		if got, err := r.ResolveRef(ctx, ref); err != nil || got != want {
			t.Errorf("ResolveRef(%q) = %s, %v; want %s", ref, got, err, want)
		}
	}
	e, err := r.Read(ctx, b+"&test-v1.0.0", p)
	if err != nil || string(e.Content) != string(v1) || e.Commit != c1 || e.Type != EntryFile {
		t.Errorf("Read at the tag = %+v, %v", e, err)
	}
	for _, role := range []string{TagRoleUser, TagRoleAdmin} {
		if _, err := r.CreateTag(ctx, b, "test-v1.0.0", role, "", alice); !errs.Is(err, errs.Conflict) {
			t.Errorf("duplicate tag as %s: %v, want conflict", role, err)
		}
	}
	if _, err := r.CreateTag(ctx, "gone@phx01", "x", TagRoleUser, "", alice); !errs.Is(err, errs.NotFound) {
		t.Errorf("tag of a missing branch: %v", err)
	}
	if _, err := r.CreateTag(ctx, b, "x", "root", "", alice); !errs.Is(err, errs.Invalid) {
		t.Errorf("tag with role root: %v", err)
	}
	if _, err := r.CreateTag(ctx, b, "admin-mark", TagRoleAdmin, "ops", Author{Name: "root"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateTag(ctx, Master, "release-1", TagRoleAdmin, "", Author{Name: "root"}); err != nil {
		t.Fatal(err)
	}
	tags, err := r.Tags(ctx, b)
	var tagNames []string
	for _, tg := range tags {
		tagNames = append(tagNames, tg.GitName)
	}
	slices.Sort(tagNames)
	if err != nil || !slices.Equal(tagNames, []string{"admin&test-1@phx01&admin-mark", "user&test-1@phx01&test-v1.0.0"}) {
		t.Errorf("Tags(%s) = %v, %v; want the branch's two tags, not master's", b, tagNames, err)
	}
	cfg := filepath.Join(dir, "config.git")
	if got := gitCmd(t, "", "--git-dir", cfg, "tag", "-l"); got != "admin&master&release-1\nadmin&test-1@phx01&admin-mark\nuser&test-1@phx01&test-v1.0.0" {
		t.Errorf("git tags:\n%s", got)
	}
	if err := r.DeleteTag(ctx, b, "admin-mark"); err != nil {
		t.Fatal(err)
	}
	if err := r.DeleteTag(ctx, b, "admin-mark"); !errs.Is(err, errs.NotFound) {
		t.Errorf("deleting a deleted tag: %v", err)
	}
	if _, err := r.ResolveRef(ctx, b+"&admin-mark"); !errs.Is(err, errs.NotFound) {
		t.Errorf("resolving a deleted tag: %v", err)
	}
	fsck(t, cfg)

	if err := r.DeleteBranch(ctx, Master); !errs.Is(err, errs.Invalid) {
		t.Errorf("DeleteBranch(master): %v", err)
	}
	if err := r.DeleteBranch(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got := gitCmd(t, "", "--git-dir", cfg, "for-each-ref", "--format=%(refname)"); got != "refs/heads/master\nrefs/tags/admin&master&release-1" {
		t.Errorf("refs after DeleteBranch:\n%s", got)
	}
	if err := r.DeleteBranch(ctx, b); err != nil {
		t.Errorf("DeleteBranch twice: %v", err)
	}
	if _, err := r.Tags(ctx, b); !errs.Is(err, errs.NotFound) {
		t.Errorf("Tags of a deleted branch: %v", err)
	}
}

func TestReadTree(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepos(t)
	tests := []struct {
		path  string
		typ   string
		names []string
		kind  errs.Kind
	}{
		{"", EntryFolder, []string{"README.md", "app", "service"}, 0},
		{"/app/kafka/", EntryFolder, []string{"0.10.2.1", "0.8.2.2", "2.8.1"}, 0},
		{"app/kafka/2.8.1", EntryFolder, []string{"default.json", "user.json"}, 0},
		{"service", EntryFolder, []string{"api.json", "checker.json", "conductor.json", "creation_json.schema", "default.json", "ini_json.schema", "userdata.template"}, 0},
		{"app/kafka/2.8.1/default.json", EntryFile, nil, 0},
		{"app/kafka/9.9", "", nil, errs.NotFound},
		{"app/kafka/2.8.1/default.json/x", "", nil, errs.NotFound},
	}
	for _, tt := range tests {
		e, err := r.Read(ctx, Master, tt.path)
		if tt.kind != 0 {
			if !errs.Is(err, tt.kind) {
				t.Errorf("Read(%q): %v, want %v", tt.path, err, tt.kind)
			}
			continue
		}
		if err != nil || e.Type != tt.typ {
			t.Errorf("Read(%q) = %s, %v", tt.path, e.Type, err)
			continue
		}
		var names []string
		for _, f := range e.Files {
			names = append(names, f.Name)
			if f.Type == EntryFile && f.Size == 0 {
				t.Errorf("Read(%q): %s has no size", tt.path, f.Name)
			}
		}
		if !slices.Equal(names, tt.names) {
			t.Errorf("Read(%q) names %v, want %v", tt.path, names, tt.names)
		}
		if tt.typ == EntryFile {
			if _, err := ParseIni(e.Content); err != nil {
				t.Errorf("Read(%q) content: %v", tt.path, err)
			}
			e.Content[0] = 'X' // callers own what they get
			again, _ := r.Read(ctx, Master, tt.path)
			if again.Content[0] != '{' {
				t.Error("mutating a read file changed the cached copy")
			}
		}
	}
	if _, err := r.Read(ctx, "nope@az", ""); !errs.Is(err, errs.NotFound) {
		t.Errorf("Read at a missing branch: %v", err)
	}
	if _, err := r.Read(ctx, "a&b&c", ""); !errs.Is(err, errs.Invalid) {
		t.Errorf("Read at a malformed ref: %v", err)
	}
	sh, err := r.ReadScript(ctx, "", "cmd/kafka/2.8.1/validate.sh")
	if err != nil || !strings.Contains(string(sh), "wait_port 9092") {
		t.Errorf("ReadScript = %.40q, %v", sh, err)
	}
	ref, _ := r.ScriptsRef(ctx)
	if _, err := r.ReadScript(ctx, ref, "pre_config/kafka/pre_config.json"); err != nil {
		t.Errorf("ReadScript at the scripts ref: %v", err)
	}
}

func TestWriteFileValidation(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepos(t)
	const b = "test-1@phx01"
	if _, err := r.CreateBranch(ctx, b); err != nil {
		t.Fatal(err)
	}
	def := func(opts string) []byte {
		return []byte(`{"type":"ini","content":[{"section":"kafka","options":[` + opts + `]}]}`)
	}
	tests := []struct {
		name, branch, path string
		content            []byte
		kind               errs.Kind
		field              string
	}{
		{"int given a string", Master, "app/kafka/2.8.1/default.json", def(`{"key":"port","value":"9092","type":"int"}`), errs.Invalid, "content[0].options[0].value"},
		{"list given a bool", Master, "app/kafka/2.8.1/default.json", def(`{"key":"port","value":9092,"type":"int"},{"key":"l","value":true,"type":"list"}`), errs.Invalid, "content[0].options[1].value"},
		{"unknown type", Master, "app/kafka/2.8.1/default.json", def(`{"key":"port","value":9092,"type":"integer"}`), errs.Invalid, "content[0].options[0].type"},
		{"missing type in a default", Master, "app/kafka/2.8.1/default.json", def(`{"key":"port","value":9092}`), errs.Invalid, "content[0].options[0].type"},
		{"bad key", Master, "service/default.json", def(`{"key":"log.dirs","value":"x","type":"string"}`), errs.Invalid, "content[0].options[0].key"},
		{"bad section", Master, "service/api.json", []byte(`{"type":"ini","content":[{"section":"a b","options":[]}]}`), errs.Invalid, "content[0].section"},
		{"missing value", Master, "service/api.json", def(`{"key":"port","type":"int"}`), errs.Invalid, "content[0].options[0]"},
		{"not ini", Master, "service/api.json", []byte(`{"type":"yaml","content":[]}`), errs.Invalid, "type"},
		{"duplicate key", Master, "service/api.json", def(`{"key":"a","value":1,"type":"int"},{"key":"a","value":2,"type":"int"}`), errs.Invalid, "content[0].options[1].key"},
		{"malformed JSON", Master, "service/api.json", []byte(`{"type":"ini",`), errs.Invalid, ""},
		{"user sets an unknown key", b, "app/kafka/2.8.1/user.json", def(`{"key":"colour","value":"red"}`), errs.Invalid, "content[0].options[0].key"},
		{"user gives the wrong type", b, "app/kafka/2.8.1/user.json", def(`{"key":"num_partitions","value":"8"}`), errs.Invalid, "content[0].options[0].value"},
		{"schema that is not JSON", Master, IniSchemaPath, []byte(`{`), errs.Invalid, ""},
		{"outside service and app", Master, "components/x.json", []byte(`{}`), errs.Invalid, "path"},
		{"too deep under app", Master, "app/kafka/2.8.1/x/user.json", []byte(`{}`), errs.Invalid, "path"},
		{"missing branch", "gone@az1", "app/kafka/2.8.1/user.json", def(`{"key":"num_partitions","value":8}`), errs.NotFound, ""},
		{"valid user override", b, "app/kafka/2.8.1/user.json", def(`{"key":"num_partitions","value":8}`), 0, ""},
		{"valid default change", Master, "app/kafka/2.8.1/default.json", def(`{"key":"port","value":9093,"type":"int","doc":"d","user_changeable":false,"restart_required":true}`), 0, ""},
		{"non-ini file", Master, UserdataPath, []byte("#!/bin/sh\n"), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := r.ResolveRef(ctx, tt.branch)
			h, err := r.WriteFile(ctx, tt.branch, tt.path, tt.content, tt.name, Author{Name: "alice"})
			if tt.kind == 0 {
				if err != nil {
					t.Fatalf("WriteFile: %v", err)
				}
				if h == before {
					t.Errorf("no commit made")
				}
				return
			}
			if !errs.Is(err, tt.kind) {
				t.Fatalf("got %v (kind %v), want kind %v", err, errs.KindOf(err), tt.kind)
			}
			if got := errs.FieldOf(err); got != tt.field {
				t.Errorf("field %q, want %q (error: %v)", got, tt.field, err)
			}
			if after, _ := r.ResolveRef(ctx, tt.branch); after != before {
				t.Errorf("a rejected write moved %s", tt.branch)
			}
		})
	}
	hist, err := r.Config.History(ctx, b, "app/kafka/2.8.1/user.json", 5)
	// The seed commit created the empty user.json; the override is alice's.
	if err != nil || len(hist) != 2 || hist[0].Author.Name != "alice" || hist[0].Committer.Name != "straas" || hist[0].Message != "valid user override" || hist[1].Author.Name != "straas" {
		t.Errorf("History = %+v, %v; want alice's override (committed by straas) then the seed", hist, err)
	}
}

func TestPermissions(t *testing.T) {
	zkDefault, err := fs.ReadFile(defaults.Config(), "app/zookeeper/3.4.6/default.json")
	if err != nil {
		t.Fatal(err)
	}
	admin, owner, other := Access{Admin: true}, Access{Owner: true}, Access{}
	up := "app/zookeeper/3.4.6/user.json"
	old := userJSON(`{"section":"zookeeper","options":[{"key":"client_port","value":2182}]}`) // set by an admin
	writes := []struct {
		name   string
		a      Access
		w      WriteCheck
		kind   errs.Kind
		denied string
	}{
		{"admin changes service", admin, WriteCheck{Branch: Master, Path: ServiceDefaultPath}, 0, ""},
		{"admin changes a default", admin, WriteCheck{Branch: Master, Path: "app/kafka/2.8.1/default.json"}, 0, ""},
		{"admin changes any user key", admin, WriteCheck{Branch: "t@az", Path: up, New: userJSON(`{"section":"zookeeper","options":[{"key":"data_dir","value":"/x"}]}`)}, 0, ""},
		{"user changes service", owner, WriteCheck{Branch: "t@az", Path: ServiceDefaultPath}, errs.Permission, ""},
		{"user changes master", owner, WriteCheck{Branch: Master, Path: up}, errs.Permission, ""},
		{"user changes a default", owner, WriteCheck{Branch: "t@az", Path: "app/zookeeper/3.4.6/default.json", Default: zkDefault}, errs.Permission, ""},
		{"user changes another's branch", other, WriteCheck{Branch: "t@az", Path: up, Default: zkDefault, New: userJSON(``)}, errs.Permission, ""},
		{"user sets allowed keys", owner, WriteCheck{Branch: "t@az", Path: up, Default: zkDefault,
			New: userJSON(`{"section":"zookeeper","options":[{"key":"tick_time","value":3000},{"key":"heap_mb","value":2048}]}`)}, 0, ""},
		{"user sets disallowed keys", owner, WriteCheck{Branch: "t@az", Path: up, Default: zkDefault,
			New: userJSON(`{"section":"zookeeper","options":[{"key":"tick_time","value":3000},{"key":"data_dir","value":"/x"},{"key":"client_port","value":1}]}`)},
			errs.Permission, "zookeeper.client_port, zookeeper.data_dir"},
		{"user keeps an admin's key as is", owner, WriteCheck{Branch: "t@az", Path: up, Default: zkDefault, Old: old,
			New: userJSON(`{"section":"zookeeper","options":[{"key":"client_port","value":2182},{"key":"tick_time","value":3000}]}`)}, 0, ""},
		{"user removes an admin's key", owner, WriteCheck{Branch: "t@az", Path: up, Default: zkDefault, Old: old, New: userJSON(``)},
			errs.Permission, "zookeeper.client_port"},
		{"bad path", admin, WriteCheck{Branch: Master, Path: "etc/passwd"}, errs.Invalid, ""},
	}
	for _, tt := range writes {
		err := CheckWrite(tt.a, tt.w)
		if tt.kind == 0 {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if !errs.Is(err, tt.kind) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.kind)
			continue
		}
		if tt.denied != "" && !strings.HasSuffix(err.Error(), "not user-changeable: "+tt.denied) {
			t.Errorf("%s: %q does not name exactly %s", tt.name, err, tt.denied)
		}
	}

	reads := []struct {
		a       Access
		ref, p  string
		allowed bool
	}{
		{admin, Master, "service/default.json", true},
		{admin, strings.Repeat("a", 40), "app", true},
		{owner, Master, "app/kafka/2.8.1/default.json", true},
		{other, Master, "app/kafka/2.8.1/default.json", true},
		{owner, Master, "service/api.json", false},
		{owner, Master, "/service", false},
		{owner, "t@az", "app/kafka/2.8.1/user.json", true},
		{owner, "t@az&v1", "app", true},
		{other, "t@az", "app/kafka/2.8.1/user.json", false},
		{owner, "develop", "app", false},
		{owner, strings.Repeat("a", 40), "app", false},
	}
	for _, tt := range reads {
		err := CheckRead(tt.a, tt.ref, tt.p)
		if tt.allowed != (err == nil) || (err != nil && !errs.Is(err, errs.Permission)) {
			t.Errorf("CheckRead(%+v, %q, %q) = %v, want allowed=%v", tt.a, tt.ref, tt.p, err, tt.allowed)
		}
	}

	tags := []struct {
		a            Access
		branch, role string
		allowed      bool
	}{
		{admin, Master, TagRoleAdmin, true},
		{admin, "t@az", TagRoleUser, true},
		{owner, "t@az", TagRoleUser, true},
		{owner, "t@az", TagRoleAdmin, false},
		{owner, Master, TagRoleUser, false},
		{other, "t@az", TagRoleUser, false},
	}
	for _, tt := range tags {
		if err := CheckTag(tt.a, tt.branch, tt.role); tt.allowed != (err == nil) {
			t.Errorf("CheckTag(%+v, %s, %s) = %v, want allowed=%v", tt.a, tt.branch, tt.role, err, tt.allowed)
		}
	}
	if admin.TagRole() != TagRoleAdmin || owner.TagRole() != TagRoleUser {
		t.Error("TagRole")
	}
}

func TestAuthorizeWrite(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepos(t)
	const b = "t@az"
	if _, err := r.CreateBranch(ctx, b); err != nil {
		t.Fatal(err)
	}
	up := "app/kafka/2.8.1/user.json"
	err := r.AuthorizeWrite(ctx, Access{Owner: true}, b, up,
		userJSON(`{"section":"kafka","options":[{"key":"num_partitions","value":6},{"key":"port","value":9093},{"key":"log_dirs","value":"/d"}]}`))
	if !errs.Is(err, errs.Permission) || !strings.HasSuffix(err.Error(), "not user-changeable: kafka.log_dirs, kafka.port") {
		t.Errorf("AuthorizeWrite with disallowed keys: %v", err)
	}
	ok := userJSON(`{"section":"kafka","options":[{"key":"num_partitions","value":6}]}`)
	if err := r.AuthorizeWrite(ctx, Access{Owner: true}, b, up, ok); err != nil {
		t.Errorf("AuthorizeWrite of an allowed key: %v", err)
	}
	if err := r.AuthorizeWrite(ctx, Access{Owner: true}, b, "app/redis/7.2/user.json", ok); !errs.Is(err, errs.NotFound) {
		t.Errorf("AuthorizeWrite for a version without defaults: %v", err)
	}
	if err := r.AuthorizeWrite(ctx, Access{}, b, up, ok); !errs.Is(err, errs.Permission) {
		t.Errorf("AuthorizeWrite by a stranger: %v", err)
	}
}

func TestEffectiveConfig(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepos(t)
	const b = "test-1@phx01"
	if _, err := r.CreateBranch(ctx, b); err != nil {
		t.Fatal(err)
	}
	up := "app/zookeeper/3.4.6/user.json"
	write := func(tick int) {
		t.Helper()
		body := userJSON(`{"section":"zookeeper","options":[{"key":"tick_time","value":` + itoa(tick) + `}]}`)
		if _, err := r.WriteFile(ctx, b, up, body, "tick", Author{Name: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	write(4000)
	if _, err := r.CreateTag(ctx, b, "v1", TagRoleUser, "", Author{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	write(5000)
	tests := []struct {
		ref  string
		tick int64
	}{{Master, 2000}, {b + "&v1", 4000}, {b, 5000}}
	for _, tt := range tests {
		s, err := r.EffectiveSections(ctx, tt.ref, "zookeeper", "3.4.6")
		if err != nil {
			t.Fatal(err)
		}
		if got := s["zookeeper"]["tick_time"]; got != tt.tick {
			t.Errorf("tick_time at %s = %v (%T), want %d", tt.ref, got, got, tt.tick)
		}
		if got := s["zookeeper"]["client_port"]; got != int64(2181) {
			t.Errorf("client_port at %s = %v, want the default 2181", tt.ref, got)
		}
		if _, ok := s["zookeeper"]["health_check_interval_seconds"]; ok {
			t.Errorf("exclusive option reached the node sections at %s", tt.ref)
		}
	}
	full, _ := r.EffectiveConfig(ctx, b, "zookeeper", "3.4.6")
	if full.Sections()["zookeeper"]["health_check_interval_seconds"] != int64(30) {
		t.Error("EffectiveConfig lost the exclusive option")
	}
	def, _ := r.EffectiveConfig(ctx, Master, "zookeeper", "3.4.6")
	if got := RestartRequired(def, full); !slices.Equal(got, []string{"zookeeper.tick_time"}) {
		t.Errorf("RestartRequired = %v", got)
	}

	// Storm's role-scoped sections.
	nimbus, _ := r.EffectiveSectionsFor(ctx, b, "storm", "0.10", "nimbus")
	sup, _ := r.EffectiveSectionsFor(ctx, b, "storm", "0.10", "supervisor")
	if _, ok := nimbus["supervisor"]; ok || nimbus["nimbus"]["childopts"] != "-Xmx1024m" || nimbus["storm"] == nil {
		t.Errorf("nimbus sections %v", keys(nimbus))
	}
	if _, ok := sup["nimbus"]; ok || sup["supervisor"]["childopts"] != "-Xmx256m" {
		t.Errorf("supervisor sections %v", keys(sup))
	}
	if got := sup["storm"]["supervisor_slots_ports"]; !reflect.DeepEqual(got, []any{int64(6700), int64(6701), int64(6702), int64(6703)}) {
		t.Errorf("supervisor_slots_ports = %#v", got)
	}

	// A version added to master after the branch was cut is read from master.
	newDef := []byte(`{"type":"ini","content":[{"section":"zookeeper","options":[{"key":"client_port","value":2181,"type":"int","user_changeable":true}]}]}`)
	if _, err := r.WriteFile(ctx, Master, "app/zookeeper/3.6.4/default.json", newDef, "zk 3.6.4", Author{Name: "root"}); err != nil {
		t.Fatal(err)
	}
	if s, err := r.EffectiveSections(ctx, b, "zookeeper", "3.6.4"); err != nil || s["zookeeper"]["client_port"] != int64(2181) {
		t.Errorf("new version through the branch: %v, %v", s, err)
	}
	if _, err := r.EffectiveSections(ctx, b, "zookeeper", "9.9"); !errs.Is(err, errs.NotFound) {
		t.Errorf("unknown version: %v", err)
	}

	// Service settings: default.json overridden per service.
	tests2 := []struct {
		service, section, key string
		want                  any
	}{
		{"api", "DEFAULT", "log_file", "straas-api.log"},
		{"api", "DEFAULT", "log_level", "info"},
		{"conductor", "DEFAULT", "log_file", "straas-conductor.log"},
		{"conductor", "conductor", "workers", int64(4)},
		{"checker", "checker", "interval_seconds", int64(30)},
		{"", "DEFAULT", "log_file", "straas.log"},
		{"nosuch", "DEFAULT", "log_file", "straas.log"},
	}
	for _, tt := range tests2 {
		f, err := r.ServiceConfig(ctx, Master, tt.service)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Sections()[tt.section][tt.key]; got != tt.want {
			t.Errorf("ServiceConfig(%q) %s.%s = %v, want %v", tt.service, tt.section, tt.key, got, tt.want)
		}
	}
}

func keys(s Sections) []string {
	var out []string
	for k := range s {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func itoa(i int) string { return fmtInt(i) }

func fmtInt(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestConcurrentWritersEmbedded(t *testing.T) {
	ctx := context.Background()
	r, dir := newRepos(t)
	const b = "busy@az1"
	if _, err := r.CreateBranch(ctx, b); err != nil {
		t.Fatal(err)
	}
	const writers, each = 6, 5
	var wg sync.WaitGroup
	errc := make(chan error, writers*each*3)
	for w := range writers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range each {
				p := "service/w" + fmtInt(w) + "-" + fmtInt(i) + ".json"
				body := []byte(`{"type":"ini","content":[{"section":"DEFAULT","options":[{"key":"n","value":` + fmtInt(i) + `,"type":"int"}]}]}`)
				if _, err := r.WriteFile(ctx, b, p, body, "write "+p, Author{Name: "w" + fmtInt(w)}); err != nil {
					errc <- err
				}
			}
		}()
		go func() { // readers race the writers
			defer wg.Done()
			for range each {
				if _, err := r.ComponentTypes(ctx); err != nil {
					errc <- err
				}
				if _, err := r.EffectiveSections(ctx, b, "kafka", "2.8.1"); err != nil {
					errc <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	cfg := filepath.Join(dir, "config.git")
	if n := gitCmd(t, "", "--git-dir", cfg, "rev-list", "--count", b); n != fmtInt(1+writers*each) {
		t.Errorf("%s has %s commits, want %d", b, n, 1+writers*each)
	}
	fsck(t, cfg)
}

// BenchmarkReadScript is the dummy agents' hot path: a script at the scripts ref.
func BenchmarkReadScript(b *testing.B) {
	ctx := context.Background()
	r, err := Open(ctx, Options{Dir: b.TempDir(), Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	ref, _ := r.ScriptsRef(ctx)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.ReadScript(ctx, ref, "cmd/kafka/2.8.1/validate.sh"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPreConfig is one kafka pre-config on a warm cache.
func BenchmarkPreConfig(b *testing.B) {
	ctx := context.Background()
	r, err := Open(ctx, Options{Dir: b.TempDir(), Logger: quietLogger()})
	if err != nil {
		b.Fatal(err)
	}
	in := PreConfigInput{Topology: topo, Component: ComponentInfo{Name: "kfk", Type: "kafka", Version: "2.8.1"}, Dependencies: []ComponentInfo{zkComponent(5)}}
	for i := 1; i <= 100; i++ {
		in.Component.Nodes = append(in.Component.Nodes, NodeInfo{ID: "k" + fmtInt(i), Name: "kfk-" + fmtInt(i), Role: "kafka", Index: i, IPs: []string{"10.1.0." + fmtInt(i)}})
	}
	b.ResetTimer()
	for range b.N {
		if _, err := r.PreConfig(ctx, "kafka", "2.8.1", in); err != nil {
			b.Fatal(err)
		}
	}
}
