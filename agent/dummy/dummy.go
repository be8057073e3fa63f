// Package dummy is the agent backend of mock nodes (DESIGN §5, seed 003): it runs no
// scripts but keeps the node's state in files under the node's directory — installed
// package, site.pp, service status, applied config and scripts refs, pushed files — and
// simulates the outcomes and durations of commands. Its behaviour is data (Knobs), like
// KWOK stages and Nomad's mock driver: per-kind durations with jitter, a slow factor,
// faults (failing installs of a package version, failing, hanging or crashing kinds) and
// injected metrics (a CPU load).
//
// Given a script reader (Config.Scripts), a node decides outcomes from the script repo at
// its scripts ref, as a host running the scripts would: install needs
// cmd/<role>/<version>/install.json naming the command's package, configure needs
// runpuppet.sh, validate needs validate.sh (and opens the ports components/<type>.json
// lists for the role), a guest command needs guestcmds/<group>/<name>. Faults set by knobs
// win over what the files say. Without a reader every script is taken as present.
//
// Layout of a node directory:
//
//	state.json                          the node's state (written when it changes)
//	puppet/manifests/<role>/site.pp     written by pre_configure
//	files/<target path>                 written by put_file
package dummy

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/straas/straas/agent"
	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/errs"
)

// Duration is a time.Duration that reads and writes JSON as "150ms" (or a number of
// milliseconds).
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return errs.Invalidf("duration", "%q: %v", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return errs.Invalidf("duration", "want a string like \"150ms\" or milliseconds, got %s", b)
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}

