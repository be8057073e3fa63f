package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
)

// Fuzz targets of request decoding and validation. No input may panic or be answered
// 500; every refusal is the error schema; a request body is refused with the field.
//
//	go test -run '^$' -fuzz FuzzDecodeCreateTopology -fuzztime 15s ./shared/api
//	go test -run '^$' -fuzz FuzzRequest -fuzztime 15s ./shared/api
//
// The seed corpora are in testdata/fuzz/<target>.

func FuzzDecodeCreateTopology(f *testing.F) {
	for _, seed := range []string{
		`{"name":"t","availability_zone":"az1","components":[{"name":"zk","type":"zookeeper","version":"3.4.6","size":3}]}`,
		`{"name":"t","availability_zone":"az1","components":[{"name":"zk","type":"zookeeper","version":"3.4.6","size":1},` +
			`{"name":"k","type":"kafka","version":"0.10.2.1","size":2,"depends_on":"zk"},` +
			`{"name":"s","type":"storm","version":"1.0.2","depends_on":["zk"],"submodules":[{"role":"nimbus","size":1},{"role":"supervisor","size":2,"enable cname":true}]}]}`,
		`{"name":"t","availability_zone":"az1","components":[{"name":"a","type":"kafka","version":"0.10.2.1","size":1,"depends_on":"b"},{"name":"b","type":"kafka","version":"0.10.2.1","size":1,"depends_on":"a"}]}`,
		`{"name":"t","availability_zone":"mars","components":[]}`, `{"name":`, `[]`, `null`, `{"name":"t","colour":1}`,
		`{"name":"t","availability_zone":"az1","components":[{"name":"zk","type":"zookeeper","version":"3.4.6","size":1,"min_num_of_fault_domain":2}]}`,
		`{"name":"t","availability_zone":"az1","components":[{"name":"s","type":"storm","version":"1.0.2","size":5,"submodules":[{"role":"nimbus","size":1}]}]}`,
	} {
		f.Add([]byte(seed))
	}
	cat := &requestCatalog{types: map[string]model.ComponentType{}, flavors: map[string]bool{}, zones: map[string]bool{"az1": true}}
	for _, t := range testTypes {
		cat.types[t.Type] = t
		cat.names = append(cat.names, t.Type)
	}
	for _, fl := range testFlavors {
		cat.flavors[fl.Name] = true
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := model.DecodeCreateTopology(raw, cat)
		if err != nil {
			if !errs.Is(err, errs.Invalid) || errs.FieldOf(err) == "" {
				t.Fatalf("refused with %v (kind %s, field %q), want an Invalid error naming the field", err, errs.KindOf(err), errs.FieldOf(err))
			}
			return
		}
		// What is accepted is whole: every component typed, sized and in dependency order.
		if len(model.DependencyOrder(req.Components)) != len(req.Components) {
			t.Fatal("dependency order lost components")
		}
		for _, c := range req.Components {
			if _, ok := cat.types[c.Type]; !ok || c.Size < 1 || c.Flavor == "" {
				t.Fatalf("accepted component %+v", c)
			}
		}
	})
}

// FuzzRequest sends arbitrary requests through the whole handler (middleware and
// handlers, on an in-memory store).
func FuzzRequest(f *testing.F) {
	fx := newFixture(f, testRoutes())
	methods := []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}
	tokens := []string{"", "tok-admin", "tok-demo", "tok-demo2", "tok-other", "garbage"}
	seeds := []struct {
		method, token uint8
		path, query   string
		body          string
		hdr           string
	}{
		{2, 2, Prefix + "/topologies", "", `{"name":"f1","availability_zone":"az1","components":[{"name":"zk","type":"zookeeper","version":"3.4.6","size":1}]}`, "Idempotency-Key: k1"},
		{0, 2, Prefix + "/topologies", "limit=1&sort=-created_at&status=ACTIVE&component_type=zookeeper", "", ""},
		{0, 1, Prefix + "/topologies", "marker=eyJzIjoibmFtZSIsImsiOiJ0MUBhejEiLCJpIjoidG9wby0xIn0&sort=name", "", ""},
		{0, 2, Prefix + "/topologies/topo-1", "", "", `If-Match: "x"`},
		{4, 3, Prefix + "/topologies/topo-1", "", "", ""},
		{0, 2, Prefix + "/actions", "topology_id=topo-1&kind=create_topology", "", ""},
		{0, 4, Prefix + "/actions/act-1", "", "", ""},
		{0, 2, Prefix + "/components/zookeeper/nova_flavors", "availability_zone=az9", "", ""},
		{1, 2, "/t/components/comp-1", "", "", "Idempotency-Key: \x00"},
		{0, 2, "/t/tree/t1@az1&v1/app/../../x", "", "", ""},
		{0, 0, "/straas/openapi.json", "", "", ""},
		{3, 2, Prefix + "/topologies", "", "{}", "Content-Type: text/plain"},
		// Routes of other features, on the fixture's resources.
		{0, 2, Prefix + "/nodes/node-1", "", "", ""},
		{1, 2, Prefix + "/components/comp-1", "", `{"count":1}`, ""},
		{2, 2, Prefix + "/nodes/node-1/commands", "", `{"command":"ls"}`, ""},
		{0, 2, Prefix + "/configurations/tree/t1@az1/app/zookeeper/3.4.6/user.json", "", "", ""},
		{0, 2, "/straas/t1", "", "", ""},
		{1, 2, "/straas/guestcmd/comp-1/t1-zk-1", "", `{"command":"ls"}`, ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.token, s.path, s.query, []byte(s.body), s.hdr)
	}
	f.Fuzz(func(t *testing.T, method, token uint8, path, query string, body []byte, hdr string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		r := &http.Request{Method: methods[int(method)%len(methods)], URL: &url.URL{Path: path, RawQuery: query},
			Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
			RemoteAddr: "192.0.2.9:1234", Host: "straas", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		r.RequestURI = r.URL.RequestURI()
		if tok := tokens[int(token)%len(tokens)]; tok != "" {
			r.Header.Set("X-Auth-Token", tok)
		}
		for _, line := range strings.Split(hdr, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && validHeaderName(k) {
				r.Header.Add(k, strings.TrimSpace(v))
			}
		}
		r = r.WithContext(t.Context())
		w := httptest.NewRecorder()
		fx.h.ServeHTTP(w, r)
		// 503 is a dependency this fixture does not wire (a deployment's config repos,
		// lifecycle backends): not an input the API failed on.
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s?%s: %d %s", r.Method, path, query, w.Code, w.Body)
		}
		if w.Code >= 400 && r.Method != "HEAD" {
			var e Error
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code != w.Code || e.Error.Message == "" {
				t.Fatalf("%s %s: %d is not the error schema: %s", r.Method, path, w.Code, w.Body)
			}
		}
		if w.Code < 300 && r.Header.Get("X-Auth-Token") == "" && !strings.HasPrefix(path, "/straas/openapi.json") && path != "/healthz" {
			t.Fatalf("%s %s: %d without a token", r.Method, path, w.Code)
		}
	})
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
