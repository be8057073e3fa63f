package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/straas/straas/shared/errs"
)

// Policy type names, as specs and GET /policy_types spell them.
const (
	TypeHealth    = "straas.policy.health"
	TypeScaling   = "straas.policy.scaling"
	TypeDeletion  = "straas.policy.deletion"
	TypePlacement = "straas.policy.placement"
)

// Spec is the document a policy is created from (Senlin's shape):
//
//	{"type": "straas.policy.health", "version": "1.0", "properties": {...}}
type Spec struct {
	Type       string          `json:"type"`
	Version    string          `json:"version"`
	Properties json.RawMessage `json:"properties"`
}

// Property documents one property of a policy type.
type Property struct {
	Name        string `json:"name"` // dotted path, e.g. "detection.count"
	Type        string `json:"type"` // integer, number, string, boolean, list, map
	Default     any    `json:"default,omitempty"`
	Required    bool   `json:"required,omitempty"`
	Constraints string `json:"constraints,omitempty"`
	Doc         string `json:"doc"`
}

// TypeDoc documents a policy type at one version.
type TypeDoc struct {
	Name       string     `json:"name"` // e.g. straas.policy.health-1.0
	Type       string     `json:"type"`
	Version    string     `json:"version"`
	Summary    string     `json:"summary"`
	Doc        string     `json:"doc"`
	Singleton  bool       `json:"singleton"` // at most one policy of this type per component
	Properties []Property `json:"properties"`
	Example    Spec       `json:"example"`
}

// kind is one supported (type, version).
type kind struct {
	doc    TypeDoc
	decode func(raw json.RawMessage) (any, error) // validated, defaulted properties
}

var kinds = map[string]kind{}

func register(d TypeDoc, decode func(json.RawMessage) (any, error)) {
	d.Name = d.Type + "-" + d.Version
	d.Example.Type, d.Example.Version = d.Type, d.Version
	kinds[d.Name] = kind{doc: d, decode: decode}
}

// Types documents every supported policy type and version, sorted by name.
func Types() []TypeDoc {
	out := make([]TypeDoc, 0, len(kinds))
	for _, k := range kinds {
		out = append(out, k.doc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupType finds a type's doc by "type-version" or by type alone (its newest version).
func LookupType(name string) (TypeDoc, bool) {
	if k, ok := kinds[name]; ok {
		return k.doc, true
	}
	var best *TypeDoc
	for _, k := range kinds {
		if k.doc.Type == name && (best == nil || k.doc.Version > best.Version) {
			d := k.doc
			best = &d
		}
	}
	if best == nil {
		return TypeDoc{}, false
	}
	return *best, true
}

// typeNames lists the known type names for error messages.
func typeNames() string {
	seen := map[string]bool{}
	var out []string
	for _, k := range kinds {
		if !seen[k.doc.Type] {
			seen[k.doc.Type] = true
			out = append(out, k.doc.Type)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// Parsed is a validated spec: Props is *HealthSpec, *ScalingSpec, *DeletionSpec or
// *PlacementSpec.
type Parsed struct {
	Spec  Spec
	Props any
}

// Health returns the health properties, or nil for another type.
func (p Parsed) Health() *HealthSpec { h, _ := p.Props.(*HealthSpec); return h }

// Scaling returns the scaling properties, or nil for another type.
func (p Parsed) Scaling() *ScalingSpec { s, _ := p.Props.(*ScalingSpec); return s }

// Deletion returns the deletion properties, or nil for another type.
func (p Parsed) Deletion() *DeletionSpec { d, _ := p.Props.(*DeletionSpec); return d }

// Placement returns the placement properties, or nil for another type.
func (p Parsed) Placement() *PlacementSpec { s, _ := p.Props.(*PlacementSpec); return s }

// ParseSpec validates a spec document; errors are errs.Invalid naming the field under
// field (e.g. "spec").
func ParseSpec(field string, raw []byte) (Parsed, error) {
	var s Spec
	if err := strictDecode(raw, &s); err != nil {
		return Parsed{}, errs.Invalidf(field, "%v", err)
	}
	return s.Parse(field)
}

// Parse validates s; errors name fields under field.
func (s Spec) Parse(field string) (Parsed, error) {
	if s.Type == "" {
		return Parsed{}, errs.Invalidf(field+".type", "required (one of %s)", typeNames())
	}
	if s.Version == "" {
		return Parsed{}, errs.Invalidf(field+".version", "required")
	}
	k, ok := kinds[s.Type+"-"+s.Version]
	if !ok {
		if _, known := LookupType(s.Type); known {
			var vs []string
			for _, x := range kinds {
				if x.doc.Type == s.Type {
					vs = append(vs, x.doc.Version)
				}
			}
			sort.Strings(vs)
			return Parsed{}, errs.Invalidf(field+".version", "%s has no version %q (known: %s)", s.Type, s.Version, strings.Join(vs, ", "))
		}
		return Parsed{}, errs.Invalidf(field+".type", "unknown policy type %q (known: %s)", s.Type, typeNames())
	}
	props := s.Properties
	if len(bytes.TrimSpace(props)) == 0 || bytes.Equal(bytes.TrimSpace(props), []byte("null")) {
		props = json.RawMessage("{}")
	}
	v, err := k.decode(props)
	if err != nil {
		return Parsed{}, prefixField(field+".properties", err)
	}
	return Parsed{Spec: s, Props: v}, nil
}

// strictDecode decodes JSON refusing unknown fields and trailing data.
func strictDecode(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON document")
	}
	return nil
}

// decodeProps decodes properties strictly into v; unknown fields are named.
func decodeProps(raw json.RawMessage, v any) error {
	if err := strictDecode(raw, v); err != nil {
		msg := err.Error()
		if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			return errs.Invalidf(strings.Trim(f, `"`), "unknown property")
		}
		return errs.Invalidf("", "%s", msg)
	}
	return nil
}

// prefixField puts an Invalid error's field under prefix.
func prefixField(prefix string, err error) error {
	var e *errs.Error
	if !errors.As(err, &e) || e.Kind != errs.Invalid {
		return errs.Invalidf(prefix, "%v", err)
	}
	f := prefix
	if e.Field != "" {
		f += "." + e.Field
	}
	return errs.Invalidf(f, "%s", e.Msg)
}
