package gitrepo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
)

// PreConfigInput is what pre-config knows of a component: its topology, its nodes, and
// the components it depends on with their nodes.
type PreConfigInput struct {
	Topology     TopologyInfo    `json:"topology"`
	Component    ComponentInfo   `json:"component"`
	Dependencies []ComponentInfo `json:"dependencies,omitempty"`
}

// TopologyInfo is the topology as templates see it.
type TopologyInfo struct {
	ID               string `json:"id"`
	Name             string `json:"name"`
	AvailabilityZone string `json:"availability_zone"`
	Tenant           string `json:"tenant,omitempty"`
}

// ComponentInfo is a component as templates see it.
type ComponentInfo struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Type    string     `json:"type"`
	Version string     `json:"version"`
	Nodes   []NodeInfo `json:"nodes"`
	// Sections is the component's effective configuration, if the caller has it;
	// templates read it with option.
	Sections Sections `json:"sections,omitempty"`
}

// NodeInfo is a node as templates see it.
type NodeInfo struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Role     string   `json:"role"`
	Index    int      `json:"index"`
	IPs      []string `json:"ips,omitempty"`
	Hostname string   `json:"hostname,omitempty"`
}

// IP is the node's first address, "" if it has none yet.
func (n NodeInfo) IP() string {
	if len(n.IPs) == 0 {
		return ""
	}
	return n.IPs[0]
}

// Host is the node's hostname, else its name.
func (n NodeInfo) Host() string {
	if n.Hostname != "" {
		return n.Hostname
	}
	return n.Name
}

// TopologyInfoOf converts a model topology.
func TopologyInfoOf(t *model.Topology) TopologyInfo {
	return TopologyInfo{ID: t.ID, Name: t.Name, AvailabilityZone: t.AvailabilityZone, Tenant: t.Tenant}
}

// NodeInfoOf converts a model node.
func NodeInfoOf(n *model.Node) NodeInfo {
	return NodeInfo{ID: n.ID, Name: n.Name, Role: n.Role, Index: n.Index, IPs: n.IPs, Hostname: n.Hostname}
}

// ComponentInfoOf converts a model component and its nodes.
func ComponentInfoOf(c *model.Component, nodes []model.Node) ComponentInfo {
	ci := ComponentInfo{ID: c.ID, Name: c.Name, Type: c.Type, Version: c.Version}
	for i := range nodes {
		ci.Nodes = append(ci.Nodes, NodeInfoOf(&nodes[i]))
	}
	return ci
}

// PreConfigOutput is what pre-config adds (§4.3.2): component-level parameters
// (feed_component_level_param), node-level parameters (feed_node_level_param) and other
// operations to run (do_other_operation).
type PreConfigOutput struct {
	Component  Sections            `json:"component"`
	Nodes      map[string]Sections `json:"nodes"` // by node id
	Operations []Operation         `json:"operations,omitempty"`
	ScriptsRef string              `json:"scripts_ref"` // the script repo commit evaluated
	File       string              `json:"file,omitempty"`
}

// ForNode layers base (the effective configuration), the component-level and the node's
// parameters: the sections a node's site.pp is rendered from.
func (o PreConfigOutput) ForNode(base Sections, nodeID string) Sections {
	return MergeSections(base, o.Component, o.Nodes[nodeID])
}

// Operation is a guest command to run on one node, e.g. creating kafka's namespace on
// a zookeeper node.
type Operation struct {
	Name        string `json:"name"`
	Command     string `json:"command"` // "<group>/<name>"
	Args        string `json:"args,omitempty"`
	Component   string `json:"component"` // name of the component whose node runs it
	ComponentID string `json:"component_id,omitempty"`
	Role        string `json:"role"`
	NodeID      string `json:"node_id"`
	NodeName    string `json:"node_name,omitempty"`
}

// preConfigSpec is pre_config/<type>[/<version>]/pre_config.json.
type preConfigSpec struct {
	Doc        string      `json:"doc,omitempty"`
	Component  []paramSpec `json:"component,omitempty"`
	Node       []paramSpec `json:"node,omitempty"`
	Operations []opSpec    `json:"operations,omitempty"`

	file string
}

type paramSpec struct {
	Section  string   `json:"section"`
	Key      string   `json:"key"`
	Type     string   `json:"type"`
	Template string   `json:"template,omitempty"`
	File     string   `json:"file,omitempty"`  // a template file beside pre_config.json
	Roles    []string `json:"roles,omitempty"` // node level: only nodes of these roles
	Doc      string   `json:"doc,omitempty"`

	where string
	tmpl  *template.Template
}

