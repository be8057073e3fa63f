package dummy

import (
	"cmp"
	"context"
	"encoding/json"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/straas/straas/agent"
	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/errs"
)

// What a command needs of the script repo (docs/script-repo.md), by purpose.
const (
	fileInstall   = "install"   // cmd/<role>/<version>/install.json
	fileRunPuppet = "runpuppet" // cmd/<role>/<version>/runpuppet.sh
	fileValidate  = "validate"  // cmd/<role>/<version>/validate.sh
	fileGuest     = "guest"     // guestcmds/<group>/<name>
	fileType      = "type"      // components/<type>.json: the ports validate opens
)

// scriptFiles are the script repo files a command needs, read at the node's scripts ref
// before it runs. Without a reader it holds none, and every script counts as present.
type scriptFiles struct {
	ref   string
	files map[string]scriptFile // by purpose
}

type scriptFile struct {
	path string // "" when the command names no role or version to find it by
	data []byte
	err  error
}

// readScripts reads what cmd needs at the node's scripts ref.
func (b *Backend) readScripts(ctx context.Context, cmd *agentproto.Command) scriptFiles {
	if b.scripts == nil {
		return scriptFiles{}
	}
	b.mu.Lock()
	role, ref := b.role(cmd), b.state.ScriptsRef
	version, typ := cmp.Or(cmd.Version, b.state.Version), cmp.Or(cmd.Type, b.state.Type)
	b.mu.Unlock()

	want := map[string]string{}
	switch cmd.Kind {
	case agentproto.CmdInstall:
		want[fileInstall] = cmdPath(role, version, "install.json")
	case agentproto.CmdConfigure:
		want[fileRunPuppet] = cmdPath(role, version, "runpuppet.sh")
	case agentproto.CmdValidate:
		want[fileValidate] = cmdPath(role, version, "validate.sh")
		if agent.SafeName("type", typ) == nil {
			want[fileType] = path.Join("components", typ+".json")
		}
	case agentproto.CmdGuest:
		// A malformed name fails in exec before the file matters.
		if group, name, ok := strings.Cut(cmd.Command, "/"); ok && agent.SafeName("command", group) == nil && agent.SafeName("command", name) == nil {
			want[fileGuest] = path.Join("guestcmds", group, name)
		}
	}
	out := scriptFiles{ref: ref, files: make(map[string]scriptFile, len(want))}
	for purpose, p := range want {
		f := scriptFile{path: p}
		if p != "" {
			f.data, f.err = b.scripts(ctx, ref, p)
		}
		out.files[purpose] = f
	}
	return out
}

// cmdPath is cmd/<role>/<version>/<file>, or "" when role or version is not a name.
func cmdPath(role, version, file string) string {
	if agent.SafeName("role", role) != nil || agent.SafeName("version", version) != nil {
		return ""
	}
	return path.Join("cmd", role, version, file)
}

// at names the scripts ref in messages.
func (s scriptFiles) at() string {
	switch {
	case s.ref == "":
		return "master"
	case len(s.ref) == 40:
		return s.ref[:12]
	}
	return s.ref
}

// missing fails a command of kind whose script (by purpose) is not in the repo.
func (s scriptFiles) missing(kind, purpose string) (agent.Outcome, bool) {
	f, ok := s.files[purpose]
	switch {
	case !ok:
		return agent.Outcome{}, false
	case f.path == "":
		return fail(2, "%s: no role and version to find its %s script by", kind, purpose), true
	case errs.Is(f.err, errs.NotFound) && purpose == fileGuest:
		return fail(127, "guestcmd: %s: no such command (%s is not in the scripts at %s)",
			strings.TrimPrefix(f.path, "guestcmds/"), f.path, s.at()), true
	case errs.Is(f.err, errs.NotFound):
		return fail(1, "%s: %s is missing from the scripts at %s", kind, f.path, s.at()), true
	case f.err != nil:
		return fail(1, "%s: read %s at %s: %v", kind, f.path, s.at(), f.err), true
	}
	return agent.Outcome{}, false
}

// checkInstall fails an install whose install.json is missing, broken or names another
// package than the command; a command without a package installs the one it names.
func (s scriptFiles) checkInstall(cmd *agentproto.Command, pkg *agentproto.Package) (agent.Outcome, bool) {
	if o, bad := s.missing(cmd.Kind, fileInstall); bad {
		return o, true
	}
	f, ok := s.files[fileInstall]
	if !ok {
		return agent.Outcome{}, false
	}
	var spec struct {
		Package string `json:"package"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(f.data, &spec); err != nil || spec.Package == "" {
		return fail(2, "install: %s at %s: want {\"package\", \"version\"}, got %.200q", f.path, s.at(), f.data), true
	}
	if cmd.Package == nil {
		pkg.Name = spec.Package
		pkg.Version = cmp.Or(spec.Version, pkg.Version)
		return agent.Outcome{}, false
	}
	if spec.Package != cmd.Package.Name {
		return fail(100, "install: %s at %s names package %q, not %q", f.path, s.at(), spec.Package, cmd.Package.Name), true
	}
	return agent.Outcome{}, false
}

// ports are the ports components/<type>.json says role serves on (nil if unknown).
func (s scriptFiles) ports(role string) []int {
	f, ok := s.files[fileType]
	if !ok || f.err != nil {
		return nil
	}
	var def struct {
		ValidatePorts map[string][]int `json:"validate_ports"`
	}
	if json.Unmarshal(f.data, &def) != nil {
		return nil
	}
	ps := slices.Clone(def.ValidatePorts[role])
	slices.Sort(ps)
	return slices.Compact(ps)
}

func joinInts(xs []int) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, ", ")
}
