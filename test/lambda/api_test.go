package lambda

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/deps"
)

type proxyResponse struct {
	StatusCode int               `json:"statusCode"`
	Headers    map[string]string `json:"headers"`
	Body       string            `json:"body"`
}

func callAPI(t *testing.T, h deps.APIHandler, payload []byte) (proxyResponse, api.Error) {
	t.Helper()
	out, err := invoke(t, h, payload)
	if err != nil {
		t.Fatalf("API handler: %v", err)
	}
	var r proxyResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("API response %s: %v", out, err)
	}
	var e api.Error
	if r.StatusCode >= 400 {
		if err := json.Unmarshal([]byte(r.Body), &e); err != nil || e.Error.Code != r.StatusCode {
			t.Errorf("%d response is not the error schema: %s", r.StatusCode, r.Body)
		}
	}
	return r, e
}

func TestAPIEvents(t *testing.T) {
	s := newStack(t)
	h, err := s.lambda.API(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		event    string
		status   int
		field    string // of a 400
		contains string // in the body
	}{
		{"healthz.json", 200, "", `"ok"`},
		{"list-topologies.json", 200, "", "["},
		{"create-topology.json", 202, "", "/straas/v1.0/actions/"},
		{"create-topology-bad-request.json", 400, "components[0].colour", ""},
		{"list-components.json", 200, "", "zookeeper"},
		{"show-action-missing.json", 404, "", ""},
		{"no-authorizer-context.json", 401, "", "authorizer"},
	}
	for _, tc := range tests {
		t.Run(strings.TrimSuffix(tc.event, ".json"), func(t *testing.T) {
			r, e := callAPI(t, h, event(t, "api/"+tc.event, nil))
			if r.StatusCode != tc.status {
				t.Fatalf("status: got %d, want %d: %s", r.StatusCode, tc.status, r.Body)
			}
			if tc.field != "" && !strings.Contains(e.Error.Field+" "+e.Error.Message, "colour") {
				t.Errorf("400 does not name the field %s: %+v", tc.field, e.Error)
			}
			if !strings.Contains(r.Body, tc.contains) {
				t.Errorf("body does not contain %q: %s", tc.contains, r.Body)
			}
		})
	}
	// The created topology is listed for its owner (the event's principal).
	r, _ := callAPI(t, h, event(t, "api/list-topologies.json", nil))
	if !strings.Contains(r.Body, "sample-1") {
		t.Errorf("created topology not listed: %s", r.Body)
	}
}

// The authorizer validates real Keystone tokens of the mock cloud; the API accepts the
// context it returns and nothing else: one decision, taken once.
func TestAuthorizerEvents(t *testing.T) {
	s := newStack(t)
	h, err := s.lambda.Authorizer(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	apiH, err := s.lambda.API(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := s.cloud.Token("admin", "admin", "admin")
	if err != nil {
		t.Fatal(err)
	}
	demo, err := s.cloud.Token("demo", "demo", "demo")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, event, token string
		unauthorized       bool
		admin              bool
		project            string
	}{
		{"admin", "request.json", admin, false, true, "admin"},
		{"member", "request.json", demo, false, false, "demo"},
		{"legacy header", "legacy-token-header.json", demo, false, false, "demo"},
		{"unknown token", "request.json", "not-a-keystone-token", true, false, ""},
		{"no token", "missing-token.json", admin, true, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := invoke(t, h, event(t, "authorizer/"+tc.event, map[string]string{"sample-token": tc.token}))
			if tc.unauthorized {
				if err == nil || err.Error() != "Unauthorized" {
					t.Fatalf("got %s, %v; want the error Unauthorized (API Gateway's 401)", out, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var resp events.APIGatewayCustomAuthorizerResponse
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatal(err)
			}
			st := resp.PolicyDocument.Statement
			if len(st) != 1 || st[0].Effect != "Allow" || len(st[0].Resource) != 1 ||
				st[0].Resource[0] != "arn:aws:execute-api:us-east-1:123456789012:abc123xyz/api/GET/straas/v1.0/topologies" {
				t.Fatalf("policy: got %+v, want Allow on the method ARN", resp.PolicyDocument)
			}
			p, err := deps.PrincipalFromAuthorizer(resp.Context, tc.token, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if p.Admin != tc.admin || p.ProjectName != tc.project || p.UserID != resp.PrincipalID {
				t.Errorf("principal: got %+v (id %s), want admin=%v project=%s", p, resp.PrincipalID, tc.admin, tc.project)
			}

			// The API takes exactly this decision for this token.
			var ev events.APIGatewayProxyRequest
			if err := json.Unmarshal(event(t, "api/list-topologies.json", map[string]string{"sample-token": tc.token}), &ev); err != nil {
				t.Fatal(err)
			}
			ev.RequestContext.Authorizer = resp.Context
			b, _ := json.Marshal(ev)
			if r, _ := callAPI(t, apiH, b); r.StatusCode != 200 {
				t.Errorf("API with the authorizer's context: got %d: %s", r.StatusCode, r.Body)
			}
			ev.Headers["X-Auth-Token"], ev.MultiValueHeaders["X-Auth-Token"] = admin+"x", []string{admin + "x"}
			b, _ = json.Marshal(ev)
			if r, _ := callAPI(t, apiH, b); r.StatusCode != 401 {
				t.Errorf("API with another token than the one authorized: got %d, want 401", r.StatusCode)
			}
		})
	}

	// Keystone out of reach: an authorizer failure (API Gateway's 5xx), never an allow or a 401.
	down := deps.NewLambdaWithLogger(s.config(t, map[string]string{deps.EnvKeystoneURL: "http://127.0.0.1:1/identity/v3"}), quiet())
	hd, _ := down.Authorizer(testCtx(t))
	out, err := invoke(t, hd, event(t, "authorizer/request.json", map[string]string{"sample-token": admin}))
	if err == nil || err.Error() == "Unauthorized" {
		t.Errorf("Keystone down: got %s, %v; want an error other than Unauthorized", out, err)
	}
}
