// Package host is the agent backend of real nodes: it runs the script repo's scripts
// (seed 000 §4.2.3, §4.4) on the host, with timeouts and bounded output.
//
// Under the script base path (Config.ScriptsDir, a checkout of the script repo):
//
//	cmd/<role>/<version>/install.json  install metadata: {"package", "version", "verify"}
//	cmd/<role>/<version>/install.sh    install, if present (args: name version); otherwise
//	                                   the install command template (apt-get by default)
//	puppet/manifests/<role>/site.pp    written by pre_configure from the sections
//	cmd/<role>/<version>/runpuppet.sh  configure (arg: the script base path)
//	cmd/<role>/<version>/validate.sh   validate (arg: the script base path)
//	cmd/<role>/<version>/service.sh    start|stop|restart|status (also maintenance restart)
//	cmd/<role>/<version>/drain.sh      drain, if present
//	guestcmds/<group>/<name>           guestcmd (args: the command's args, split on spaces)
//
// sync_scripts fetches Config.ScriptsRepo into the base path and checks out the ref;
// put_file downloads the file's URL to its target path. The role and version of the last
// install are remembered in Config.StateDir, for commands that do not name them.
package host

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/straas/straas/agent"
	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/errs"
)

// Defaults of Config.
const (
	DefaultTimeout        = 10 * time.Minute
	DefaultInstallCommand = "apt-get install -y --force-yes {name}={version}"
	DefaultVerifyCommand  = "dpkg -l | grep {name} | grep {version}"
	StatusTimeout         = 5 * time.Second
	MaxFile               = 64 << 20
)

// Config configures the host backend.
type Config struct {
	ScriptsDir string // the script base path: a checkout of the script repo (required)
	StateDir   string // where the backend keeps its state; default ScriptsDir + ".state"
	Hostname   string // default os.Hostname()
	IPs        []string
	Timeout    time.Duration // for commands without a deadline; default DefaultTimeout
	Shell      string        // runs install/verify templates and non-executable scripts; default /bin/sh
	// InstallCommand and VerifyCommand are shell templates with {name} and {version};
	// a command's Params["install_command"] / ["verify_command"] override them, and
	// VerifyCommand "-" skips verification.
	InstallCommand string
	VerifyCommand  string
	ScriptsRepo    string // git URL fetched by sync_scripts
	HTTPClient     *http.Client
	Env            []string // extra environment for scripts
}

// Backend runs scripts on this host.
type Backend struct {
	cfg Config

	mu    sync.Mutex
	state state
}

type state struct {
	Role       string `json:"role,omitempty"`
	Version    string `json:"version,omitempty"`   // of the component: names the script directory
	Package    string `json:"package,omitempty"`   // the package installed
	Installed  string `json:"installed,omitempty"` // its version
	ConfigRef  string `json:"config_ref,omitempty"`
	ScriptsRef string `json:"scripts_ref,omitempty"`
}

var _ agent.Backend = (*Backend)(nil)

// New returns a host backend, loading its state.
func New(cfg Config) (*Backend, error) {
	if cfg.ScriptsDir == "" {
		return nil, errs.Invalidf("scripts_dir", "the host backend needs the script base path")
	}
	abs, err := filepath.Abs(cfg.ScriptsDir)
	if err != nil {
		return nil, fmt.Errorf("host backend: %w", err)
	}
	cfg.ScriptsDir = abs
	if cfg.StateDir == "" {
		cfg.StateDir = abs + ".state"
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.IPs == nil {
		cfg.IPs = localIPs()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Shell == "" {
		cfg.Shell = "/bin/sh"
	}
	if cfg.InstallCommand == "" {
		cfg.InstallCommand = DefaultInstallCommand
	}
	if cfg.VerifyCommand == "" {
		cfg.VerifyCommand = DefaultVerifyCommand
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 5 * time.Minute}
	}
	b := &Backend{cfg: cfg}
	raw, err := os.ReadFile(filepath.Join(cfg.StateDir, "state.json"))
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &b.state); err != nil {
			return nil, fmt.Errorf("host backend: read state: %w", err)
		}
	case !os.IsNotExist(err):
		return nil, fmt.Errorf("host backend: %w", err)
	}
	return b, nil
}

