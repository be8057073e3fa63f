package gitrepo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
)

// TypeDef is everything the script repo says about a component type
// (components/<type>.json). The embedded model.ComponentType is what the API validates
// requests against.
type TypeDef struct {
	model.ComponentType
	Doc string `json:"doc,omitempty"`
	// DefaultLayout splits Size among roles when a request has no submodules.
	DefaultLayout []LayoutRole `json:"default_layout"`
	// Dependencies are the types a component of this type must or may depend on.
	Dependencies []Dependency `json:"dependencies,omitempty"`
	// Membership says whose configuration lists this component's nodes, i.e. what must
	// be reconfigured when nodes come or go.
	Membership Membership `json:"membership"`
	// ValidatePorts per role: the ports validate.sh checks (and the dummy agent opens).
	ValidatePorts map[string][]int `json:"validate_ports,omitempty"`
	// Services per role: the service names heartbeats report.
	Services map[string][]string `json:"services,omitempty"`
	// Drain, if set, runs on a node before it is removed (flexdown, replace).
	Drain *Drain `json:"drain,omitempty"`
	// File is where the definition came from, for messages.
	File string `json:"-"`
}

// LayoutRole is a role's share of a component's nodes.
type LayoutRole struct {
	Role  string `json:"role"`
	Count int    `json:"count,omitempty"` // fixed number of nodes
	Rest  bool   `json:"rest,omitempty"`  // takes the nodes the fixed counts leave
}

// Dependency is a type this type depends on.
type Dependency struct {
	Type     string `json:"type"`
	Required bool   `json:"required,omitempty"`
	Doc      string `json:"doc,omitempty"`
}

// Membership lists the roles whose node list appears in configuration.
type Membership struct {
	// Self: roles listed in the component's own configuration (zookeeper's server
	// list, storm's nimbus seeds): adding or removing such a node reconfigures the component.
	Self []string `json:"self,omitempty"`
	// Dependents: roles listed in dependents' configuration (kafka's zk_list): adding or
	// removing such a node reconfigures the components that depend on this one.
	Dependents []string `json:"dependents,omitempty"`
}

// Drain is the guest command that empties a node before it goes away.
type Drain struct {
	Roles   []string `json:"roles,omitempty"` // empty: every role
	Command string   `json:"command"`         // "<group>/<name>"
	// Args is a template over the node (see docs/script-repo.md), e.g. "{{ .Node.Index }}".
	Args string `json:"args,omitempty"`
	// TimeoutSeconds bounds the drain; 0 means the caller's default.
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
}

// ReconfigureSelf reports whether adding or removing a node of role changes the
// component's own configuration.
func (d *TypeDef) ReconfigureSelf(role string) bool { return contains(d.Membership.Self, role) }

// ReconfigureDependents reports whether adding or removing a node of role changes the
// configuration of components that depend on this one.
func (d *TypeDef) ReconfigureDependents(role string) bool {
	return contains(d.Membership.Dependents, role)
}

// DefaultRole is the role of a component without submodules that has a single role.
func (d *TypeDef) DefaultRole() string {
	if len(d.DefaultLayout) > 0 {
		return d.DefaultLayout[0].Role
	}
	return d.Roles[0]
}

// Layout returns the nodes per role of c: its submodules if it has any, otherwise the
// type's default layout applied to c.Size.
func (d *TypeDef) Layout(c *model.Component) model.Layout {
	if len(c.Submodules) > 0 || len(d.DefaultLayout) <= 1 {
		return c.Layout(d.DefaultRole())
	}
	left := c.Size
	var out model.Layout
	for _, lr := range d.DefaultLayout {
		if lr.Rest {
			continue
		}
		n := min(lr.Count, max(left, 0))
		left -= n
		out = append(out, model.RoleCount{Role: lr.Role, Count: n, Flavor: c.Flavor, Image: c.Image, EnableCName: c.EnableCName})
	}
	for _, lr := range d.DefaultLayout {
		if lr.Rest {
			out = append(out, model.RoleCount{Role: lr.Role, Count: max(left, 0), Flavor: c.Flavor, Image: c.Image, EnableCName: c.EnableCName})
			left = 0
		}
	}
	return out
}

