package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/straas/straas/shared/model"
)

// TestRouteMetadata names, route by route, what a declaration lacks.
func TestRouteMetadata(t *testing.T) {
	seen := map[string]bool{}
	for _, rt := range Routes() {
		name := rt.Method + " " + rt.Pattern
		t.Run(name, func(t *testing.T) {
			if seen[name] {
				t.Fatal("declared twice")
			}
			seen[name] = true
			if !slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, rt.Method) {
				t.Errorf("method %q", rt.Method)
			}
			if !strings.HasPrefix(rt.Pattern, "/straas/") && rt.Pattern != "/healthz" {
				t.Errorf("pattern outside /straas/")
			}
			if rt.Handler == nil {
				t.Error("no Handler")
			}
			if rt.Summary == "" {
				t.Error("no Summary")
			}
			if rt.Response == nil && rt.Status != http.StatusNoContent {
				t.Error("no Response type (nil is for 204 only)")
			}
			params := PathParams(rt.Pattern)
			if rt.Scope.Kind != NoScope && !slices.Contains(params, rt.Scope.Param) {
				t.Errorf("Scope.Param %q is not in the pattern", rt.Scope.Param)
			}
			if rt.Public && (rt.Admin || rt.Scope.Kind != NoScope) {
				t.Error("a Public route cannot be Admin or scoped")
			}
			declared := map[string]bool{}
			for _, p := range rt.Params {
				declared[p.Name] = true
				if p.Description == "" {
					t.Errorf("parameter %s has no Description", p.Name)
				}
			}
			for _, p := range params {
				if p != rt.Scope.Param && !declared[p] {
					t.Errorf("path parameter {%s} is neither Scope.Param nor in Params", p)
				}
			}
			if rt.Request != "" {
				if err := model.ValidateJSON(rt.Request, []byte(`{}`)); err != nil && strings.Contains(err.Error(), "no request schema") {
					t.Errorf("Request %q: no shared/model/schemas/%s.json", rt.Request, rt.Request)
				}
			}
			if rt.Request != "" && rt.RequestMedia != "" {
				t.Error("both Request and RequestMedia")
			}
		})
	}
}

// TestOpenAPIDocument checks the document against the OpenAPI 3.1 schema, and that
// every schema in it compiles.
func TestOpenAPIDocument(t *testing.T) {
	doc, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	oasRaw, err := os.ReadFile("testdata/oas-3.1-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	oas, err := jsonschema.UnmarshalJSON(bytes.NewReader(oasRaw))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("oas.json", oas); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("oas.json")
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("not an OpenAPI 3.1 document: %v", err)
	}

	v, err := NewResponseValidator(doc)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	_ = json.Unmarshal(doc, &d)
	for name := range d.Components.Schemas {
		if _, err := v.schema("/components/schemas/" + escapePointer(name)); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
}

// TestServedEqualsDocumented: every documented operation is served (an anonymous call
// reaches its route: 401, or the route's own answer for public ones), and on every documented path every
// other method is a 405, so that the handler serves nothing the document lacks.
func TestServedEqualsDocumented(t *testing.T) {
	f := newFixture(t, Routes())
	doc, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	// Which route a request reaches when patterns overlap ({path...} takes "tags/x").
	byRoute := http.NewServeMux()
	for _, rt := range Routes() {
		byRoute.Handle(rt.Method+" "+rt.Pattern, http.NotFoundHandler())
	}
	servedByARoute := func(method, path string) bool {
		r, _ := http.NewRequest(method, "http://x"+path, nil)
		_, p := byRoute.Handler(r)
		return p != ""
	}
	var documented []string
	for path, ops := range d.Paths {
		concrete := pathParam.ReplaceAllString(path, "x")
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			var op struct {
				Security *[]any `json:"security"`
			}
			raw, ok := ops[strings.ToLower(m)]
			w := f.do(m, concrete, "", "")
			switch {
			case !ok && servedByARoute(m, concrete):
				// another documented operation's: checked on its own path
			case !ok:
				if w.Code != http.StatusMethodNotAllowed {
					t.Errorf("%s %s (undocumented): %d, want 405", m, concrete, w.Code)
				}
			default:
				documented = append(documented, m+" "+path)
				_ = json.Unmarshal(raw, &op)
				public := op.Security != nil && len(*op.Security) == 0
				switch {
				case !public && w.Code != http.StatusUnauthorized:
					t.Errorf("%s %s: %d, want 401 (served by its route)", m, concrete, w.Code)
				case public && (w.Code == http.StatusUnauthorized || w.Code == http.StatusMethodNotAllowed || w.Code >= 500):
					t.Errorf("%s %s (public): %d, want its route's answer", m, concrete, w.Code)
				}
			}
		}
	}
	var table []string
	for _, rt := range Routes() {
		table = append(table, rt.Method+" "+OpenAPIPath(rt.Pattern))
	}
	slices.Sort(documented)
	slices.Sort(table)
	if !slices.Equal(documented, table) {
		t.Errorf("document has %v\nroute table has %v", documented, table)
	}
}

// TestResponsesMatchDocument runs real answers of the fixture through the validator,
// and makes sure the validator refuses what it should.
func TestResponsesMatchDocument(t *testing.T) {
	f := newFixture(t, Routes())
	doc, _ := OpenAPI()
	v, err := NewResponseValidator(doc)
	if err != nil {
		t.Fatal(err)
	}
	calls := []struct{ method, path, tok, body string }{
		{"GET", "/healthz", "", ""},
		{"GET", "/straas/openapi.json", "", ""},
		{"GET", Prefix + "/topologies", "tok-demo", ""},
		{"GET", Prefix + "/topologies/topo-1", "tok-demo", ""},
		{"GET", Prefix + "/topologies/topo-1", "tok-other", ""},
		{"GET", Prefix + "/topologies", "", ""},
		{"POST", Prefix + "/topologies", "tok-demo", fmt.Sprintf(zkBody, "doc-1")},
		{"POST", Prefix + "/topologies", "tok-demo", `{"bad":1}`},
		{"GET", Prefix + "/components", "tok-demo", ""},
		{"GET", Prefix + "/components/zookeeper/nova_flavors", "tok-demo", ""},
		{"GET", Prefix + "/actions", "tok-demo", ""},
		{"GET", Prefix + "/actions/act-1", "tok-demo", ""},
		{"DELETE", Prefix + "/topologies/topo-1", "tok-demo", ""},
		{"PATCH", Prefix + "/topologies", "tok-demo", ""},
		{"GET", Prefix + "/nowhere", "tok-demo", ""},
	}
	for _, c := range calls {
		w := f.do(c.method, c.path, c.tok, c.body)
		if err := v.Validate(c.method, c.path, w.Code, w.Header().Get("Content-Type"), w.Body.Bytes()); err != nil {
			t.Errorf("%v", err)
		}
	}
	bad := []struct {
		name, method, path string
		status             int
		body               string
	}{
		{"undeclared success status", "GET", Prefix + "/topologies", 201, `{"topologies":[]}`},
		{"missing required field", "GET", Prefix + "/topologies/topo-1", 200, `{}`},
		{"unknown field", "GET", Prefix + "/actions", 200, `{"actions":[],"extra":1}`},
		{"error not in the error schema", "GET", Prefix + "/actions", 404, `{"message":"x"}`},
		{"no route", "GET", Prefix + "/nowhere", 200, `{}`},
	}
	for _, b := range bad {
		if err := v.Validate(b.method, b.path, b.status, "application/json", []byte(b.body)); err == nil {
			t.Errorf("%s: accepted", b.name)
		}
	}
}
