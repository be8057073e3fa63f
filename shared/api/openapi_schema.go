package api

import (
	"encoding"
	"encoding/json"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"
)

// schemaGen derives JSON Schemas (2020-12, as OpenAPI 3.1 uses) from Go types the way
// encoding/json marshals them: json tags, omitempty/omitzero (optional; the rest
// required), embedded structs flattened, nil slices and maps as null, pointers
// nullable. Named struct types become components/schemas entries.
type schemaGen struct {
	defs  map[string]any
	names map[reflect.Type]string
	taken map[string]reflect.Type
}

func newSchemaGen() *schemaGen {
	return &schemaGen{defs: map[string]any{}, names: map[reflect.Type]string{}, taken: map[string]reflect.Type{}}
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	rawType       = reflect.TypeFor[json.RawMessage]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
	textType      = reflect.TypeFor[encoding.TextMarshaler]()
	badNameChars  = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
)

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

// of returns the schema of values of t (a $ref for named structs).
func (g *schemaGen) of(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType:
		return map[string]any{}
	case t.Kind() == reflect.Pointer:
		inner := g.of(t.Elem())
		return map[string]any{"anyOf": []any{inner, map[string]any{"type": "null"}}}
	case t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType):
		return map[string]any{} // marshals itself: any JSON value
	case t.Implements(textType) || reflect.PointerTo(t).Implements(textType):
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": []any{"string", "null"}, "contentEncoding": "base64"}
		}
		return map[string]any{"type": []any{"array", "null"}, "items": g.of(t.Elem())}
	case reflect.Array:
		return map[string]any{"type": "array", "items": g.of(t.Elem()), "minItems": t.Len(), "maxItems": t.Len()}
	case reflect.Map:
		return map[string]any{"type": []any{"object", "null"}, "additionalProperties": g.of(t.Elem())}
	case reflect.Struct:
		if t.Name() == "" {
			return g.object(t)
		}
		return ref(g.define(t))
	}
	return map[string]any{} // func, chan: not marshalled; never in our bodies
}

// define registers a named struct type and returns its component name.
func (g *schemaGen) define(t reflect.Type) string {
	if n, ok := g.names[t]; ok {
		return n
	}
	name := badNameChars.ReplaceAllString(t.Name(), "_")
	if other, ok := g.taken[name]; ok && other != t {
		pkg := t.PkgPath()
		name = badNameChars.ReplaceAllString(pkg[strings.LastIndex(pkg, "/")+1:]+"."+t.Name(), "_")
	}
	g.names[t], g.taken[name] = name, t
	g.defs[name] = map[string]any{} // placeholder: a type may refer to itself
	g.defs[name] = g.object(t)
	return name
}

type jsonField struct {
	name     string
	typ      reflect.Type
	optional bool
	asString bool
	depth    int
	tagged   bool
}

func (g *schemaGen) object(t reflect.Type) map[string]any {
	fields := collectFields(t)
	props := map[string]any{}
	var required []string
	for _, f := range fields {
		var s map[string]any
		if f.asString {
			s = map[string]any{"type": "string"}
		} else {
			s = g.of(f.typ)
		}
		props[f.name] = s
		if !f.optional {
			required = append(required, f.name)
		}
	}
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		sort.Strings(required)
		out["required"] = required
	}
	return out
}

// collectFields lists the JSON fields of struct t following encoding/json's rules for
// embedded structs and name conflicts (the shallowest wins; at equal depth a tagged one;
// otherwise none).
func collectFields(t reflect.Type) []jsonField {
	var all []jsonField
	var walk func(t reflect.Type, depth int, seen map[reflect.Type]bool)
	walk = func(t reflect.Type, depth int, seen map[reflect.Type]bool) {
		if seen[t] {
			return
		}
		seen[t] = true
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			ft := sf.Type
			if sf.Anonymous && name == "" {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if et.Kind() == reflect.Struct {
					walk(et, depth+1, seen)
					continue
				}
			}
			if !sf.IsExported() {
				continue
			}
			f := jsonField{name: name, typ: ft, depth: depth, tagged: name != ""}
			if f.name == "" {
				f.name = sf.Name
			}
			for _, o := range strings.Split(opts, ",") {
				switch o {
				case "omitempty", "omitzero":
					f.optional = true
				case "string":
					switch ft.Kind() {
					case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
						reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64, reflect.String:
						f.asString = true
					}
				}
			}
			all = append(all, f)
		}
		delete(seen, t)
	}
	walk(t, 0, map[reflect.Type]bool{})
	byName := map[string][]jsonField{}
	var order []string
	for _, f := range all {
		if _, ok := byName[f.name]; !ok {
			order = append(order, f.name)
		}
		byName[f.name] = append(byName[f.name], f)
	}
	var out []jsonField
	for _, n := range order {
		fs := byName[n]
		sort.SliceStable(fs, func(i, j int) bool { return fs[i].depth < fs[j].depth })
		win := fs[0]
		if len(fs) > 1 && fs[1].depth == win.depth {
			tagged := 0
			for _, f := range fs {
				if f.depth == win.depth && f.tagged {
					tagged++
					win = f
				}
			}
			if tagged != 1 {
				continue
			}
		}
		out = append(out, win)
	}
	return out
}