// DrainFor returns the drain command for a node of role, if the type has one.
func (d *TypeDef) DrainFor(role string) (*Drain, bool) {
	if d.Drain == nil || (len(d.Drain.Roles) > 0 && !contains(d.Drain.Roles, role)) {
		return nil, false
	}
	return d.Drain, true
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// validate checks a definition read from file.
func (d *TypeDef) validate(file, name string) error {
	bad := func(field, format string, args ...any) error {
		return &errs.Error{Kind: errs.Invalid, Op: "load " + file, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	switch {
	case d.Type != name:
		return bad("type", "%q does not match the file name %q", d.Type, name)
	case len(d.Versions) == 0:
		return bad("versions", "at least one version is required")
	case len(d.Roles) == 0:
		return bad("roles", "at least one role is required")
	case d.DefaultFlavor == "":
		return bad("default_flavor", "required")
	case d.MinSize < 0:
		return bad("min_size", "must not be negative")
	}
	for i, v := range d.Versions {
		if v == "" || strings.ContainsAny(v, "/ ") {
			return bad(fmt.Sprintf("versions[%d]", i), "%q is not a version", v)
		}
	}
	rests := 0
	for i, lr := range d.DefaultLayout {
		if !d.HasRole(lr.Role) {
			return bad(fmt.Sprintf("default_layout[%d].role", i), "unknown role %q", lr.Role)
		}
		if lr.Rest {
			rests++
		}
	}
	if rests > 1 {
		return bad("default_layout", "only one role may take the rest")
	}
	check := func(field string, roles []string) error {
		for i, r := range roles {
			if !d.HasRole(r) {
				return bad(fmt.Sprintf("%s[%d]", field, i), "unknown role %q", r)
			}
		}
		return nil
	}
	if err := check("membership.self", d.Membership.Self); err != nil {
		return err
	}
	if err := check("membership.dependents", d.Membership.Dependents); err != nil {
		return err
	}
	for role := range d.ValidatePorts {
		if !d.HasRole(role) {
			return bad("validate_ports."+role, "unknown role")
		}
	}
	for role := range d.Services {
		if !d.HasRole(role) {
			return bad("services."+role, "unknown role")
		}
	}
	if d.Drain != nil {
		if g, n, ok := strings.Cut(d.Drain.Command, "/"); !ok || g == "" || n == "" {
			return bad("drain.command", "%q: want <group>/<name>", d.Drain.Command)
		}
		if err := check("drain.roles", d.Drain.Roles); err != nil {
			return err
		}
	}
	for i, dep := range d.Dependencies {
		if dep.Type == "" {
			return bad(fmt.Sprintf("dependencies[%d].type", i), "required")
		}
	}
	return nil
}

// catalog is the parsed components/ folder of one script repo commit.
type catalog struct {
	commit string
	types  map[string]*TypeDef
	broken map[string]error // type -> why its file does not load
}

// caches hold what is parsed from the repos, keyed by commit hash: a commit never
// changes, so entries never go stale, and a new commit simply misses.
type caches struct {
	mu        sync.Mutex
	catalog   *catalog
	preconfig map[string]*preConfigSpec // commit + "\x00" + file
	schemas   schemaCache
}

func (c *caches) init() {
	c.preconfig = map[string]*preConfigSpec{}
}

// catalogAt returns the catalog of the script repo's master.
func (r *Repos) catalog(ctx context.Context) (*catalog, error) {
	commit, err := r.Scripts.ResolveRef(ctx, Master)
	if err != nil {
		return nil, err
	}
	r.cache.mu.Lock()
	c := r.cache.catalog
	r.cache.mu.Unlock()
	if c != nil && c.commit == commit {
		return c, nil
	}
	c = &catalog{commit: commit, types: map[string]*TypeDef{}, broken: map[string]error{}}
	err = r.Scripts.at(ctx, commit, func(s snapshot) error {
		files, err := s.list("components")
		if err != nil {
			return err
		}
		for _, f := range files {
			if f.Type != EntryFile || path.Ext(f.Name) != ".json" {
				continue
			}
			name := strings.TrimSuffix(f.Name, ".json")
			b, _, err := s.file(f.Path)
			if err != nil {
				return err
			}
			d, err := parseTypeDef(f.Path, name, b)
			if err != nil {
				c.broken[name] = err
				r.log.Warn("component type does not load", "file", f.Path, "err", err)
				continue
			}
			c.types[name] = d
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.cache.mu.Lock()
	r.cache.catalog = c
	r.cache.mu.Unlock()
	return c, nil
}

func parseTypeDef(file, name string, b []byte) (*TypeDef, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d TypeDef
	if err := dec.Decode(&d); err != nil {
		return nil, wrapInvalid("load "+file, jsonSyntaxErr(b, err))
	}
	if err := d.validate(file, name); err != nil {
		return nil, err
	}
	if len(d.DefaultLayout) == 0 {
		d.DefaultLayout = []LayoutRole{{Role: d.Roles[0], Rest: true}}
	}
	d.File = file
	return &d, nil
}

// ComponentTypes lists the component types of the script repo's master, by name. A
// type whose file does not load is left out (and logged); TypeDef reports why.
func (r *Repos) ComponentTypes(ctx context.Context) ([]model.ComponentType, error) {
	c, err := r.catalog(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]model.ComponentType, 0, len(c.types))
	for _, d := range c.types {
		out = append(out, d.ComponentType)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out, nil
}

// TypeDefs returns every loadable type definition, by name.
func (r *Repos) TypeDefs(ctx context.Context) ([]*TypeDef, error) {
	c, err := r.catalog(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*TypeDef, 0, len(c.types))
	for _, d := range c.types {
		cp := *d
		out = append(out, &cp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out, nil
}

// TypeDef returns the definition of typ: errs.NotFound for an unknown type, errs.Invalid
// when its file is broken.
func (r *Repos) TypeDef(ctx context.Context, typ string) (*TypeDef, error) {
	c, err := r.catalog(ctx)
	if err != nil {
		return nil, err
	}
	if d, ok := c.types[typ]; ok {
		cp := *d
		return &cp, nil
	}
	if err, ok := c.broken[typ]; ok {
		return nil, err
	}
	return nil, &errs.Error{Kind: errs.NotFound, Op: "component type", Msg: fmt.Sprintf("unknown component type %q", typ)}
}

// InstallSpec is cmd/<role>/<version>/install.json.
type InstallSpec struct {
	Package string `json:"package"`
	Version string `json:"version"`
	// Verify is the check run after installing (informational; the host agent runs
	// dpkg -l | grep package | grep version).
	Verify string `json:"verify,omitempty"`
}

// Install returns the package that puts role of typ at version on a node.
func (r *Repos) Install(ctx context.Context, typ, role, version string) (agentproto.Package, error) {
	d, err := r.TypeDef(ctx, typ)
	if err != nil {
		return agentproto.Package{}, err
	}
	if !d.HasRole(role) {
		return agentproto.Package{}, errs.Invalidf("role", "%s has no role %q (roles: %s)", typ, role, strings.Join(d.Roles, ", "))
	}
	if !d.HasVersion(version) {
		return agentproto.Package{}, errs.Invalidf("version", "%s has no version %q (versions: %s)", typ, version, strings.Join(d.Versions, ", "))
	}
	p := CmdPath(role, version, "install.json")
	b, err := r.Scripts.ReadFile(ctx, Master, p)
	if err != nil {
		return agentproto.Package{}, err
	}
	var s InstallSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return agentproto.Package{}, wrapInvalid("load "+p, jsonSyntaxErr(b, err))
	}
	if s.Package == "" || s.Version == "" {
		return agentproto.Package{}, &errs.Error{Kind: errs.Invalid, Op: "load " + p, Field: "package", Msg: "package and version are required"}
	}
	return agentproto.Package{Name: s.Package, Version: s.Version}, nil
}

// Script repo paths (docs/script-repo.md).

// CmdPath is cmd/<role>/<version>/<file>: runpuppet.sh, validate.sh, install.json.
func CmdPath(role, version, file string) string { return path.Join("cmd", role, version, file) }

// SitePPPath is where a role's site.pp goes, relative to the script base path.
func SitePPPath(role string) string { return path.Join("puppet", "manifests", role, "site.pp") }

// GuestCmdPath is guestcmds/<group>/<name> for command "<group>/<name>".
func GuestCmdPath(command string) string { return path.Join("guestcmds", command) }