func localIPs() []string {
	var out []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			out = append(out, n.IP.String())
		}
	}
	return out
}

// Boot reports the host's name and addresses.
func (b *Backend) Boot(ctx context.Context) (agentproto.Hello, error) {
	return agentproto.Hello{Hostname: b.cfg.Hostname, IPs: b.cfg.IPs}, nil
}

// Status reports the service of the installed role (service.sh status) and host metrics.
func (b *Backend) Status(ctx context.Context) agent.Status {
	b.mu.Lock()
	s := b.state
	b.mu.Unlock()
	// The component's version is what the control plane compares, not the package's.
	installed := ""
	if s.Installed != "" {
		installed = cmp.Or(s.Version, s.Installed)
	}
	st := agent.Status{Installed: installed, ConfigRef: s.ConfigRef, ScriptsRef: s.ScriptsRef, Metrics: hostMetrics()}
	if s.Role != "" && s.Version != "" {
		if script, err := b.script("cmd", s.Role, s.Version, "service.sh"); err == nil {
			ctx, cancel := context.WithTimeout(ctx, StatusTimeout)
			defer cancel()
			r := b.run(ctx, script, []string{"status"}, nil)
			status := "running"
			switch {
			case r.exit == 3: // LSB: not running
				status = "stopped"
			case r.exit != 0:
				status = "failed"
			}
			st.Services = map[string]string{s.Role: status}
		}
	}
	return st
}

// Exec runs cmd's script.
func (b *Backend) Exec(ctx context.Context, cmd *agentproto.Command) agent.Outcome {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.cfg.Timeout)
		defer cancel()
	}
	b.mu.Lock()
	s := b.state
	b.mu.Unlock()
	role, version := cmd.Role, cmd.Version
	if role == "" {
		role = s.Role
	}
	if version == "" {
		version = s.Version
	}
	switch cmd.Kind {
	case agentproto.CmdInstall:
		return b.install(ctx, cmd, role, version)
	case agentproto.CmdPreConfigure:
		return b.preConfigure(cmd, role)
	case agentproto.CmdConfigure:
		o := b.runScript(ctx, []string{"cmd", role, version, "runpuppet.sh"}, []string{b.cfg.ScriptsDir}, cmd)
		if o.OK && cmd.Ref != "" {
			b.update(func(s *state) { s.ConfigRef = cmd.Ref })
		}
		return o
	case agentproto.CmdValidate:
		return b.runScript(ctx, []string{"cmd", role, version, "validate.sh"}, []string{b.cfg.ScriptsDir}, cmd)
	case agentproto.CmdStart, agentproto.CmdStop, agentproto.CmdRestart:
		return b.runScript(ctx, []string{"cmd", role, version, "service.sh"}, []string{cmd.Kind}, cmd)
	case agentproto.CmdMaintenance:
		// On a real host a reboot would end this process; both modes restart the service.
		return b.runScript(ctx, []string{"cmd", role, version, "service.sh"}, []string{"restart"}, cmd)
	case agentproto.CmdDrain:
		script, err := b.script("cmd", role, version, "drain.sh")
		if errors.Is(err, os.ErrNotExist) {
			return agent.Outcome{OK: true, Output: "no drain.sh: nothing to drain"}
		}
		if err != nil {
			return fail(2, "drain: %v", err)
		}
		return b.run(ctx, script, nil, cmd.Params).outcome()
	case agentproto.CmdGuest:
		group, name, found := strings.Cut(cmd.Command, "/")
		if !found {
			return fail(2, "guestcmd: %q is not <group>/<name>", cmd.Command)
		}
		return b.runScript(ctx, []string{"guestcmds", group, name}, strings.Fields(cmd.Args), cmd)
	case agentproto.CmdSyncScripts:
		return b.syncScripts(ctx, cmd.Ref)
	case agentproto.CmdPutFile:
		return b.putFile(ctx, cmd.File)
	}
	return fail(2, "unknown command kind %q", cmd.Kind)
}