// Package matches an installed package: an empty field matches anything.
type Package struct {
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

func (p Package) matches(name, version string) bool {
	return (p.Name == "" || p.Name == name) && (p.Version == "" || p.Version == version)
}

// Knobs are a mock node's behaviour. The zero value behaves normally with the default
// durations.
type Knobs struct {
	// Durations of commands by kind; a kind not listed takes DefaultDurations[kind].
	Durations map[string]Duration `json:"durations,omitempty"`
	// Jitter varies every duration by ± this fraction; nil: DefaultJitter.
	Jitter *float64 `json:"jitter,omitempty"`
	// Slow multiplies every duration (an overloaded node); 0 means 1.
	Slow float64 `json:"slow,omitempty"`
	// FailInstall: installing a matching package fails (apt cannot find the version).
	FailInstall []Package `json:"fail_install,omitempty"`
	// Fail: commands of these kinds fail with the given message.
	Fail map[string]string `json:"fail,omitempty"`
	// Hang: commands of these kinds never complete (the agent answers at their deadline).
	Hang []string `json:"hang,omitempty"`
	// Crash: the agent dies on receiving a command of these kinds.
	Crash []string `json:"crash,omitempty"`
	// Restart and Reboot are how long maintenance takes in those modes.
	Restart Duration `json:"restart,omitempty"`
	Reboot  Duration `json:"reboot,omitempty"`
	// GuestOutput is the output of guestcmds by "<group>/<name>"; default "ok".
	GuestOutput map[string]string `json:"guest_output,omitempty"`
	// Metrics are fixed values heartbeats report instead of the simulated ones, by name
	// (e.g. {"cpu": 95}: a node under load); metrics not listed stay simulated.
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// DefaultJitter is the default variation of durations.
const DefaultJitter = 0.2

// DefaultDurations are quick enough for a 10-node topology to be ACTIVE in under two
// seconds, slow enough for commands to overlap like real ones.
var DefaultDurations = map[string]time.Duration{
	agentproto.CmdInstall:      40 * time.Millisecond,
	agentproto.CmdPreConfigure: 5 * time.Millisecond,
	agentproto.CmdConfigure:    30 * time.Millisecond,
	agentproto.CmdValidate:     10 * time.Millisecond,
	agentproto.CmdStart:        10 * time.Millisecond,
	agentproto.CmdStop:         10 * time.Millisecond,
	agentproto.CmdRestart:      20 * time.Millisecond,
	agentproto.CmdGuest:        5 * time.Millisecond,
	agentproto.CmdSyncScripts:  20 * time.Millisecond,
	agentproto.CmdPutFile:      5 * time.Millisecond,
	agentproto.CmdDrain:        10 * time.Millisecond,
}

// Default maintenance durations.
const (
	DefaultRestart = 100 * time.Millisecond
	DefaultReboot  = 500 * time.Millisecond
)

// Validate checks knobs given by an operator.
func (k *Knobs) Validate() error {
	if k == nil {
		return nil
	}
	if k.Slow < 0 {
		return errs.Invalidf("slow", "must not be negative")
	}
	if k.Jitter != nil && (*k.Jitter < 0 || *k.Jitter >= 1) {
		return errs.Invalidf("jitter", "must be in [0, 1)")
	}
	for kind, d := range k.Durations {
		if d < 0 {
			return errs.Invalidf("durations."+kind, "must not be negative")
		}
	}
	for name, v := range k.Metrics {
		if percentMetrics[name] && (v < 0 || v > 100) {
			return errs.Invalidf("metrics."+name, "a percentage: must be in [0, 100], got %g", v)
		}
	}
	return nil
}

// percentMetrics are the metrics in percent every node reports.
var percentMetrics = map[string]bool{"cpu": true, "mem": true, "disk": true}

// Profile holds knobs shared by many nodes; it can be changed while they run.
type Profile struct{ p atomic.Pointer[Knobs] }

// NewProfile returns a profile holding k.
func NewProfile(k Knobs) *Profile {
	p := &Profile{}
	p.Set(k)
	return p
}

// Set replaces the knobs.
func (p *Profile) Set(k Knobs) { p.p.Store(&k) }

// Get returns the current knobs (do not modify them).
func (p *Profile) Get() *Knobs { return p.p.Load() }

// State is what a mock node keeps in state.json.
type State struct {
	Installed  *agentproto.Package `json:"installed,omitempty"`
	Version    string              `json:"version,omitempty"` // of the component
	Role       string              `json:"role,omitempty"`
	Type       string              `json:"type,omitempty"`
	SitePP     []string            `json:"site_pp,omitempty"` // roles with a site.pp
	ConfigRef  string              `json:"config_ref,omitempty"`
	Configured bool                `json:"configured,omitempty"`
	ScriptsRef string              `json:"scripts_ref,omitempty"`
	Services   map[string]string   `json:"services,omitempty"`
	Drained    bool                `json:"drained,omitempty"`
	Ports      []int               `json:"ports,omitempty"` // opened by validate (the type's validate_ports)
	Files      []string            `json:"files,omitempty"` // target paths put there
	LastGuest  string              `json:"last_guestcmd,omitempty"`
	Executed   int                 `json:"executed"`
}

// Config configures one mock node's backend.
type Config struct {
	Dir        string // the node's directory; created on the first write
	Hostname   string
	IPs        []string
	ScriptsRef string   // scripts ref the node starts with
	Profile    *Profile // shared knobs; nil: defaults
	// Fetch gets put_file content; default: an HTTP GET of File.URL.
	Fetch func(ctx context.Context, f *agentproto.File) (io.ReadCloser, error)
	// Scripts reads the script repo; nil: every script is taken as present.
	Scripts ScriptReader
}

// ScriptReader returns a file of the script repo at a ref (a commit or a branch; ""
// for master). A missing file or ref is an errs.NotFound error.
type ScriptReader func(ctx context.Context, ref, path string) ([]byte, error)

// MaxFile bounds what put_file writes.
const MaxFile = 16 << 20

// Backend is a mock node. Safe for concurrent use.
type Backend struct {
	dir      string
	hostname string
	ips      []string
	profile  *Profile
	fetch    func(ctx context.Context, f *agentproto.File) (io.ReadCloser, error)
	scripts  ScriptReader
	override atomic.Pointer[Knobs]
	seed     uint32

	mu    sync.Mutex
	state State
}

var (
	_ agent.Backend   = (*Backend)(nil)
	_ agent.Simulated = (*Backend)(nil)
)

// New returns the backend of a node, loading its state if the directory has one.
func New(cfg Config) (*Backend, error) {
	if cfg.Dir == "" {
		return nil, errs.Invalidf("dir", "a dummy backend needs a directory")
	}
	b := &Backend{dir: cfg.Dir, hostname: cfg.Hostname, ips: cfg.IPs, profile: cfg.Profile, fetch: cfg.Fetch, scripts: cfg.Scripts}
	for _, c := range cfg.Dir {
		b.seed = b.seed*31 + uint32(c)
	}
	raw, err := os.ReadFile(filepath.Join(cfg.Dir, "state.json"))
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &b.state); err != nil {
			return nil, fmt.Errorf("dummy backend: read %s/state.json: %w", cfg.Dir, err)
		}
	case os.IsNotExist(err):
		b.state.ScriptsRef = cfg.ScriptsRef
	default:
		return nil, fmt.Errorf("dummy backend: %w", err)
	}
	return b, nil
}

