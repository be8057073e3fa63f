package model

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/straas/straas/shared/errs"
)

// Schemas holds the JSON Schemas of request bodies, named <request>.json. The OpenAPI
// document references the same files.
//
//go:embed schemas/*.json
var Schemas embed.FS

var (
	schemaOnce sync.Once
	schemaErr  error
	compiled   map[string]*jsonschema.Schema
	printer    = message.NewPrinter(language.English)
)

func loadSchemas() {
	c := jsonschema.NewCompiler()
	names, err := fs.Glob(Schemas, "schemas/*.json")
	if err != nil {
		schemaErr = err
		return
	}
	for _, n := range names {
		b, err := Schemas.ReadFile(n)
		if err != nil {
			schemaErr = err
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			schemaErr = fmt.Errorf("schema %s: %w", n, err)
			return
		}
		if err := c.AddResource(path.Base(n), doc); err != nil {
			schemaErr = fmt.Errorf("schema %s: %w", n, err)
			return
		}
	}
	compiled = make(map[string]*jsonschema.Schema, len(names))
	for _, n := range names {
		s, err := c.Compile(path.Base(n))
		if err != nil {
			schemaErr = fmt.Errorf("compile schema %s: %w", n, err)
			return
		}
		compiled[strings.TrimSuffix(path.Base(n), ".json")] = s
	}
}

// ValidateJSON checks raw against the named request schema. A violation is an
// errs.Invalid error whose Field is the path of the offending value, e.g.
// "components[1].depends_on".
func ValidateJSON(schema string, raw []byte) error {
	schemaOnce.Do(loadSchemas)
	if schemaErr != nil {
		return schemaErr
	}
	s, ok := compiled[schema]
	if !ok {
		return fmt.Errorf("no request schema %q", schema)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return errs.Invalidf("body", "not valid JSON: %v", err)
	}
	err = s.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return errs.Invalidf("body", "%v", err)
	}
	return describe(ve)
}

// describe turns the most specific leaf of a validation error tree into an errs.Invalid.
func describe(ve *jsonschema.ValidationError) error {
	leaf := deepest(ve)
	field := fieldPath(leaf.InstanceLocation)
	msg := leaf.ErrorKind.LocalizedString(printer)
	switch k := leaf.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		sort.Strings(k.Properties)
		return errs.Invalidf(join(field, k.Properties[0]), "unknown field")
	case *kind.Required:
		return errs.Invalidf(join(field, k.Missing[0]), "is required")
	}
	if field == "" {
		field = "body"
	}
	return errs.Invalidf(field, "%s", msg)
}

// deepest picks the leaf with the longest instance path: the most precise complaint.
// oneOf failures have every alternative as a cause; the deepest is the most useful.
func deepest(ve *jsonschema.ValidationError) *jsonschema.ValidationError {
	best := ve
	for _, c := range ve.Causes {
		d := deepest(c)
		if len(d.InstanceLocation) > len(best.InstanceLocation) || (best == ve && len(ve.Causes) > 0 && len(d.InstanceLocation) >= len(best.InstanceLocation)) {
			best = d
		}
	}
	return best
}

func fieldPath(loc []string) string {
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

func join(base, name string) string {
	if base == "" {
		return name
	}
	return base + "." + name
}
