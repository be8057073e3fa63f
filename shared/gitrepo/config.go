package gitrepo

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/straas/straas/shared/errs"
)

// Paths in the config repo.
const (
	IniSchemaPath      = "service/ini_json.schema"
	CreationSchemaPath = "service/creation_json.schema"
	ServiceDefaultPath = "service/default.json"
	UserdataPath       = "service/userdata.template"
)

// AppPath is the path of a file of a component type's version: app/<type>/<version>/<file>.
func AppPath(typ, version, file string) string { return path.Join("app", typ, version, file) }

// isIniPath reports whether p is a JSON-ini file.
func isIniPath(p string) bool {
	return strings.HasSuffix(p, ".json") && (strings.HasPrefix(p, "service/") || strings.HasPrefix(p, "app/"))
}

// appFile splits app/<type>/<version>/<file>.
func appFile(p string) (typ, version, file string, ok bool) {
	parts := strings.Split(p, "/")
	if len(parts) != 4 || parts[0] != "app" {
		return "", "", "", false
	}
	return parts[1], parts[2], parts[3], true
}

// schemaCache compiles each distinct schema text once.
type schemaCache struct {
	mu sync.Mutex
	m  map[string]*jsonschema.Schema
}

func (c *schemaCache) compile(text []byte) (*jsonschema.Schema, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.m[string(text)]; ok {
		return s, nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(text))
	if err != nil {
		return nil, jsonSyntaxErr(text, err)
	}
	comp := jsonschema.NewCompiler()
	if err := comp.AddResource("ini_json.schema", doc); err != nil {
		return nil, err
	}
	s, err := comp.Compile("ini_json.schema")
	if err != nil {
		return nil, err
	}
	if c.m == nil || len(c.m) > 16 {
		c.m = map[string]*jsonschema.Schema{}
	}
	c.m[string(text)] = s
	return s, nil
}