// SetKnobs gives this node its own knobs instead of the profile's; nil reverts.
func (b *Backend) SetKnobs(k *Knobs) { b.override.Store(k) }

// Knobs returns the knobs in effect.
func (b *Backend) Knobs() *Knobs {
	if k := b.override.Load(); k != nil {
		return k
	}
	if b.profile != nil {
		if k := b.profile.Get(); k != nil {
			return k
		}
	}
	return &Knobs{}
}

// State returns a copy of the node's state.
func (b *Backend) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.state
	s.Services = cloneMap(b.state.Services)
	s.SitePP = slices.Clone(b.state.SitePP)
	s.Files = slices.Clone(b.state.Files)
	s.Ports = slices.Clone(b.state.Ports)
	if b.state.Installed != nil {
		p := *b.state.Installed
		s.Installed = &p
	}
	return s
}

// Dir is the node's directory.
func (b *Backend) Dir() string { return b.dir }

// Boot reports the node's identity.
func (b *Backend) Boot(ctx context.Context) (agentproto.Hello, error) {
	return agentproto.Hello{Hostname: b.hostname, IPs: b.ips}, nil
}

// Status reports services and plausible metrics.
func (b *Backend) Status(ctx context.Context) agent.Status {
	b.mu.Lock()
	st := agent.Status{
		Services:   cloneMap(b.state.Services),
		ConfigRef:  b.state.ConfigRef,
		ScriptsRef: b.state.ScriptsRef,
	}
	if b.state.Installed != nil {
		// The component's version is what the control plane compares, not the package's.
		st.Installed = cmp.Or(b.state.Version, b.state.Installed.Version)
	}
	running := 0
	for _, s := range b.state.Services {
		if s == "running" {
			running++
		}
	}
	b.mu.Unlock()
	base := float64(b.seed % 20)
	load := 0.0
	if running > 0 {
		load = 15
	}
	st.Metrics = map[string]float64{
		"cpu":              round1(2 + base/2 + load + 5*rand.Float64()),
		"mem":              round1(20 + base + load + 3*rand.Float64()),
		"disk":             round1(10 + base/2),
		"services_running": float64(running),
	}
	for name, v := range b.Knobs().Metrics {
		st.Metrics[name] = v
	}
	return st
}

func round1(f float64) float64 { return float64(int(f*10)) / 10 }

// Duration is how long cmd takes on this node (agent.Forever when it hangs).
func (b *Backend) Duration(cmd *agentproto.Command) time.Duration {
	k := b.Knobs()
	if slices.Contains(k.Hang, cmd.Kind) {
		return agent.Forever
	}
	if slices.Contains(k.Crash, cmd.Kind) {
		return 0 // it dies on receipt
	}
	var d time.Duration
	switch {
	case cmd.Kind == agentproto.CmdMaintenance && cmd.Params["mode"] == "reboot":
		d = time.Duration(k.Reboot)
		if d == 0 {
			d = DefaultReboot
		}
	case cmd.Kind == agentproto.CmdMaintenance:
		d = time.Duration(k.Restart)
		if d == 0 {
			d = DefaultRestart
		}
	default:
		if v, ok := k.Durations[cmd.Kind]; ok {
			d = time.Duration(v)
		} else {
			d = DefaultDurations[cmd.Kind]
		}
	}
	j := DefaultJitter
	if k.Jitter != nil {
		j = *k.Jitter
	}
	if j > 0 {
		d = time.Duration(float64(d) * (1 + j*(2*rand.Float64()-1)))
	}
	if k.Slow > 0 {
		d = time.Duration(float64(d) * k.Slow)
	}
	return d
}

func fail(exit int, format string, args ...any) agent.Outcome {
	return agent.Outcome{OK: false, ExitStatus: exit, Error: fmt.Sprintf(format, args...)}
}

func ok(format string, args ...any) agent.Outcome {
	return agent.Outcome{OK: true, Output: fmt.Sprintf(format, args...)}
}