type opSpec struct {
	Name       string `json:"name"`
	Doc        string `json:"doc,omitempty"`
	Dependency string `json:"dependency,omitempty"` // name or type; "" is the component itself
	Role       string `json:"role,omitempty"`       // "" any role
	Nodes      string `json:"nodes,omitempty"`      // "first" (default) or "all"
	Command    string `json:"command"`
	Args       string `json:"args,omitempty"` // template; .Node is the target node
	When       string `json:"when,omitempty"` // template; renders "false" or "" to skip

	where      string
	args, when *template.Template
}

// preConfigFile finds the spec for typ/version in a snapshot: a version's own file wins.
func preConfigFile(s snapshot, typ, version string) (string, []byte, error) {
	for _, p := range []string{
		path.Join("pre_config", typ, version, "pre_config.json"),
		path.Join("pre_config", typ, "pre_config.json"),
	} {
		b, ok, err := s.file(p)
		if err != nil || ok {
			return p, b, err
		}
	}
	return "", nil, nil
}

func (r *Repos) preConfigSpec(ctx context.Context, commit, typ, version string) (*preConfigSpec, error) {
	var spec *preConfigSpec
	err := r.Scripts.at(ctx, commit, func(s snapshot) error {
		file, b, err := preConfigFile(s, typ, version)
		if err != nil || file == "" {
			return err
		}
		key := commit + "\x00" + file
		r.cache.mu.Lock()
		spec = r.cache.preconfig[key]
		r.cache.mu.Unlock()
		if spec != nil {
			return nil
		}
		spec, err = parsePreConfig(s, file, b)
		if err != nil {
			return err
		}
		r.cache.mu.Lock()
		if len(r.cache.preconfig) > 256 {
			r.cache.preconfig = map[string]*preConfigSpec{}
		}
		r.cache.preconfig[key] = spec
		r.cache.mu.Unlock()
		return nil
	})
	return spec, err
}

func preConfigErr(file, where string, err error) error {
	return &errs.Error{Kind: errs.Invalid, Op: "pre-config " + file, Field: where, Err: err}
}

func parsePreConfig(s snapshot, file string, b []byte) (*preConfigSpec, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var spec preConfigSpec
	if err := dec.Decode(&spec); err != nil {
		return nil, wrapInvalid("pre-config "+file, jsonSyntaxErr(b, err))
	}
	spec.file = file
	dir := path.Dir(file)
	params := func(level string, ps []paramSpec) error {
		seen := map[string]string{}
		for i := range ps {
			p := &ps[i]
			p.where = fmt.Sprintf("%s[%d]", level, i)
			if p.Section == "" || p.Key == "" {
				return preConfigErr(file, p.where, fmt.Errorf("section and key are required"))
			}
			k := p.Section + "." + p.Key
			if w, dup := seen[k]; dup {
				return preConfigErr(file, p.where, fmt.Errorf("%s is also computed by %s", k, w))
			}
			seen[k] = p.where
			if _, err := convertRendered(p.Type, "", true); err != nil {
				return preConfigErr(file, p.where+".type", err)
			}
			text := p.Template
			name := file + ":" + p.where
			if p.File != "" {
				if p.Template != "" {
					return preConfigErr(file, p.where, fmt.Errorf("set template or file, not both"))
				}
				tf := path.Join(dir, p.File)
				tb, ok, err := s.file(tf)
				if err == nil && !ok && dir != path.Dir(dir) {
					// A version's spec may use its type's shared templates.
					tf = path.Join(path.Dir(dir), p.File)
					tb, ok, err = s.file(tf)
				}
				if err != nil {
					return err
				}
				if !ok {
					return preConfigErr(file, p.where+".file", fmt.Errorf("template file %s not found", p.File))
				}
				text, name = string(tb), tf
			}
			t, err := parseTemplate(name, text)
			if err != nil {
				return preConfigErr(file, p.where, err)
			}
			p.tmpl = t
		}
		return nil
	}
	if err := params("component", spec.Component); err != nil {
		return nil, err
	}
	if err := params("node", spec.Node); err != nil {
		return nil, err
	}
	for i := range spec.Operations {
		o := &spec.Operations[i]
		o.where = fmt.Sprintf("operations[%d]", i)
		if o.Name == "" {
			return nil, preConfigErr(file, o.where+".name", fmt.Errorf("required"))
		}
		if g, n, ok := strings.Cut(o.Command, "/"); !ok || g == "" || n == "" {
			return nil, preConfigErr(file, o.where+".command", fmt.Errorf("%q: want <group>/<name>", o.Command))
		}
		if _, ok, err := s.file(GuestCmdPath(o.Command)); err != nil {
			return nil, err
		} else if !ok {
			return nil, preConfigErr(file, o.where+".command", fmt.Errorf("no guest command %s in the script repo", o.Command))
		}
		switch o.Nodes {
		case "", "first", "all":
		default:
			return nil, preConfigErr(file, o.where+".nodes", fmt.Errorf("%q: want first or all", o.Nodes))
		}
		var err error
		if o.args, err = parseTemplate(file+":"+o.where+".args", o.Args); err != nil {
			return nil, preConfigErr(file, o.where+".args", err)
		}
		if o.when, err = parseTemplate(file+":"+o.where+".when", o.When); err != nil {
			return nil, preConfigErr(file, o.where+".when", err)
		}
	}
	return &spec, nil
}

