package api

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
)

var updateAPIDoc = flag.Bool("update-api-doc", false, "append a stub section to docs/api.md for each route it lacks")

var docRoute = regexp.MustCompile("`([A-Z|]+) (/[^` ]*)`")

// TestAPIDocCoversEveryRoute: docs/api.md has a section (a ### heading naming the method
// and path) for every route of the table, and none for a route that does not exist, so
// that the API's reference cannot fall behind it. With -update-api-doc it appends a stub per missing route (summary,
// description, an example request from the parameters' examples) to complete by hand.
func TestAPIDocCoversEveryRoute(t *testing.T) {
	const file = "../../docs/api.md"
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "### ") {
			continue
		}
		for _, m := range docRoute.FindAllStringSubmatch(line, -1) {
			for _, method := range strings.Split(m[1], "|") {
				documented[method+" "+m[2]] = true
			}
		}
	}
	var stubs []string
	for _, rt := range Routes() {
		k := rt.Method + " " + OpenAPIPath(rt.Pattern)
		if documented[k] {
			continue
		}
		documented[k] = true
		if !*updateAPIDoc {
			t.Errorf("docs/api.md has no ### section for %s (go test ./shared/api -run TestAPIDocCoversEveryRoute -update-api-doc adds a stub)", k)
			continue
		}
		stubs = append(stubs, docStub(rt))
	}
	// And the reverse: a section for a route that does not exist misleads readers.
	routes := map[string]bool{}
	for _, rt := range Routes() {
		routes[rt.Method+" "+OpenAPIPath(rt.Pattern)] = true
	}
	for k := range documented {
		if !routes[k] {
			t.Errorf("docs/api.md documents %s, which is not a route (a #### heading documents a form of another route)", k)
		}
	}
	if len(stubs) > 0 {
		s := strings.TrimRight(string(b), "\n") + "\n"
		if !strings.Contains(s, "\n## Other routes\n") {
			s += "\n## Other routes\n\nStubs generated from the route table: complete them with real examples.\n"
		}
		s += "\n" + strings.Join(stubs, "\n")
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// docStub is a route's section from its metadata.
func docStub(rt Route) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### `%s %s` — %s\n\n", rt.Method, OpenAPIPath(rt.Pattern), rt.Summary)
	if rt.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", rt.Description)
	}
	path := strings.TrimSuffix(rt.Pattern, "{$}")
	q := url.Values{}
	for _, p := range rt.Params {
		switch {
		case p.In == "query" && p.Example != "":
			q.Set(p.Name, p.Example)
		case p.Example != "":
			path = regexp.MustCompile(`\{`+regexp.QuoteMeta(p.Name)+`(\.\.\.)?\}`).ReplaceAllString(path, p.Example)
		}
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	status := rt.Status
	if status == 0 {
		status = 200
	}
	fmt.Fprintf(&b, "```http\n%s %s\n```\n```http\nHTTP/1.1 %d\n```\n", rt.Method, path, status)
	return b.String()
}