// Exec applies cmd to the node's state and files.
func (b *Backend) Exec(ctx context.Context, cmd *agentproto.Command) agent.Outcome {
	k := b.Knobs()
	if slices.Contains(k.Crash, cmd.Kind) {
		return agent.Outcome{Crash: true}
	}
	if msg, bad := k.Fail[cmd.Kind]; bad {
		return fail(1, "%s", msg)
	}
	files := b.readScripts(ctx, cmd) // before the lock: heartbeats need not wait for git
	b.mu.Lock()
	defer b.mu.Unlock()
	before, _ := json.Marshal(b.state)
	o := b.exec(ctx, k, cmd, files)
	b.state.Executed++
	if after, _ := json.Marshal(b.state); string(after) != string(before) {
		if err := b.saveLocked(); err != nil {
			return fail(-1, "save node state: %v", err)
		}
	}
	return o
}

func (b *Backend) role(cmd *agentproto.Command) string {
	switch {
	case cmd.Role != "":
		return cmd.Role
	case cmd.Type != "":
		return cmd.Type
	default:
		return b.state.Role
	}
}

func (b *Backend) exec(ctx context.Context, k *Knobs, cmd *agentproto.Command, files scriptFiles) agent.Outcome {
	switch cmd.Kind {
	case agentproto.CmdInstall:
		pkg := agentproto.Package{Name: cmd.Type, Version: cmd.Version}
		if cmd.Package != nil {
			pkg = *cmd.Package
		}
		if pkg.Name == "" || pkg.Version == "" {
			return fail(100, "install: no package name and version")
		}
		for _, p := range k.FailInstall {
			// A knob may name the package's version or the component's.
			if p.matches(pkg.Name, pkg.Version) || (cmd.Type != "" && p.matches(cmd.Type, cmd.Version)) {
				return fail(100, "E: Version '%s' for '%s' was not found", pkg.Version, pkg.Name)
			}
		}
		if o, bad := files.checkInstall(cmd, &pkg); bad {
			return o
		}
		b.state.Installed = &pkg
		b.state.Version = cmd.Version
		if cmd.Role != "" {
			b.state.Role = cmd.Role
		}
		if cmd.Type != "" {
			b.state.Type = cmd.Type
		}
		return ok("Setting up %s (%s) ...\nii  %s  %s", pkg.Name, pkg.Version, pkg.Name, pkg.Version)

	case agentproto.CmdPreConfigure:
		role := b.role(cmd)
		path, err := agent.SitePPPath(b.dir, role)
		if err != nil {
			return fail(2, "pre_configure: %v", err)
		}
		content := cmd.SitePP
		if content == "" {
			if len(cmd.Sections) == 0 {
				return fail(2, "pre_configure: no sections and no site.pp")
			}
			content = agent.SitePP(cmd.Sections)
		}
		if err := writeFile(path, []byte(content)); err != nil {
			return fail(1, "pre_configure: %v", err)
		}
		if !slices.Contains(b.state.SitePP, role) {
			b.state.SitePP = append(b.state.SitePP, role)
			sort.Strings(b.state.SitePP)
		}
		b.state.Role = role
		return ok("wrote %s (%d bytes)", path, len(content))

	case agentproto.CmdConfigure:
		role := b.role(cmd)
		if o, bad := files.missing(cmd.Kind, fileRunPuppet); bad {
			return o
		}
		if b.state.Installed == nil {
			return fail(1, "configure: nothing installed")
		}
		if !slices.Contains(b.state.SitePP, role) {
			return fail(1, "configure: no site.pp for role %q: run pre_configure first", role)
		}
		if cmd.Ref != "" {
			b.state.ConfigRef = cmd.Ref
		}
		b.state.Configured = true
		b.setService(role, "running")
		return ok("Notice: Compiled catalog for %s\nNotice: Applied catalog in 0.42 seconds", b.hostname)

	case agentproto.CmdValidate:
		role := b.role(cmd)
		if o, bad := files.missing(cmd.Kind, fileValidate); bad {
			return o
		}
		if b.state.Installed == nil || !b.state.Configured {
			return fail(1, "validate: %s is not installed and configured", role)
		}
		if s := b.state.Services[role]; s != "running" {
			return fail(1, "validate: service %s is %s", role, orNone(s))
		}
		if ports := files.ports(role); len(ports) > 0 {
			b.state.Ports = ports
			return ok("%s: ports %s open", role, joinInts(ports))
		}
		return ok("%s: port check ok", role)

	case agentproto.CmdStart, agentproto.CmdStop, agentproto.CmdRestart:
		if b.state.Installed == nil {
			return fail(1, "%s: nothing installed", cmd.Kind)
		}
		status := "running"
		if cmd.Kind == agentproto.CmdStop {
			status = "stopped"
		}
		names := b.serviceNames(cmd)
		for _, n := range names {
			b.setService(n, status)
		}
		if cmd.Kind == agentproto.CmdStop && !slices.Contains(slices.Collect(maps.Values(b.state.Services)), "running") {
			b.state.Ports = nil // nothing listens any more
		}
		if cmd.Kind != agentproto.CmdStop {
			b.state.Drained = false
		}
		return ok("%s: %s", cmd.Kind, strings.Join(names, ", "))

	case agentproto.CmdGuest:
		group, name, found := strings.Cut(cmd.Command, "/")
		if !found || agent.SafeName("command", group) != nil || agent.SafeName("command", name) != nil {
			return fail(2, "guestcmd: %q is not <group>/<name>", cmd.Command)
		}
		if o, bad := files.missing(cmd.Kind, fileGuest); bad {
			return o
		}
		b.state.LastGuest = strings.TrimSpace(cmd.Command + " " + cmd.Args)
		if out, ok := k.GuestOutput[cmd.Command]; ok {
			return agent.Outcome{OK: true, Output: out}
		}
		return ok("ok")

	case agentproto.CmdSyncScripts:
		if cmd.Ref == "" {
			return fail(2, "sync_scripts: no ref")
		}
		b.state.ScriptsRef = cmd.Ref
		return ok("scripts at %s", cmd.Ref)

	case agentproto.CmdPutFile:
		return b.putFile(ctx, cmd.File)

	case agentproto.CmdMaintenance:
		// Services that ran before the restart or reboot run again after it.
		mode := cmd.Params["mode"]
		if mode == "" {
			mode = "restart"
		}
		return ok("maintenance %s done", mode)

	case agentproto.CmdDrain:
		for n := range b.state.Services {
			b.state.Services[n] = "stopped"
		}
		b.state.Ports = nil
		b.state.Drained = true
		return ok("drained")
	}
	return fail(2, "unknown command kind %q", cmd.Kind)
}

