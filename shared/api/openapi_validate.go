package api

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ResponseValidator checks real answers against an OpenAPI document of this API: the
// status must be one the operation declares (a success status exactly; errors may fall
// under "default"), and a JSON body must match the declared schema. The end-to-end
// suite runs every answer it gets through one.
type ResponseValidator struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	mux      *http.ServeMux // "METHOD pattern" -> OpenAPI path, to find a request's operation
	paths    map[string]string

	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema
}

// NewResponseValidator parses an OpenAPI document (as OpenAPI returns or the API serves).
func NewResponseValidator(doc []byte) (*ResponseValidator, error) {
	parsed, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	m, ok := parsed.(map[string]any)
	if !ok {
		return nil, errors.New("openapi document: not an object")
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("openapi.json", parsed); err != nil {
		return nil, err
	}
	v := &ResponseValidator{doc: m, compiler: c, mux: http.NewServeMux(), paths: map[string]string{}, schemas: map[string]*jsonschema.Schema{}}
	for _, rt := range Routes() {
		v.paths[rt.Method+" "+rt.Pattern] = OpenAPIPath(rt.Pattern)
		v.mux.Handle(rt.Method+" "+rt.Pattern, http.NotFoundHandler())
	}
	return v, nil
}

// Operation finds the OpenAPI path of the operation a request reaches (false if no
// route takes that method and path).
func (v *ResponseValidator) Operation(method, path string) (string, bool) {
	r, err := http.NewRequest(method, "http://x"+path, nil)
	if err != nil {
		return "", false
	}
	_, pattern := v.mux.Handler(r)
	p, ok := v.paths[pattern]
	return p, ok
}

// Validate checks one answer to method path (the request's URL path).
func (v *ResponseValidator) Validate(method, path string, status int, contentType string, body []byte) error {
	opPath, ok := v.Operation(method, path)
	if !ok {
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return v.validateError(method, path, status, contentType, body)
		}
		return fmt.Errorf("%s %s: no such route, yet the API answered %d", method, path, status)
	}
	paths, _ := v.doc["paths"].(map[string]any)
	item, _ := paths[opPath].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	if op == nil {
		return fmt.Errorf("%s %s: the document has no %s %s, yet the API answered %d", method, path, method, opPath, status)
	}
	resps, _ := op["responses"].(map[string]any)
	code := fmt.Sprint(status)
	if _, ok := resps[code]; !ok {
		if status < 400 {
			return fmt.Errorf("%s %s: answered %d, which %s %s does not declare", method, path, status, method, opPath)
		}
		code = "default"
	}
	ptr := "/paths/" + escapePointer(opPath) + "/" + strings.ToLower(method) + "/responses/" + code
	return v.check(ptr, method, path, status, contentType, body)
}

func (v *ResponseValidator) validateError(method, path string, status int, contentType string, body []byte) error {
	return v.check("/components/responses/Error", method, path, status, contentType, body)
}

func (v *ResponseValidator) check(ptr, method, path string, status int, contentType string, body []byte) error {
	resp := v.lookup(ptr)
	if r, ok := resp["$ref"].(string); ok {
		ptr = strings.TrimPrefix(r, "#")
		resp = v.lookup(ptr)
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(bytes.TrimSpace(body)) > 0 {
			return fmt.Errorf("%s %s: %d has a body, but the document declares none", method, path, status)
		}
		return nil
	}
	media, _, _ := strings.Cut(contentType, ";")
	media = strings.TrimSpace(media)
	if _, ok := content[media]; !ok {
		return fmt.Errorf("%s %s: %d answered as %q, the document declares %v", method, path, status, contentType, keys(content))
	}
	if media != "application/json" {
		return nil
	}
	sch, err := v.schema(ptr + "/content/" + escapePointer(media) + "/schema")
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s %s: %d: the body is not JSON: %v", method, path, status, err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%s %s: %d does not match the document: %v", method, path, status, err)
	}
	return nil
}

func (v *ResponseValidator) lookup(ptr string) map[string]any {
	var cur any = v.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, _ := cur.(map[string]any)
		cur = m[tok]
	}
	m, _ := cur.(map[string]any)
	return m
}

func (v *ResponseValidator) schema(ptr string) (*jsonschema.Schema, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.schemas[ptr]; ok {
		return s, nil
	}
	s, err := v.compiler.Compile("openapi.json#" + ptr)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", ptr, err)
	}
	v.schemas[ptr] = s
	return s, nil
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
