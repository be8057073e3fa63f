package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	restapi "github.com/straas/straas/shared/api"
	"github.com/straas/straas/test/harness"
)

// TestMain makes every answer of the API that any test of this package receives pass
// through the OpenAPI document: the HTTP clients of the suite (the harness's, the
// client package's, acCall's) use http.DefaultTransport, which is wrapped here. The run
// fails if one answer does not match.
func TestMain(m *testing.M) {
	doc, err := restapi.OpenAPI()
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi document:", err)
		os.Exit(1)
	}
	v, err := restapi.NewResponseValidator(doc)
	if err != nil {
		fmt.Fprintln(os.Stderr, "openapi validator:", err)
		os.Exit(1)
	}
	acChecker = &acContract{v: v, seen: map[string]int{}}
	http.DefaultTransport = &acValidating{next: http.DefaultTransport}
	code := m.Run()
	if acChecker.report(os.Stderr) && code == 0 {
		code = 1
	}
	os.Exit(code)
}

var acChecker *acContract

// acContract collects what the validating transport finds.
type acContract struct {
	v          *restapi.ResponseValidator
	mu         sync.Mutex
	seen       map[string]int // operation -> answers checked
	violations []string
}

func (c *acContract) check(method, path string, status int, ctype string, body []byte) {
	err := c.v.Validate(method, path, status, ctype, body)
	op, _ := c.v.Operation(method, path)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[method+" "+op]++
	if err != nil && len(c.violations) < 200 {
		c.violations = append(c.violations, err.Error())
	}
}

// report prints what was checked and what did not match; it says whether anything did not.
func (c *acContract) report(w io.Writer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for _, n := range c.seen {
		total += n
	}
	if total > 0 {
		fmt.Fprintf(w, "openapi: %d answers of %d operations checked against the document\n", total, len(c.seen))
	}
	if len(c.violations) == 0 {
		return false
	}
	fmt.Fprintf(w, "openapi: %d answers do not match the document (shared/api route metadata):\n", len(c.violations))
	for _, v := range c.violations {
		fmt.Fprintln(w, "  "+v)
	}
	return true
}

// acValidating is an http.RoundTripper that checks answers of the straas API.
type acValidating struct{ next http.RoundTripper }

func (t *acValidating) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || acChecker == nil || req.Method == http.MethodHead {
		return resp, err
	}
	p := req.URL.Path
	if !strings.HasPrefix(p, "/straas/") && p != "/healthz" {
		return resp, nil // the mock cloud's Keystone and Nova, metrics
	}
	media, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if media != "application/json" && media != "" || resp.ContentLength > 16<<20 {
		acChecker.check(req.Method, p, resp.StatusCode, resp.Header.Get("Content-Type"), nil)
		return resp, nil // a download: not read here
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr == nil {
		acChecker.check(req.Method, p, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	return resp, nil
}

var acDocParam = regexp.MustCompile(`\{[^}]+\}`)

// TestOpenAPIServed: /straas/openapi.json is public and is the document of this build;
// its operations are exactly the route table's; each is served (an anonymous call gets
// 401, or a public route's own answer), and other methods on its paths are 405 unless
// another route takes them.
func TestOpenAPIServed(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	a := acCall(t, "GET", s.APIURL+"/straas/openapi.json", "", nil)
	want, _ := restapi.OpenAPI()
	if a.status != 200 || !bytes.Equal(a.body, want) {
		t.Fatalf("GET /straas/openapi.json: %d, %d bytes; want 200 with this build's document (%d bytes)", a.status, len(a.body), len(want))
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Security *[]any `json:"security"`
		} `json:"paths"`
	}
	acDecode(t, a.body, &doc)

	var documented, table []string
	for path, ops := range doc.Paths {
		concrete := acDocParam.ReplaceAllString(path, "x")
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
			op, ok := ops[strings.ToLower(m)]
			got := acCall(t, m, s.APIURL+concrete, "", nil)
			if !ok {
				if routed, _ := acChecker.v.Operation(m, concrete); routed == "" && got.status != http.StatusMethodNotAllowed {
					t.Errorf("%s %s is not documented: %s, want 405", m, concrete, got)
				}
				continue
			}
			documented = append(documented, m+" "+path)
			public := op.Security != nil && len(*op.Security) == 0
			switch {
			case !public && got.status != http.StatusUnauthorized:
				t.Errorf("%s %s: %s, want 401 (reaching its route)", m, concrete, got)
			case public && (got.status == http.StatusUnauthorized || got.status == http.StatusMethodNotAllowed || got.status >= 500):
				t.Errorf("%s %s (public): %s, want its route's answer", m, concrete, got)
			}
		}
	}
	for _, rt := range restapi.Routes() {
		table = append(table, rt.Method+" "+restapi.OpenAPIPath(rt.Pattern))
	}
	sort.Strings(documented)
	sort.Strings(table)
	if strings.Join(documented, "\n") != strings.Join(table, "\n") {
		t.Errorf("served document:\n%s\nroute table:\n%s", strings.Join(documented, "\n"), strings.Join(table, "\n"))
	}
	var d map[string]any
	if err := json.Unmarshal(a.body, &d); err != nil || d["openapi"] != "3.1.0" {
		t.Errorf("openapi version: %v %v", d["openapi"], err)
	}
}
