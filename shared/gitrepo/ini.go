package gitrepo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/straas/straas/shared/errs"
)

// Sections is configuration as {section: {option: value}}: the same shape as
// agentproto.Sections and model.NodeConfig.Sections, so values pass between them freely.
type Sections = map[string]map[string]any

// Option value types of the JSON-ini format.
const (
	TypeString = "string"
	TypeInt    = "int"
	TypeBool   = "bool"
	TypeFloat  = "float"
	TypeList   = "list"
)

// IniFile is a file in the JSON-ini format of seed 000 §4.2.2.1.
type IniFile struct {
	Type    string       `json:"type"`
	Doc     string       `json:"doc,omitempty"`
	Content []IniSection `json:"content"`
}

// IniSection is one section (for application files: one puppet class).
type IniSection struct {
	Section string `json:"section"`
	Doc     string `json:"doc,omitempty"`
	// Roles scopes the section to nodes of these roles (storm's nimbus and supervisor
	// classes); empty: every node of the component.
	Roles   []string    `json:"roles,omitempty"`
	Options []IniOption `json:"options"`
}

// IniOption is one key of a section.
type IniOption struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
	Type  string `json:"type,omitempty"` // required in default files; inherited in user.json
	// Exclusive options are straas's own (read by the control plane, e.g. a drain
	// timeout) and are not sent to nodes.
	Exclusive bool   `json:"exclusive,omitempty"`
	Doc       string `json:"doc,omitempty"`
	// UserChangeable marks the admin-defined set of keys a user may set in user.json.
	UserChangeable bool `json:"user_changeable,omitempty"`
	// RestartRequired: changing the option needs a service restart to take effect.
	RestartRequired bool `json:"restart_required,omitempty"`
}

// ParseIni decodes a JSON-ini file and types every value by its option's type (int ->
// int64, float -> float64, bool, string, list -> []any). It checks structure only; the
// schema check is ValidateConfigFile's.
func ParseIni(b []byte) (*IniFile, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var f IniFile
	if err := dec.Decode(&f); err != nil {
		return nil, jsonSyntaxErr(b, err)
	}
	if f.Type != "ini" {
		return nil, errs.Invalidf("type", "must be \"ini\", got %q", f.Type)
	}
	seenSec := map[string]int{}
	for i := range f.Content {
		s := &f.Content[i]
		field := fmt.Sprintf("content[%d]", i)
		if s.Section == "" {
			return nil, errs.Invalidf(field+".section", "empty section name")
		}
		if j, dup := seenSec[s.Section]; dup {
			return nil, errs.Invalidf(field+".section", "section %q repeats content[%d]", s.Section, j)
		}
		seenSec[s.Section] = i
		seenKey := map[string]int{}
		for k := range s.Options {
			o := &s.Options[k]
			of := fmt.Sprintf("%s.options[%d]", field, k)
			if o.Key == "" {
				return nil, errs.Invalidf(of+".key", "empty key")
			}
			if j, dup := seenKey[o.Key]; dup {
				return nil, errs.Invalidf(of+".key", "key %q repeats options[%d]", o.Key, j)
			}
			seenKey[o.Key] = k
			v, err := typedValue(o.Type, o.Value)
			if err != nil {
				return nil, errs.Invalidf(of+".value", "%s", err.Error())
			}
			o.Value = v
		}
	}
	return &f, nil
}

func jsonSyntaxErr(b []byte, err error) error {
	if se, ok := err.(*json.SyntaxError); ok {
		line, col := lineCol(b, se.Offset)
		return errs.Invalidf("", "not valid JSON at line %d, column %d: %v", line, col, err)
	}
	if te, ok := err.(*json.UnmarshalTypeError); ok {
		return errs.Invalidf(te.Field, "wrong JSON type: %s", te.Value)
	}
	return errs.Invalidf("", "not valid JSON: %v", err)
}

func lineCol(b []byte, off int64) (int, int) {
	line, col := 1, 1
	for i := int64(0); i < off && i < int64(len(b)); i++ {
		if b[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// typedValue converts a decoded JSON value (numbers as json.Number) to the option's Go
// type. An empty typ infers the type from the value.
func typedValue(typ string, v any) (any, error) {
	if v == nil {
		return nil, fmt.Errorf("missing value")
	}
	if typ == "" {
		typ = inferType(v)
	}
	switch typ {
	case TypeString:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want a string, got %s", jsonKind(v))
		}
		return s, nil
	case TypeInt:
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("want an int, got %s", jsonKind(v))
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("want an int, got %s", n)
		}
		return i, nil
	case TypeFloat:
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("want a float, got %s", jsonKind(v))
		}
		f, err := n.Float64()
		if err != nil {
			return nil, fmt.Errorf("want a float, got %s", n)
		}
		return f, nil
	case TypeBool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("want a bool, got %s", jsonKind(v))
		}
		return b, nil
	case TypeList:
		l, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("want a list, got %s", jsonKind(v))
		}
		out := make([]any, len(l))
		for i, e := range l {
			x, err := typedValue("", e)
			if err != nil {
				return nil, fmt.Errorf("element %d: %v", i, err)
			}
			out[i] = x
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown type %q (string, int, bool, float, list)", typ)
}