// PreConfig evaluates the script repo's pre-config for typ/version (at master) on in.
// A type without pre-config data gets empty sections. Errors name the file and entry.
func (r *Repos) PreConfig(ctx context.Context, typ, version string, in PreConfigInput) (PreConfigOutput, error) {
	if in.Component.Type == "" {
		in.Component.Type = typ
	}
	if in.Component.Version == "" {
		in.Component.Version = version
	}
	if in.Component.Type != typ || in.Component.Version != version {
		return PreConfigOutput{}, errs.Invalidf("component", "pre-config of %s %s given a %s %s component", typ, version, in.Component.Type, in.Component.Version)
	}
	d, err := r.TypeDef(ctx, typ)
	if err != nil {
		return PreConfigOutput{}, err
	}
	if !d.HasVersion(version) {
		return PreConfigOutput{}, errs.Invalidf("version", "%s has no version %q", typ, version)
	}
	commit, err := r.ScriptsRef(ctx)
	if err != nil {
		return PreConfigOutput{}, err
	}
	spec, err := r.preConfigSpec(ctx, commit, typ, version)
	if err != nil {
		return PreConfigOutput{}, err
	}
	out := PreConfigOutput{Component: Sections{}, Nodes: map[string]Sections{}, ScriptsRef: commit}
	for _, n := range in.Component.Nodes {
		out.Nodes[n.ID] = Sections{}
	}
	if spec == nil {
		return out, nil
	}
	out.File = spec.file
	ev := evaluator{in: in, file: spec.file, bound: map[*template.Template]*template.Template{}}
	for _, p := range spec.Component {
		v, err := ev.param(p, nil)
		if err != nil {
			return PreConfigOutput{}, err
		}
		set(out.Component, p.Section, p.Key, v)
	}
	nodes := sortedNodes(in.Component.Nodes, "")
	for _, p := range spec.Node {
		for i := range nodes {
			n := nodes[i]
			if len(p.Roles) > 0 && !contains(p.Roles, n.Role) {
				continue
			}
			v, err := ev.param(p, &n)
			if err != nil {
				return PreConfigOutput{}, err
			}
			set(out.Nodes[n.ID], p.Section, p.Key, v)
		}
	}
	for _, o := range spec.Operations {
		ops, err := ev.operation(o)
		if err != nil {
			return PreConfigOutput{}, err
		}
		out.Operations = append(out.Operations, ops...)
	}
	return out, nil
}

func set(s Sections, section, key string, v any) {
	if s[section] == nil {
		s[section] = map[string]any{}
	}
	s[section][key] = v
}

// tmplData is the dot of every pre-config template.
type tmplData struct {
	Topology  TopologyInfo
	Component ComponentInfo
	Deps      []ComponentInfo
	Node      *NodeInfo // nil at component level
}

type evaluator struct {
	in    PreConfigInput
	file  string
	bound map[*template.Template]*template.Template
}

func (e evaluator) data(n *NodeInfo) tmplData {
	return tmplData{Topology: e.in.Topology, Component: e.in.Component, Deps: e.in.Dependencies, Node: n}
}