func orNone(s string) string {
	if s == "" {
		return "not present"
	}
	return s
}

func (b *Backend) serviceNames(cmd *agentproto.Command) []string {
	if s := cmd.Params["service"]; s != "" {
		return []string{s}
	}
	if cmd.Role != "" {
		return []string{cmd.Role}
	}
	names := make([]string, 0, len(b.state.Services))
	for n := range b.state.Services {
		names = append(names, n)
	}
	if len(names) == 0 && b.state.Role != "" {
		names = append(names, b.state.Role)
	}
	sort.Strings(names)
	return names
}

func (b *Backend) setService(name, status string) {
	if b.state.Services == nil {
		b.state.Services = map[string]string{}
	}
	b.state.Services[name] = status
}

func (b *Backend) putFile(ctx context.Context, f *agentproto.File) agent.Outcome {
	if f == nil || f.TargetPath == "" {
		return fail(2, "put_file: no file or target path")
	}
	rel := filepath.Clean("/" + f.TargetPath)[1:]
	if rel == "" {
		return fail(2, "put_file: bad target path %q", f.TargetPath)
	}
	fetch := b.fetch
	if fetch == nil {
		fetch = httpFetch
	}
	rc, err := fetch(ctx, f)
	if err != nil {
		return fail(1, "put_file: fetch %s: %v", f.Key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, MaxFile+1))
	if err != nil {
		return fail(1, "put_file: read %s: %v", f.Key, err)
	}
	if len(data) > MaxFile {
		return fail(1, "put_file: %s is larger than %d bytes", f.Key, MaxFile)
	}
	if err := writeFile(filepath.Join(b.dir, "files", rel), data); err != nil {
		return fail(1, "put_file: %v", err)
	}
	if !slices.Contains(b.state.Files, f.TargetPath) {
		b.state.Files = append(b.state.Files, f.TargetPath)
	}
	return ok("wrote %s (%d bytes)", f.TargetPath, len(data))
}

var fetchClient = &http.Client{Timeout: 30 * time.Second}

func httpFetch(ctx context.Context, f *agentproto.File) (io.ReadCloser, error) {
	if f.URL == "" {
		return nil, errs.Invalidf("file.url", "no URL to fetch %s from", f.Key)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := fetchClient.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", f.URL, resp.Status)
	}
	return resp.Body, nil
}

func (b *Backend) saveLocked() error {
	raw, err := json.MarshalIndent(b.state, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(b.dir, "state.json"), raw)
}

// writeFile writes atomically (temp file and rename), creating directories.
func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
