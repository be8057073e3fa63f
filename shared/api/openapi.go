package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync"

	"github.com/straas/straas/shared/model"
)

// The OpenAPI 3.1 document is generated from the route table: paths and operations
// from the routes, request schemas from shared/model/schemas (the files the middleware
// validates with), response schemas from the routes' Go response types. It is never
// out of date; TestRouteMetadata says what a route's declaration lacks.

var (
	docOnce  sync.Once
	docBytes []byte
	docErr   error
)

// OpenAPI returns the OpenAPI document of the API.
func OpenAPI() ([]byte, error) {
	docOnce.Do(func() {
		var doc map[string]any
		if doc, docErr = buildOpenAPI(Routes()); docErr == nil {
			docBytes, docErr = marshalDoc(doc)
		}
	})
	return docBytes, docErr
}

func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	b, err := OpenAPI()
	if err != nil {
		return fmt.Errorf("openapi document: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err = w.Write(b)
	return err
}

func marshalDoc(doc map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var pathParam = regexp.MustCompile(`\{([A-Za-z0-9_]+)(\.\.\.)?\}`)

// OpenAPIPath turns a net/http pattern path into an OpenAPI path template:
// {name...} becomes {name} (its value may contain slashes) and {$} is dropped.
func OpenAPIPath(pattern string) string {
	p := strings.TrimSuffix(pattern, "{$}")
	return pathParam.ReplaceAllString(p, "{$1}")
}

// PathParams lists the names of a pattern's wildcards.
func PathParams(pattern string) []string {
	var out []string
	for _, m := range pathParam.FindAllStringSubmatch(pattern, -1) {
		if m[1] != "$" {
			out = append(out, m[1])
		}
	}
	return out
}

func handlerName(h any) string {
	n := runtime.FuncForPC(reflect.ValueOf(h).Pointer()).Name()
	n = strings.TrimSuffix(n, "-fm")
	if i := strings.LastIndex(n, "."); i >= 0 {
		n = n[i+1:]
	}
	return n
}

func buildOpenAPI(routes []Route) (map[string]any, error) {
	g := newSchemaGen()
	g.define(reflect.TypeFor[Error]())
	schemas := g.defs
	paths := map[string]any{}
	opIDs := map[string]bool{}
	requests := map[string]bool{}
	for _, rt := range routes {
		op, err := operation(g, rt)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", rt.Method, rt.Pattern, err)
		}
		id := handlerName(rt.Handler)
		if opIDs[id] {
			id = strings.ToLower(rt.Method) + "_" + badNameChars.ReplaceAllString(strings.Trim(OpenAPIPath(rt.Pattern), "/"), "_")
		}
		opIDs[id] = true
		op["operationId"] = id
		p := OpenAPIPath(rt.Pattern)
		item, _ := paths[p].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[p] = item
		}
		m := strings.ToLower(rt.Method)
		if _, dup := item[m]; dup {
			return nil, fmt.Errorf("%s %s: declared twice", rt.Method, rt.Pattern)
		}
		item[m] = op
		if rt.Request != "" {
			requests[rt.Request] = true
		}
	}
	for name := range requests {
		s, err := requestSchema(name)
		if err != nil {
			return nil, err
		}
		if _, clash := schemas[name]; clash {
			return nil, fmt.Errorf("request schema %q has the name of a response type", name)
		}
		schemas[name] = s
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "straas",
			"version": "1.0",
			"description": "Provisions and runs clusters of application software (ZooKeeper, Kafka, Storm, ...) on cloud VMs. " +
				"Authenticate with a Keystone token in X-Auth-Token (docs/auth.md); errors are " +
				"{\"error\": {\"code\", \"title\", \"message\", \"field\"}} (docs/api-contract.md).",
		},
		"jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
		"security":          []any{map[string]any{"keystone": []any{}}},
		"paths":             paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"keystone": map[string]any{"type": "apiKey", "in": "header", "name": "X-Auth-Token",
					"description": "A project-scoped Keystone v3 token (POST /identity/v3/auth/tokens); the legacy header name `token` is accepted too."},
			},
			"responses": map[string]any{
				"Error": map[string]any{
					"description": "An error; field names the offending request field when there is one.",
					"content":     map[string]any{"application/json": map[string]any{"schema": ref("Error")}},
				},
			},
		},
	}, nil
}

func errorResp() map[string]any { return map[string]any{"$ref": "#/components/responses/Error"} }