func (e evaluator) exec(t *template.Template, n *NodeInfo) (string, error) {
	// Bind dep and hasDep to this input once per template and evaluation, not per node.
	bound, ok := e.bound[t]
	if !ok {
		var err error
		if bound, err = t.Clone(); err != nil {
			return "", err
		}
		bound.Funcs(template.FuncMap{
			"dep":    e.dep,
			"hasDep": func(nameOrType string) bool { _, err := e.dep(nameOrType); return err == nil },
		})
		if e.bound != nil {
			e.bound[t] = bound
		}
	}
	t = bound
	var b strings.Builder
	if err := t.Execute(&b, e.data(n)); err != nil {
		return "", err
	}
	return b.String(), nil
}

func (e evaluator) param(p paramSpec, n *NodeInfo) (any, error) {
	where := p.where + " (" + p.Section + "." + p.Key + ")"
	if n != nil {
		where += " for node " + n.Name
	}
	s, err := e.exec(p.tmpl, n)
	if err != nil {
		return nil, preConfigErr(e.file, where, err)
	}
	v, err := convertRendered(p.Type, s, false)
	if err != nil {
		return nil, preConfigErr(e.file, where, err)
	}
	return v, nil
}

func (e evaluator) operation(o opSpec) ([]Operation, error) {
	target := e.in.Component
	if o.Dependency != "" {
		d, err := e.dep(o.Dependency)
		if err != nil {
			return nil, preConfigErr(e.file, o.where, err)
		}
		target = d
	}
	if o.When != "" {
		s, err := e.exec(o.when, nil)
		if err != nil {
			return nil, preConfigErr(e.file, o.where+".when", err)
		}
		if s = strings.TrimSpace(s); s == "" || s == "false" {
			return nil, nil
		}
	}
	nodes := sortedNodes(target.Nodes, o.Role)
	if len(nodes) == 0 {
		return nil, preConfigErr(e.file, o.where, fmt.Errorf("component %s has no %s node to run %s on", target.Name, orAny(o.Role), o.Command))
	}
	if o.Nodes != "all" {
		nodes = nodes[:1]
	}
	var out []Operation
	for i := range nodes {
		n := nodes[i]
		args, err := e.exec(o.args, &n)
		if err != nil {
			return nil, preConfigErr(e.file, o.where+".args", err)
		}
		out = append(out, Operation{
			Name: o.Name, Command: o.Command, Args: strings.TrimSpace(args),
			Component: target.Name, ComponentID: target.ID, Role: n.Role, NodeID: n.ID, NodeName: n.Name,
		})
	}
	return out, nil
}

func orAny(role string) string {
	if role == "" {
		return "any"
	}
	return role
}

// dep finds a dependency by name, else by type (which must then be unambiguous).
func (e evaluator) dep(nameOrType string) (ComponentInfo, error) {
	for _, d := range e.in.Dependencies {
		if d.Name == nameOrType {
			return d, nil
		}
	}
	var found []ComponentInfo
	for _, d := range e.in.Dependencies {
		if d.Type == nameOrType {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return ComponentInfo{}, fmt.Errorf("%s %q depends on no component named or of type %q", e.in.Component.Type, e.in.Component.Name, nameOrType)
	}
	return ComponentInfo{}, fmt.Errorf("%s %q depends on %d components of type %q: name one", e.in.Component.Type, e.in.Component.Name, len(found), nameOrType)
}

// convertRendered turns a template's output into a typed value. check only validates typ.
func convertRendered(typ, s string, check bool) (any, error) {
	switch typ {
	case TypeString, TypeInt, TypeFloat, TypeBool, TypeList:
	default:
		return nil, fmt.Errorf("unknown type %q (string, int, bool, float, list)", typ)
	}
	if check {
		return nil, nil
	}
	t := strings.TrimSpace(s)
	switch typ {
	case TypeString:
		return t, nil
	case TypeInt:
		v, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("rendered %q, not an int", t)
		}
		return v, nil
	case TypeFloat:
		v, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return nil, fmt.Errorf("rendered %q, not a float", t)
		}
		return v, nil
	case TypeBool:
		v, err := strconv.ParseBool(t)
		if err != nil {
			return nil, fmt.Errorf("rendered %q, not a bool", t)
		}
		return v, nil
	}
	out := []any{} // a list is one element per non-empty line
	for _, line := range strings.Split(t, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out, nil
}

