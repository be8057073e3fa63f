package dummy_test

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/agent"
	"github.com/straas/straas/agent/dummy"
	"github.com/straas/straas/shared/agentproto"
)

func TestStatePersistsAcrossRestarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vm")
	fetch := func(ctx context.Context, f *agentproto.File) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("content of " + f.Key)), nil
	}
	b, err := dummy.New(dummy.Config{Dir: dir, Hostname: "n1", ScriptsRef: "v1", Fetch: fetch})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []agentproto.Command{
		{Kind: agentproto.CmdInstall, Role: "broker", Type: "kafka", Version: "3.7.0"},
		{Kind: agentproto.CmdPreConfigure, SitePP: "class { 'kafka': }\n"},
		{Kind: agentproto.CmdConfigure, Ref: "c1"},
		{Kind: agentproto.CmdPutFile, File: &agentproto.File{Key: "k1", TargetPath: "/opt/app/app.jar"}},
	} {
		if o := b.Exec(ctx, &c); !o.OK {
			t.Fatalf("%s: %+v", c.Kind, o)
		}
	}
	b2, err := dummy.New(dummy.Config{Dir: dir, ScriptsRef: "ignored: state exists"})
	if err != nil {
		t.Fatal(err)
	}
	st := b2.State()
	if st.Installed.Version != "3.7.0" || st.Role != "broker" || st.ConfigRef != "c1" || st.ScriptsRef != "v1" || st.Services["broker"] != "running" || len(st.Files) != 1 {
		t.Fatalf("reloaded state = %+v", st)
	}
	if o := b2.Exec(ctx, &agentproto.Command{Kind: agentproto.CmdValidate}); !o.OK {
		t.Fatalf("validate after reload: %+v", o)
	}
}

func TestDurations(t *testing.T) {
	zero := 0.0
	tests := []struct {
		name  string
		knobs dummy.Knobs
		cmd   agentproto.Command
		want  time.Duration
	}{
		{"default", dummy.Knobs{Jitter: &zero}, agentproto.Command{Kind: agentproto.CmdInstall}, dummy.DefaultDurations[agentproto.CmdInstall]},
		{"configured", dummy.Knobs{Jitter: &zero, Durations: map[string]dummy.Duration{"install": dummy.Duration(time.Second)}}, agentproto.Command{Kind: agentproto.CmdInstall}, time.Second},
		{"slow", dummy.Knobs{Jitter: &zero, Slow: 3, Durations: map[string]dummy.Duration{"install": dummy.Duration(time.Second)}}, agentproto.Command{Kind: agentproto.CmdInstall}, 3 * time.Second},
		{"hang", dummy.Knobs{Hang: []string{"install"}}, agentproto.Command{Kind: agentproto.CmdInstall}, agent.Forever},
		{"reboot", dummy.Knobs{Jitter: &zero}, agentproto.Command{Kind: agentproto.CmdMaintenance, Params: map[string]string{"mode": "reboot"}}, dummy.DefaultReboot},
		{"restart", dummy.Knobs{Jitter: &zero}, agentproto.Command{Kind: agentproto.CmdMaintenance}, dummy.DefaultRestart},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := dummy.New(dummy.Config{Dir: t.TempDir(), Profile: dummy.NewProfile(tc.knobs)})
			if err != nil {
				t.Fatal(err)
			}
			if got := b.Duration(&tc.cmd); got != tc.want {
				t.Fatalf("Duration = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestKnobsJSON(t *testing.T) {
	var k dummy.Knobs
	raw := `{"durations": {"install": "2s", "configure": 150}, "slow": 2, "fail_install": [{"version": "3.5.0"}], "hang": ["validate"], "crash": ["configure"]}`
	if err := json.Unmarshal([]byte(raw), &k); err != nil {
		t.Fatal(err)
	}
	if time.Duration(k.Durations["install"]) != 2*time.Second || time.Duration(k.Durations["configure"]) != 150*time.Millisecond || k.Slow != 2 || k.FailInstall[0].Version != "3.5.0" {
		t.Fatalf("knobs = %+v", k)
	}
	if err := k.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := dummy.Knobs{Slow: -1}
	if bad.Validate() == nil {
		t.Fatal("negative slow factor accepted")
	}
	if err := json.Unmarshal([]byte(`{"durations": {"install": "soon"}}`), &k); err == nil {
		t.Fatal("bad duration accepted")
	}
	// Per-node knobs override the shared profile and can be cleared.
	p := dummy.NewProfile(dummy.Knobs{Slow: 5})
	b, _ := dummy.New(dummy.Config{Dir: t.TempDir(), Profile: p})
	b.SetKnobs(&dummy.Knobs{Slow: 7})
	if b.Knobs().Slow != 7 {
		t.Fatal("override not in effect")
	}
	b.SetKnobs(nil)
	p.Set(dummy.Knobs{Slow: 9})
	if b.Knobs().Slow != 9 {
		t.Fatal("profile change not seen")
	}
}

func TestInstallVersions(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		fail []dummy.Package
		ok   bool
	}{
		{"no fault", nil, true},
		{"package version", []dummy.Package{{Version: "3.5.9-1"}}, false},
		{"component version", []dummy.Package{{Name: "zookeeper", Version: "3.5.9"}}, false},
		{"another version", []dummy.Package{{Version: "3.4.6"}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := dummy.New(dummy.Config{Dir: t.TempDir(), Profile: dummy.NewProfile(dummy.Knobs{FailInstall: tc.fail})})
			// What the control plane sends: the component's version and install.json's package.
			o := b.Exec(ctx, &agentproto.Command{Kind: agentproto.CmdInstall, Role: "zookeeper", Type: "zookeeper", Version: "3.5.9", Package: &agentproto.Package{Name: "zookeeper", Version: "3.5.9-1"}})
			if o.OK != tc.ok {
				t.Fatalf("outcome = %+v, want ok=%v", o, tc.ok)
			}
			want := ""
			if tc.ok {
				want = "3.5.9" // the component's version, as the control plane records it
			}
			if got := b.Status(ctx).Installed; got != want {
				t.Fatalf("installed = %q, want %q", got, want)
			}
		})
	}
}