func fail(exit int, format string, args ...any) agent.Outcome {
	return agent.Outcome{ExitStatus: exit, Error: fmt.Sprintf(format, args...)}
}

// script resolves a script under the base path, refusing names that would leave it.
func (b *Backend) script(parts ...string) (string, error) {
	for _, p := range parts {
		if err := agent.SafeName("script path", p); err != nil {
			return "", err
		}
	}
	path := filepath.Join(append([]string{b.cfg.ScriptsDir}, parts...)...)
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a file", path)
	}
	return path, nil
}

func (b *Backend) runScript(ctx context.Context, parts, args []string, cmd *agentproto.Command) agent.Outcome {
	script, err := b.script(parts...)
	if err != nil {
		return fail(127, "%s: %v", cmd.Kind, err)
	}
	return b.run(ctx, script, args, cmd.Params).outcome()
}

// installMeta is cmd/<role>/<version>/install.json of the script repo: the package that
// makes up the role at that version, and how to check it is there.
type installMeta struct {
	Package string `json:"package"`
	Version string `json:"version"`
	Verify  string `json:"verify"`
	Install string `json:"install"`
}

// install installs the role's package. The package comes from the command (the control
// plane read install.json), else from install.json here, else is the component itself;
// the command is, in order: Params["install_command"], install.sh, install.json's
// "install", Config.InstallCommand. Verification likewise: Params["verify_command"],
// install.json's "verify", Config.VerifyCommand.
func (b *Backend) install(ctx context.Context, cmd *agentproto.Command, role, version string) agent.Outcome {
	var meta installMeta
	if p, err := b.script("cmd", role, version, "install.json"); err == nil {
		raw, err := os.ReadFile(p)
		if err == nil {
			err = json.Unmarshal(raw, &meta)
		}
		if err != nil {
			return fail(2, "install: %s: %v", p, err)
		}
	}
	name, pkgVersion := meta.Package, meta.Version
	if cmd.Package != nil {
		name, pkgVersion = cmd.Package.Name, cmd.Package.Version
	}
	if name == "" {
		name = cmd.Type
	}
	if pkgVersion == "" {
		pkgVersion = version
	}
	if name == "" || pkgVersion == "" {
		return fail(2, "install: no package name and version")
	}
	if err := agent.SafeName("package", name); err != nil {
		return fail(2, "install: %v", err)
	}
	if !safeVersion.MatchString(pkgVersion) {
		return fail(2, "install: %q is not a valid version", pkgVersion)
	}
	var r result
	script, scriptErr := b.script("cmd", role, version, "install.sh")
	switch {
	case cmd.Params["install_command"] != "":
		r = b.shell(ctx, fill(cmd.Params["install_command"], name, pkgVersion), cmd.Params)
	case scriptErr == nil:
		r = b.run(ctx, script, []string{name, pkgVersion}, cmd.Params)
	case meta.Install != "":
		r = b.shell(ctx, fill(meta.Install, name, pkgVersion), cmd.Params)
	default:
		r = b.shell(ctx, fill(b.cfg.InstallCommand, name, pkgVersion), cmd.Params)
	}
	if r.exit != 0 || r.err != "" {
		return r.outcome()
	}
	verify := b.cfg.VerifyCommand
	if meta.Verify != "" {
		verify = meta.Verify
	}
	if v, ok := cmd.Params["verify_command"]; ok {
		verify = v
	}
	if verify != "-" && verify != "" {
		v := b.shell(ctx, fill(verify, name, pkgVersion), cmd.Params)
		if v.exit != 0 || v.err != "" {
			o := v.outcome()
			o.Error = "installed, but verification failed: " + o.Error
			o.Output = r.out + v.out
			return o
		}
		r.out += v.out
	}
	b.update(func(s *state) {
		s.Package, s.Installed = name, pkgVersion
		if version != "" {
			s.Version = version
		}
		if cmd.Role != "" {
			s.Role = cmd.Role
		} else if s.Role == "" {
			s.Role = cmd.Type
		}
	})
	return r.outcome()
}