// readAt reads p at commit, falling back to master when the commit lacks it (a version
// added to master after the topology's branch was cut). ok is false when neither has it.
func (r *Repos) readAt(ctx context.Context, commit, p string) ([]byte, bool, error) {
	b, err := r.Config.ReadFile(ctx, commit, p)
	if errs.Is(err, errs.NotFound) {
		b, err = r.Config.ReadFile(ctx, Master, p)
	}
	if errs.Is(err, errs.NotFound) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// ValidateConfigFile checks content as the file p of branch would be checked by
// WriteFile, without writing it.
func (r *Repos) ValidateConfigFile(ctx context.Context, branch, p string, content []byte) error {
	p = cleanPath(p)
	op := "validate " + p
	head, err := r.Config.ResolveRef(ctx, branch)
	if err != nil {
		return err
	}
	if p == IniSchemaPath {
		if _, err := r.cache.schemas.compile(content); err != nil {
			return wrapInvalid(op, errs.Invalidf("", "not a valid JSON schema: %v", err))
		}
		return nil
	}
	if !isIniPath(p) {
		return nil
	}
	schemaText, ok, err := r.readAt(ctx, head, IniSchemaPath)
	if err != nil {
		return err
	}
	if ok {
		sch, err := r.cache.schemas.compile(schemaText)
		if err != nil {
			return errs.Wrap(errs.Other, "compile "+IniSchemaPath, err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(content))
		if err != nil {
			return wrapInvalid(op, jsonSyntaxErr(content, err))
		}
		if err := sch.Validate(inst); err != nil {
			return wrapInvalid(op, schemaErr(err))
		}
	}
	f, err := ParseIni(content)
	if err != nil {
		return wrapInvalid(op, err)
	}
	typ, version, file, isApp := appFile(p)
	if isApp && file == "user.json" {
		def, err := r.defaultConfig(ctx, head, typ, version)
		if err != nil {
			return err
		}
		if _, err := Override(def, f, true); err != nil {
			return wrapInvalid(op, err)
		}
		return nil
	}
	// Every other JSON-ini file defines options, so each needs its type.
	for i, s := range f.Content {
		for k, o := range s.Options {
			if o.Type == "" {
				return wrapInvalid(op, errs.Invalidf(fmt.Sprintf("content[%d].options[%d].type", i, k), "%s.%s needs a type", s.Section, o.Key))
			}
		}
	}
	return nil
}

func wrapInvalid(op string, err error) error {
	if e, ok := err.(*errs.Error); ok && e.Op == "" {
		e.Op = op
		return e
	}
	return &errs.Error{Kind: errs.Invalid, Op: op, Err: err}
}

// schemaErr turns a schema validation failure into an errs.Invalid error naming the
// JSON path (content[0].options[1].value) of the most specific bad field.
func schemaErr(err error) error {
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return errs.Invalidf("", "%v", err)
	}
	leaf := deepest(ve)
	msg := leaf.ErrorKind.LocalizedString(printer)
	return errs.Invalidf(jsonPath(leaf.InstanceLocation), "%s", msg)
}

var printer = message.NewPrinter(language.English)

// deepest picks the leaf error with the longest instance location: the most specific
// field. Ties go to the first, which keeps the answer deterministic.
func deepest(ve *jsonschema.ValidationError) *jsonschema.ValidationError {
	if len(ve.Causes) == 0 {
		return ve
	}
	var best *jsonschema.ValidationError
	for _, c := range ve.Causes {
		l := deepest(c)
		if best == nil || len(l.InstanceLocation) > len(best.InstanceLocation) {
			best = l
		}
	}
	return best
}

// jsonPath renders ["content","0","options","1","value"] as content[0].options[1].value.
func jsonPath(loc []string) string {
	var b strings.Builder
	for _, p := range loc {
		if _, err := strconv.Atoi(p); err == nil {
			b.WriteString("[" + p + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

func (r *Repos) defaultConfig(ctx context.Context, commit, typ, version string) (*IniFile, error) {
	p := AppPath(typ, version, "default.json")
	b, ok, err := r.readAt(ctx, commit, p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errs.NotFoundf("no configuration for %s %s (%s)", typ, version, p)
	}
	f, err := ParseIni(b)
	if err != nil {
		return nil, wrapInvalid("parse "+p, err)
	}
	return f, nil
}

// DefaultConfig returns app/<type>/<version>/default.json at ref (falling back to master).
func (r *Repos) DefaultConfig(ctx context.Context, ref, typ, version string) (*IniFile, error) {
	commit, err := r.ResolveRef(ctx, ref)
	if err != nil {
		return nil, err
	}
	return r.defaultConfig(ctx, commit, typ, version)
}

// EffectiveConfig is the component's configuration at ref: default.json overridden by
// user.json (§4.2.2.3), with each option's metadata. Both files are read from the same
// commit; a version the ref's branch predates is read from master.
func (r *Repos) EffectiveConfig(ctx context.Context, ref, typ, version string) (*IniFile, error) {
	commit, err := r.ResolveRef(ctx, ref)
	if err != nil {
		return nil, err
	}
	def, err := r.defaultConfig(ctx, commit, typ, version)
	if err != nil {
		return nil, err
	}
	up := AppPath(typ, version, "user.json")
	b, err := r.Config.ReadFile(ctx, commit, up)
	if errs.Is(err, errs.NotFound) {
		return def, nil
	}
	if err != nil {
		return nil, err
	}
	user, err := ParseIni(b)
	if err != nil {
		return nil, wrapInvalid("parse "+up, err)
	}
	eff, err := Override(def, user, true)
	if err != nil {
		return nil, wrapInvalid("apply "+up, err)
	}
	return eff, nil
}

// EffectiveSections is what nodes receive before pre-config adds its parameters: the
// effective configuration without straas's exclusive options.
func (r *Repos) EffectiveSections(ctx context.Context, ref, typ, version string) (Sections, error) {
	f, err := r.EffectiveConfig(ctx, ref, typ, version)
	if err != nil {
		return nil, err
	}
	return f.NodeSections(), nil
}

// EffectiveSectionsFor is EffectiveSections for a node of role: sections scoped to
// other roles are left out.
func (r *Repos) EffectiveSectionsFor(ctx context.Context, ref, typ, version, role string) (Sections, error) {
	f, err := r.EffectiveConfig(ctx, ref, typ, version)
	if err != nil {
		return nil, err
	}
	return f.NodeSectionsFor(role), nil
}

// ServiceConfig is a straas service's settings at ref: service/default.json overridden by
// service/<service>.json when it exists (§4.2.2.2). service "" gives default.json alone.
func (r *Repos) ServiceConfig(ctx context.Context, ref, service string) (*IniFile, error) {
	commit, err := r.ResolveRef(ctx, ref)
	if err != nil {
		return nil, err
	}
	b, err := r.Config.ReadFile(ctx, commit, ServiceDefaultPath)
	if err != nil {
		return nil, err
	}
	def, err := ParseIni(b)
	if err != nil {
		return nil, wrapInvalid("parse "+ServiceDefaultPath, err)
	}
	if service == "" || service == "default" {
		return def, nil
	}
	p := "service/" + service + ".json"
	b, err = r.Config.ReadFile(ctx, commit, p)
	if errs.Is(err, errs.NotFound) {
		return def, nil
	}
	if err != nil {
		return nil, err
	}
	over, err := ParseIni(b)
	if err != nil {
		return nil, wrapInvalid("parse "+p, err)
	}
	return Override(def, over, false)
}

// AppVersions lists the versions the config repo has for typ at ref.
func (r *Repos) AppVersions(ctx context.Context, ref, typ string) ([]string, error) {
	e, err := r.Read(ctx, ref, path.Join("app", typ))
	if errs.Is(err, errs.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range e.Files {
		if f.Type == EntryFolder {
			out = append(out, f.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}
