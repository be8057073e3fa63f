package lambda

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/blob/s3blob"
	"github.com/straas/straas/shared/deps"
)

// apiRequest is the sample API event (an admin of project p-admin, through the
// authorizer) turned into another request; a body sent as binary arrives base64-encoded,
// as API Gateway delivers it with BinaryMediaTypes */*.
func apiRequest(t *testing.T, method, path string, query map[string]string, body []byte, binary bool) []byte {
	t.Helper()
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(event(t, "api/list-components.json", nil), &ev); err != nil {
		t.Fatal(err)
	}
	ev.HTTPMethod, ev.Path = method, path
	ev.RequestContext.HTTPMethod, ev.RequestContext.Path = method, "/api"+path
	ev.PathParameters = map[string]string{"proxy": strings.TrimPrefix(path, "/")}
	ev.QueryStringParameters, ev.MultiValueQueryStringParameters = query, nil
	for k, v := range query {
		if ev.MultiValueQueryStringParameters == nil {
			ev.MultiValueQueryStringParameters = map[string][]string{}
		}
		ev.MultiValueQueryStringParameters[k] = []string{v}
	}
	ct := "application/json"
	switch {
	case binary:
		ct = "application/octet-stream"
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	case body != nil:
		ev.Body = string(body)
	}
	if body != nil {
		ev.Headers["Content-Type"], ev.MultiValueHeaders["Content-Type"] = ct, []string{ct}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The lifecycle routes through the API function: storage in the stack's bucket (upload,
// list with pre-signed URLs the agents fetch without credentials, delete), the CMDB copy
// in the table, and guest commands checked against the remote script repo.
func TestLifecycleRoutesThroughTheAPIFunction(t *testing.T) {
	s := newStack(t)
	ids := s.topology(t, "lifecycle-1")
	h, err := s.lambda.API(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	const base = "/straas/v1.0/storage/swift/regions/az1/"
	jar := make([]byte, 300<<10) // not UTF-8: it must cross API Gateway as base64
	for i := range jar {
		jar[i] = byte(rand.IntN(256))
	}

	r, _ := callAPI(t, h, apiRequest(t, "POST", base+"jars/wc.jar", nil, jar, true))
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("upload: got %d: %s", r.StatusCode, r.Body)
	}
	var stored api.StoredObject
	if err := json.Unmarshal([]byte(r.Body), &stored); err != nil || stored.Object.Size != int64(len(jar)) || stored.Object.Path != "jars/wc.jar" {
		t.Fatalf("upload answer: got %+v, %v; want jars/wc.jar of %d bytes", stored, err, len(jar))
	}
	// The object is in the bucket under the tenant's namespace, byte for byte.
	bs, err := s3blob.New(s.aws, s3blob.Options{Bucket: s.cfg.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := bs.Get(testCtx(t), "tenants/p-admin/swift/az1/jars/wc.jar")
	if err != nil {
		t.Fatalf("object not in the bucket: %v", err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, jar) {
		t.Fatalf("stored object: %d bytes, %v; want the %d uploaded", len(got), err, len(jar))
	}

	r, _ = callAPI(t, h, apiRequest(t, "GET", base+"jars/", map[string]string{"urls": "true"}, nil, false))
	var list api.ObjectList
	if r.StatusCode != http.StatusOK || json.Unmarshal([]byte(r.Body), &list) != nil || len(list.Objects) != 1 || list.Objects[0].URL == "" {
		t.Fatalf("list with urls: got %d: %s", r.StatusCode, r.Body)
	}
	// What an agent does with a put_file command: GET the pre-signed URL, no credentials.
	resp, err := http.Get(list.Objects[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || !bytes.Equal(got, jar) {
		t.Fatalf("pre-signed URL %s: got %d, %d bytes, %v", list.Objects[0].URL, resp.StatusCode, len(got), err)
	}

	tests := []struct {
		name    string
		req     []byte
		status  int
		field   string // of a 400
		content string // in the body
	}{
		{"too large for Lambda", apiRequest(t, "POST", base+"jars/big.jar", nil, make([]byte, deps.LambdaMaxUpload+1), true), 413, "body", ""},
		{"bad storage type", apiRequest(t, "POST", "/straas/v1.0/storage/Swift/regions/az1/x", nil, []byte("x"), true), 400, "storage_type", ""},
		{"unknown region", apiRequest(t, "GET", "/straas/v1.0/storage/swift/regions/az9/jars/", nil, nil, false), 400, "dc", ""},
		{"unknown guest command", apiRequest(t, "POST", "/straas/v1.0/components/"+ids["cmp-sample"]+"/commands", nil,
			[]byte(`{"command": "zk-cmd/no_such_command"}`), false), 400, "command", "zk-cmd/create_namespace"},
		{"guest command with an unknown field", apiRequest(t, "POST", "/straas/v1.0/components/"+ids["cmp-sample"]+"/commands", nil,
			[]byte(`{"command": "assist-cmd/list", "colour": "red"}`), false), 400, "colour", ""},
		{"cms create", apiRequest(t, "POST", "/straas/v1.0/topologies/"+ids["topo-sample"]+"/cms", nil, nil, false), 201, "", ids["topo-sample"]},
		{"cms create again", apiRequest(t, "POST", "/straas/v1.0/topologies/"+ids["topo-sample"]+"/cms", nil, nil, false), 409, "", ""},
		{"cms show", apiRequest(t, "GET", "/straas/v1.0/topologies/"+ids["topo-sample"]+"/cms", nil, nil, false), 200, "", "zookeeper"},
		{"delete", apiRequest(t, "DELETE", base+"jars/wc.jar", nil, nil, false), 204, "", ""},
		{"listed no more", apiRequest(t, "GET", base+"jars/", nil, nil, false), 200, "", `"objects": []`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, e := callAPI(t, h, tc.req)
			if r.StatusCode != tc.status {
				t.Fatalf("got %d, want %d: %s", r.StatusCode, tc.status, r.Body)
			}
			if tc.field != "" && e.Error.Field != tc.field {
				t.Errorf("error field: got %q, want %q: %s", e.Error.Field, tc.field, r.Body)
			}
			if !strings.Contains(r.Body, tc.content) {
				t.Errorf("body does not contain %q: %s", tc.content, r.Body)
			}
		})
	}

	// Without a bucket the storage routes say what is missing; the others still work.
	nb := deps.NewLambdaWithLogger(s.config(t, map[string]string{deps.EnvBucket: ""}), quiet())
	hn, err := nb.API(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	r, e := callAPI(t, hn, apiRequest(t, "GET", base+"jars/", nil, nil, false))
	if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(e.Error.Message, deps.EnvBucket) {
		t.Errorf("storage without a bucket: got %d: %s; want 503 naming %s", r.StatusCode, r.Body, deps.EnvBucket)
	}
	r, _ = callAPI(t, hn, apiRequest(t, "GET", "/straas/v1.0/topologies/"+ids["topo-sample"]+"/cms", nil, nil, false))
	if r.StatusCode != http.StatusOK {
		t.Errorf("cms without a bucket: got %d: %s", r.StatusCode, r.Body)
	}
}