func operation(g *schemaGen, rt Route) (map[string]any, error) {
	if rt.Summary == "" {
		return nil, fmt.Errorf("no Summary")
	}
	op := map[string]any{"summary": rt.Summary}
	if rt.Description != "" {
		op["description"] = rt.Description
	}
	tag := rt.Tag
	if tag == "" {
		rest := strings.TrimPrefix(strings.TrimPrefix(rt.Pattern, Prefix), "/")
		tag, _, _ = strings.Cut(rest, "/")
	}
	op["tags"] = []any{tag}
	var params []any
	declared := map[string]Param{}
	for _, p := range rt.Params {
		declared[p.Name] = p
	}
	inPath := map[string]bool{}
	for _, name := range PathParams(rt.Pattern) {
		inPath[name] = true
		p, ok := declared[name]
		switch {
		case name == rt.Scope.Param && rt.Scope.Kind != NoScope:
			if !ok {
				p = Param{Name: name, Description: "id of the " + rt.Scope.Kind.String()}
				if rt.Scope.Kind == ScopeBranch {
					p.Description = "a config ref: a branch (master, or a topology's <name>@<az>), optionally &<tag>"
				}
			}
		case !ok:
			return nil, fmt.Errorf("path parameter {%s} is neither Scope.Param nor in Params", name)
		}
		if p.Description == "" {
			return nil, fmt.Errorf("path parameter {%s} has no Description", name)
		}
		params = append(params, paramDoc(p, "path", true))
	}
	for _, p := range rt.Params {
		if inPath[p.Name] {
			continue
		}
		if p.In == "path" {
			return nil, fmt.Errorf("parameter %s is declared in the path but the pattern has no {%s}", p.Name, p.Name)
		}
		if p.Description == "" {
			return nil, fmt.Errorf("query parameter %s has no Description", p.Name)
		}
		params = append(params, paramDoc(p, "query", p.Required))
	}
	mutating := isMutating(rt.Method)
	if rt.Method == http.MethodPost && !rt.Public {
		params = append(params, map[string]any{"name": IdempotencyHeader, "in": "header", "required": false,
			"description": "makes a retry return the first result instead of running again (kept 24 h per project, user and route)",
			"schema":      map[string]any{"type": "string", "minLength": 1, "maxLength": 255}})
	}
	if rt.Scope.Kind != NoScope {
		params = append(params, map[string]any{"name": "If-Match", "in": "header", "required": false,
			"description": "the ETag of the " + rt.Scope.Kind.String() + " as last read; 412 if it changed since",
			"schema":      map[string]any{"type": "string"}})
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	switch {
	case rt.Request != "":
		op["requestBody"] = map[string]any{"required": true,
			"content": map[string]any{"application/json": map[string]any{"schema": ref(rt.Request)}}}
	case rt.RequestMedia != "":
		op["requestBody"] = map[string]any{"required": true,
			"content": map[string]any{rt.RequestMedia: map[string]any{"schema": map[string]any{"type": "string", "format": "binary"}}}}
	}

	status := rt.Status
	if status == 0 {
		status = http.StatusOK
	}
	ok := map[string]any{"description": http.StatusText(status)}
	if rt.Response != nil {
		ok["content"] = map[string]any{"application/json": map[string]any{"schema": g.of(reflect.TypeOf(rt.Response))}}
	} else if status != http.StatusNoContent {
		return nil, fmt.Errorf("no Response type (nil is only for 204)")
	}
	headers := map[string]any{}
	if !mutating && rt.Scope.Kind != NoScope && strings.HasSuffix(rt.Pattern, "/{"+rt.Scope.Param+"}") {
		headers["ETag"] = map[string]any{"description": "version of the " + rt.Scope.Kind.String() + "'s state, for If-Match",
			"schema": map[string]any{"type": "string"}}
	}
	if rt.Method == http.MethodPost && !rt.Public {
		headers[ReplayedHeader] = map[string]any{"description": "true when this is the stored answer of an earlier request with the same Idempotency-Key",
			"schema": map[string]any{"type": "string"}}
	}
	if len(headers) > 0 {
		ok["headers"] = headers
	}
	resp := map[string]any{fmt.Sprint(status): ok, "default": errorResp()}
	if !rt.Public {
		resp["401"] = errorResp()
		if rt.Admin {
			resp["403"] = errorResp()
		}
		if rt.Scope.Kind != NoScope {
			resp["404"] = errorResp()
		}
		if rt.Scope.Kind != NoScope {
			resp["412"] = errorResp()
		}
		if rt.Method == http.MethodPost {
			resp["409"] = errorResp()
			resp["422"] = errorResp()
		}
		resp["429"] = errorResp()
	}
	hasQuery := false
	for _, p := range rt.Params {
		hasQuery = hasQuery || !inPath[p.Name]
	}
	if rt.Request != "" || rt.RequestMedia != "" || hasQuery || (rt.Method == http.MethodPost && !rt.Public) {
		resp["400"] = errorResp()
	}
	op["responses"] = resp
	if rt.Public {
		op["security"] = []any{}
	}
	if rt.Admin {
		op["x-straas-admin"] = true
	}
	if rt.Scope.Kind != NoScope {
		op["x-straas-scope"] = map[string]any{"param": rt.Scope.Param, "kind": rt.Scope.Kind.String()}
	}
	return op, nil
}

func paramDoc(p Param, in string, required bool) map[string]any {
	typ := p.Type
	if typ == "" {
		typ = "string"
	}
	schema := map[string]any{"type": typ}
	if len(p.Enum) > 0 {
		e := make([]any, len(p.Enum))
		for i, v := range p.Enum {
			e[i] = v
		}
		schema["enum"] = e
	}
	out := map[string]any{"name": p.Name, "in": in, "required": required, "description": p.Description, "schema": schema}
	if p.Example != "" {
		out["example"] = p.Example
	}
	return out
}

// requestSchema loads shared/model/schemas/<name>.json for the document: $refs into
// its own $defs are rewritten to point inside components/schemas/<name>.
func requestSchema(name string) (map[string]any, error) {
	b, err := model.Schemas.ReadFile("schemas/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("request schema %q: %w", name, err)
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("request schema %q: %w", name, err)
	}
	delete(s, "$schema")
	delete(s, "$id")
	var fix func(v any)
	fix = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if r, ok := c.(string); ok && k == "$ref" && strings.HasPrefix(r, "#/") {
					x[k] = "#/components/schemas/" + name + "/" + strings.TrimPrefix(r, "#/")
					continue
				}
				fix(c)
			}
		case []any:
			for _, c := range x {
				fix(c)
			}
		}
	}
	fix(s)
	return s, nil
}