func inferType(v any) string {
	switch x := v.(type) {
	case bool:
		return TypeBool
	case json.Number:
		if _, err := strconv.ParseInt(x.String(), 10, 64); err == nil {
			return TypeInt
		}
		return TypeFloat
	case []any:
		return TypeList
	case map[string]any:
		return "object"
	}
	return TypeString
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a bool"
	case json.Number:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// Option returns the option section.key.
func (f *IniFile) Option(section, key string) (*IniOption, bool) {
	for i := range f.Content {
		if f.Content[i].Section != section {
			continue
		}
		for k := range f.Content[i].Options {
			if f.Content[i].Options[k].Key == key {
				return &f.Content[i].Options[k], true
			}
		}
	}
	return nil, false
}

// Sections returns every option's value, exclusive ones included.
func (f *IniFile) Sections() Sections { return f.sections(true, "") }

// NodeSections returns what nodes receive: every option but straas's exclusive ones,
// of every section whatever its roles.
func (f *IniFile) NodeSections() Sections { return f.sections(false, "") }

// NodeSectionsFor is NodeSections for a node of role: sections scoped to other roles
// are left out.
func (f *IniFile) NodeSectionsFor(role string) Sections { return f.sections(false, role) }

func (f *IniFile) sections(exclusive bool, role string) Sections {
	out := Sections{}
	for _, s := range f.Content {
		if role != "" && len(s.Roles) > 0 && !contains(s.Roles, role) {
			continue
		}
		m := out[s.Section]
		if m == nil {
			m = map[string]any{}
		}
		for _, o := range s.Options {
			if o.Exclusive && !exclusive {
				continue
			}
			m[o.Key] = o.Value
		}
		out[s.Section] = m
	}
	return out
}

// UserChangeable returns the "section.key" names a user may set, sorted.
func (f *IniFile) UserChangeable() []string {
	var out []string
	for _, s := range f.Content {
		for _, o := range s.Options {
			if o.UserChangeable {
				out = append(out, s.Section+"."+o.Key)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Override returns base with over's values replacing base's (seed 000 §4.2.2: the keys
// of a specific file override default.json). With strict set, every key of over must
// exist in base with the same type (user.json against default.json); otherwise new
// sections and keys are added (service/api.json against service/default.json).
func Override(base, over *IniFile, strict bool) (*IniFile, error) {
	out := base.clone()
	if over == nil {
		return out, nil
	}
	for i, s := range over.Content {
		for k, o := range s.Options {
			field := fmt.Sprintf("content[%d].options[%d]", i, k)
			have, ok := out.Option(s.Section, o.Key)
			if !ok {
				if strict {
					return nil, errs.Invalidf(field+".key", "%s.%s is not an option of the default configuration", s.Section, o.Key)
				}
				out.add(s.Section, s.Doc, o)
				continue
			}
			v := o.Value
			if have.Type != "" && inferTypeOf(v) != have.Type && !(have.Type == TypeFloat && inferTypeOf(v) == TypeInt) {
				return nil, errs.Invalidf(field+".value", "%s.%s is a %s, got %v", s.Section, o.Key, have.Type, v)
			}
			if have.Type == TypeFloat {
				if i, ok := v.(int64); ok {
					v = float64(i)
				}
			}
			have.Value = v
		}
	}
	return out, nil
}

func inferTypeOf(v any) string {
	switch v.(type) {
	case int64, int:
		return TypeInt
	case float64:
		return TypeFloat
	case bool:
		return TypeBool
	case []any:
		return TypeList
	case string:
		return TypeString
	}
	return "object"
}

func (f *IniFile) add(section, doc string, o IniOption) {
	for i := range f.Content {
		if f.Content[i].Section == section {
			f.Content[i].Options = append(f.Content[i].Options, o)
			return
		}
	}
	f.Content = append(f.Content, IniSection{Section: section, Doc: doc, Options: []IniOption{o}})
}

func (f *IniFile) clone() *IniFile {
	out := &IniFile{Type: f.Type, Doc: f.Doc, Content: make([]IniSection, len(f.Content))}
	for i, s := range f.Content {
		s.Options = append([]IniOption(nil), s.Options...)
		s.Roles = append([]string(nil), s.Roles...)
		out.Content[i] = s
	}
	return out
}

// RestartRequired lists the "section.key" options whose value differs between before
// and after and that need a service restart, sorted. Options only one side has count as
// changed.
func RestartRequired(before, after *IniFile) []string {
	var out []string
	for _, s := range after.Content {
		for _, o := range s.Options {
			b, ok := before.Option(s.Section, o.Key)
			if o.RestartRequired && (!ok || !equalValue(b.Value, o.Value)) {
				out = append(out, s.Section+"."+o.Key)
			}
		}
	}
	sort.Strings(out)
	return out
}

// ChangedKeys lists the "section.key" options whose values differ between a and b
// (added, removed or changed), sorted.
func ChangedKeys(a, b Sections) []string {
	seen := map[string]bool{}
	var out []string
	add := func(k string) {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for s, opts := range a {
		for k, v := range opts {
			if w, ok := b[s][k]; !ok || !equalValue(v, w) {
				add(s + "." + k)
			}
		}
	}
	for s, opts := range b {
		for k := range opts {
			if _, ok := a[s][k]; !ok {
				add(s + "." + k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// equalValue compares option values across JSON round trips (int64 vs float64).
func equalValue(a, b any) bool {
	na, aNum := number(a)
	nb, bNum := number(b)
	if aNum || bNum {
		return aNum && bNum && na == nb
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case float64:
		return x, !math.IsNaN(x)
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// MergeSections layers sections: later layers override earlier ones key by key. The
// result shares no maps with its inputs.
func MergeSections(layers ...Sections) Sections {
	out := Sections{}
	for _, l := range layers {
		for s, opts := range l {
			m := out[s]
			if m == nil {
				m = map[string]any{}
				out[s] = m
			}
			for k, v := range opts {
				m[k] = v
			}
		}
	}
	return out
}