// Template functions (docs/script-repo.md). dep and hasDep are bound per evaluation.
var funcs = template.FuncMap{
	"dep":    func(string) (ComponentInfo, error) { return ComponentInfo{}, nil },
	"hasDep": func(string) bool { return false },
	"nodes":  func(c ComponentInfo, role string) []NodeInfo { return sortedNodes(c.Nodes, role) },
	"first":  firstNode,
	"ips":    ips,
	"hosts":  hosts,
	"join":   join,
	"prefix": func(p string, l []string) []string { return mapStrings(l, func(s string) string { return p + s }) },
	"suffix": func(x string, l []string) []string { return mapStrings(l, func(s string) string { return s + x }) },
	"option": option,
	"add":    func(a, b int) int { return a + b },
	"sub":    func(a, b int) int { return a - b },
	"div": func(a, b int) (int, error) {
		if b == 0 {
			return 0, fmt.Errorf("div: division by zero")
		}
		return a / b, nil
	},
	"json":           toJSON,
	"fail":           func(msg string) (string, error) { return "", fmt.Errorf("%s", msg) },
	"versionAtLeast": versionAtLeast,
}

func parseTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Funcs(funcs).Parse(text)
}

func sortedNodes(all []NodeInfo, role string) []NodeInfo {
	var out []NodeInfo
	for _, n := range all {
		if role == "" || n.Role == role {
			out = append(out, n)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Index != out[j].Index {
			return out[i].Index < out[j].Index
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func firstNode(l []NodeInfo) (NodeInfo, error) {
	if len(l) == 0 {
		return NodeInfo{}, fmt.Errorf("first: no nodes")
	}
	return l[0], nil
}

func ips(l []NodeInfo) ([]string, error) {
	out := make([]string, len(l))
	for i, n := range l {
		if n.IP() == "" {
			return nil, fmt.Errorf("node %s has no IP address yet", n.Name)
		}
		out[i] = n.IP()
	}
	return out, nil
}

func hosts(l []NodeInfo) []string {
	return mapNodes(l, NodeInfo.Host)
}

func mapNodes(l []NodeInfo, f func(NodeInfo) string) []string {
	out := make([]string, len(l))
	for i, n := range l {
		out[i] = f(n)
	}
	return out
}

func mapStrings(l []string, f func(string) string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = f(s)
	}
	return out
}

func join(sep string, l any) (string, error) {
	switch x := l.(type) {
	case []string:
		return strings.Join(x, sep), nil
	case []any:
		parts := make([]string, len(x))
		for i, v := range x {
			parts[i] = fmt.Sprint(v)
		}
		return strings.Join(parts, sep), nil
	}
	return "", fmt.Errorf("join: want a list, got %T", l)
}

// option reads section.key of a component's effective configuration, else def.
func option(c ComponentInfo, section, key string, def any) any {
	if v, ok := c.Sections[section][key]; ok {
		if f, ok := v.(float64); ok && f == float64(int64(f)) {
			return int64(f) // JSON round trips turn ints into floats
		}
		return v
	}
	return def
}

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// versionAtLeast compares dotted versions numerically ("0.10" >= "0.9").
func versionAtLeast(v, least string) bool {
	a, b := strings.Split(v, "."), strings.Split(least, ".")
	for i := 0; i < max(len(a), len(b)); i++ {
		x, y := 0, 0
		if i < len(a) {
			x, _ = strconv.Atoi(a[i])
		}
		if i < len(b) {
			y, _ = strconv.Atoi(b[i])
		}
		if x != y {
			return x > y
		}
	}
	return true
}

// DrainOperation returns the drain command for node of the component described by in, if
// its type has one for the node's role.
func (r *Repos) DrainOperation(ctx context.Context, in PreConfigInput, node NodeInfo) (Operation, bool, error) {
	d, err := r.TypeDef(ctx, in.Component.Type)
	if err != nil {
		return Operation{}, false, err
	}
	dr, ok := d.DrainFor(node.Role)
	if !ok {
		return Operation{}, false, nil
	}
	t, err := parseTemplate(d.File+":drain.args", dr.Args)
	if err != nil {
		return Operation{}, false, preConfigErr(d.File, "drain.args", err)
	}
	ev := evaluator{in: in, file: d.File}
	args, err := ev.exec(t, &node)
	if err != nil {
		return Operation{}, false, preConfigErr(d.File, "drain.args", err)
	}
	return Operation{
		Name: "drain", Command: dr.Command, Args: strings.TrimSpace(args),
		Component: in.Component.Name, ComponentID: in.Component.ID, Role: node.Role, NodeID: node.ID, NodeName: node.Name,
	}, true, nil
}