// safeVersion admits Debian-style versions (epoch, revision) and nothing a shell expands.
var safeVersion = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.+~:_-]*$`)

// fill substitutes {name} and {version}; both were checked to be safe.
func fill(tpl, name, version string) string {
	return strings.NewReplacer("{name}", name, "{version}", version).Replace(tpl)
}

func (b *Backend) preConfigure(cmd *agentproto.Command, role string) agent.Outcome {
	path, err := agent.SitePPPath(b.cfg.ScriptsDir, role)
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
	if err := writeFile(path, []byte(content), 0o644); err != nil {
		return fail(1, "pre_configure: %v", err)
	}
	b.update(func(s *state) { s.Role = role })
	return agent.Outcome{OK: true, Output: fmt.Sprintf("wrote %s (%d bytes)", path, len(content))}
}

func (b *Backend) syncScripts(ctx context.Context, ref string) agent.Outcome {
	if ref == "" {
		return fail(2, "sync_scripts: no ref")
	}
	if b.cfg.ScriptsRepo == "" {
		return fail(2, "sync_scripts: no scripts repository configured")
	}
	dir := b.cfg.ScriptsDir
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = git.PlainCloneContext(ctx, dir, false, &git.CloneOptions{URL: b.cfg.ScriptsRepo, NoCheckout: true})
	} else if err == nil {
		err = repo.FetchContext(ctx, &git.FetchOptions{
			RemoteName: "origin",
			RefSpecs:   []gitconfig.RefSpec{"+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"},
			Force:      true,
		})
		if errors.Is(err, git.NoErrAlreadyUpToDate) {
			err = nil
		}
	}
	if err != nil {
		return fail(1, "sync_scripts: fetch %s: %v", b.cfg.ScriptsRepo, err)
	}
	var hash *plumbing.Hash
	for _, rev := range []string{"refs/remotes/origin/" + ref, "refs/tags/" + ref, ref} {
		if hash, err = repo.ResolveRevision(plumbing.Revision(rev)); err == nil {
			break
		}
	}
	if err != nil {
		return fail(1, "sync_scripts: unknown ref %q: %v", ref, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return fail(1, "sync_scripts: %v", err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: *hash, Force: true}); err != nil {
		return fail(1, "sync_scripts: checkout %s: %v", ref, err)
	}
	b.update(func(s *state) { s.ScriptsRef = ref })
	return agent.Outcome{OK: true, Output: fmt.Sprintf("scripts at %s (%s)", ref, hash.String()[:12])}
}

func (b *Backend) putFile(ctx context.Context, f *agentproto.File) agent.Outcome {
	if f == nil || f.URL == "" || f.TargetPath == "" {
		return fail(2, "put_file: needs a URL and a target path")
	}
	if !filepath.IsAbs(f.TargetPath) {
		return fail(2, "put_file: target path %q is not absolute", f.TargetPath)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL, nil)
	if err != nil {
		return fail(2, "put_file: %v", err)
	}
	resp, err := b.cfg.HTTPClient.Do(req)
	if err != nil {
		return fail(1, "put_file: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(1, "put_file: GET %s: %s", f.Key, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxFile+1))
	if err != nil {
		return fail(1, "put_file: read: %v", err)
	}
	if len(data) > MaxFile {
		return fail(1, "put_file: %s is larger than %d bytes", f.Key, MaxFile)
	}
	if err := writeFile(filepath.Clean(f.TargetPath), data, 0o644); err != nil {
		return fail(1, "put_file: %v", err)
	}
	return agent.Outcome{OK: true, Output: fmt.Sprintf("wrote %s (%d bytes)", f.TargetPath, len(data))}
}

func (b *Backend) update(fn func(s *state)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fn(&b.state)
	raw, _ := json.MarshalIndent(b.state, "", "  ")
	// State is a convenience (defaults for later commands); failing to save is not fatal.
	_ = writeFile(filepath.Join(b.cfg.StateDir, "state.json"), raw, 0o600)
}

// result of one process.
type result struct {
	exit int
	out  string
	err  string
}

func (r result) outcome() agent.Outcome {
	o := agent.Outcome{OK: r.exit == 0 && r.err == "", ExitStatus: r.exit, Output: r.out, Error: r.err}
	if !o.OK && o.Error == "" {
		o.Error = "exit status " + strconv.Itoa(r.exit)
	}
	return o
}

func (b *Backend) shell(ctx context.Context, line string, params map[string]string) result {
	return b.exec(ctx, b.cfg.Shell, []string{"-c", line}, params)
}

// run runs a script: directly when executable, else through the shell.
func (b *Backend) run(ctx context.Context, script string, args []string, params map[string]string) result {
	if fi, err := os.Stat(script); err == nil && fi.Mode()&0o111 != 0 {
		return b.exec(ctx, script, args, params)
	}
	return b.exec(ctx, b.cfg.Shell, append([]string{script}, args...), params)
}

func (b *Backend) exec(ctx context.Context, name string, args []string, params map[string]string) result {
	c := exec.CommandContext(ctx, name, args...)
	c.Dir = b.cfg.ScriptsDir
	c.Env = append(os.Environ(), b.cfg.Env...)
	c.Env = append(c.Env, "STRAAS_SCRIPT_BASE="+b.cfg.ScriptsDir)
	for k, v := range params {
		if agent.SafeName("param", k) == nil {
			c.Env = append(c.Env, "STRAAS_PARAM_"+strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(k))+"="+v)
		}
	}
	out := &tail{max: agentproto.MaxOutput}
	c.Stdout, c.Stderr = out, out
	// Kill the whole process group on timeout, so that children die too.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 2 * time.Second
	err := c.Run()
	r := result{out: out.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		r.exit = -1
		r.err = "timed out: " + ctx.Err().Error()
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
	case err != nil:
		r.exit = 127
		r.err = err.Error()
	}
	return r
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu      sync.Mutex
	max     int
	buf     []byte
	dropped int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.dropped += over
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dropped == 0 {
		return string(t.buf)
	}
	return agent.Truncate(fmt.Sprintf("[... %d bytes truncated ...]\n", t.dropped)+string(t.buf), t.max)
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".straas-tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// hostMetrics reads load, memory and root disk usage (Linux; zero elsewhere).
func hostMetrics() map[string]float64 {
	m := map[string]float64{}
	if raw, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(raw)); len(f) > 0 {
			if l, err := strconv.ParseFloat(f[0], 64); err == nil {
				m["cpu"] = round1(100 * l / float64(runtime.NumCPU()))
			}
		}
	}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		var total, avail float64
		for _, line := range strings.Split(string(raw), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			v, _ := strconv.ParseFloat(f[1], 64)
			switch f[0] {
			case "MemTotal:":
				total = v
			case "MemAvailable:":
				avail = v
			}
		}
		if total > 0 {
			m["mem"] = round1(100 * (total - avail) / total)
		}
	}
	var fs syscall.Statfs_t
	if syscall.Statfs("/", &fs) == nil && fs.Blocks > 0 {
		m["disk"] = round1(100 * float64(fs.Blocks-fs.Bfree) / float64(fs.Blocks))
	}
	return m
}

func round1(f float64) float64 { return float64(int(f*10)) / 10 }
