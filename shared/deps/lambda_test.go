package deps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/straas/straas/shared/auth"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/stages"
	"github.com/straas/straas/shared/workflow"
	"github.com/straas/straas/statemachines"
)

func TestInvokeErrorNamesAsTheInterpreter(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&stages.SpawnFailed{Msg: "no host"}, "SpawnFailed"},
		{fmt.Errorf("spawn zk: %w", &stages.SpawnFailed{Msg: "no host"}), "SpawnFailed"},
		{workflow.Surface(fmt.Errorf("component kafka: %w", &stages.DependencyFailed{Msg: "zk failed"})), "DependencyFailed"},
		{&batch.NodeCommandFailed{Msg: "install failed on 1 of 3 nodes"}, "NodeCommandFailed"},
		{&stages.ServersRemain{Msg: "2 servers"}, "ServersRemain"},
		{errs.Transientf("dynamodb throttled"), "Transient"},
		{errs.Wrap(errs.Unavailable, "keystone", errors.New("refused")), "Transient"},
		{context.DeadlineExceeded, "Transient"},
		{errors.New("boom"), "TaskFailed"},
		{errs.Invalidf("input", "bad"), "TaskFailed"},
	}
	for _, tc := range tests {
		ie := InvokeError(tc.err)
		if ie.Type != tc.want || ie.Type != workflow.ErrorName(tc.err) {
			t.Errorf("%T %v: got %s, want %s (= workflow.ErrorName)", tc.err, tc.err, ie.Type, tc.want)
		}
		if ie.Message != tc.err.Error() {
			t.Errorf("message: got %q, want %q", ie.Message, tc.err.Error())
		}
	}
}

func TestPrincipalFromAuthorizer(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	p := auth.Principal{UserID: "u1", UserName: "demo", ProjectID: "p1", ProjectName: "demo", Roles: []string{"member"}, ExpiresAt: now.Add(time.Hour)}
	ctx := AuthorizerContext(p, "tok")
	tests := []struct {
		name  string
		ac    map[string]any
		token string
		at    time.Time
		ok    bool
	}{
		{"as authorized", ctx, "tok", now, true},
		{"another token", ctx, "tok2", now, false},
		{"expired since", ctx, "tok", now.Add(2 * time.Hour), false},
		{"no context", nil, "tok", now, false},
		{"no hash", map[string]any{CtxPrincipal: ctx[CtxPrincipal]}, "tok", now, false},
		{"malformed", map[string]any{CtxPrincipal: "{", CtxTokenSHA256: ctx[CtxTokenSHA256]}, "tok", now, false},
		{"no user", map[string]any{CtxPrincipal: `{"project_id":"p1","expires_at":"2099-01-01T00:00:00Z"}`, CtxTokenSHA256: ctx[CtxTokenSHA256]}, "tok", now, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PrincipalFromAuthorizer(tc.ac, tc.token, tc.at)
			if !tc.ok {
				if !errs.Is(err, errs.Unauthenticated) {
					t.Fatalf("got %+v, %v; want Unauthenticated", got, err)
				}
				return
			}
			if err != nil || got.UserID != p.UserID || got.ProjectID != p.ProjectID || !got.ExpiresAt.Equal(p.ExpiresAt) || got.Admin {
				t.Fatalf("got %+v, %v; want %+v", got, err, p)
			}
		})
	}
	// Authorizer context values are strings only: API Gateway allows no objects.
	for k, v := range ctx {
		if _, ok := v.(string); !ok {
			t.Errorf("context %s is %T, want string", k, v)
		}
	}
}

func TestGatewayValidatorNeedsAPIGatewayContext(t *testing.T) {
	p := auth.Principal{UserID: "u1", ExpiresAt: time.Now().Add(time.Hour)}
	if _, err := (GatewayValidator{}).Validate(context.Background(), "tok"); !errs.Is(err, errs.Unauthenticated) {
		t.Errorf("outside API Gateway: got %v, want Unauthenticated", err)
	}
	a := core.RequestAccessor{}
	req, err := a.EventToRequestWithContext(context.Background(), events.APIGatewayProxyRequest{
		HTTPMethod: "GET", Path: "/x", RequestContext: events.APIGatewayProxyRequestContext{Authorizer: AuthorizerContext(p, "tok")},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := (GatewayValidator{}).Validate(req.Context(), "tok")
	if err != nil || got.UserID != "u1" {
		t.Errorf("through API Gateway: got %+v, %v", got, err)
	}
}

type fakeValidator struct {
	p   auth.Principal
	err error
	got string
}

func (f *fakeValidator) Validate(_ context.Context, tok string) (auth.Principal, error) {
	f.got = tok
	return f.p, f.err
}

func TestAuthorizer(t *testing.T) {
	p := auth.Principal{UserID: "u1", ProjectName: "demo", ExpiresAt: time.Now().Add(time.Hour)}
	tests := []struct {
		name    string
		headers map[string]string
		multi   map[string][]string
		verr    error
		want    string // token seen; "" = not called
		wantErr string // "" = allowed
	}{
		{"header", map[string]string{"X-Auth-Token": "t1"}, nil, nil, "t1", ""},
		{"any case", map[string]string{"x-auth-token": "t1"}, nil, nil, "t1", ""},
		{"legacy", map[string]string{"token": "t2"}, nil, nil, "t2", ""},
		{"multi-value only", nil, map[string][]string{"X-Auth-Token": {"t3"}}, nil, "t3", ""},
		{"X-Auth-Token wins", map[string]string{"token": "old", "X-Auth-Token": "new"}, nil, nil, "new", ""},
		{"none", map[string]string{"Accept": "*/*"}, nil, nil, "", "Unauthorized"},
		{"invalid", map[string]string{"X-Auth-Token": "t1"}, nil, errs.E(errs.Unauthenticated, "", "expired"), "t1", "Unauthorized"},
		{"keystone down", map[string]string{"X-Auth-Token": "t1"}, nil, errs.E(errs.Unavailable, "", "refused"), "t1", "refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := &fakeValidator{p: p, err: tc.verr}
			resp, err := NewAuthorizer(v)(context.Background(), events.APIGatewayCustomAuthorizerRequestTypeRequest{
				MethodArn: "arn:m", Headers: tc.headers, MultiValueHeaders: tc.multi,
			})
			if v.got != tc.want {
				t.Errorf("validated %q, want %q", v.got, tc.want)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || (tc.wantErr != "Unauthorized" && err.Error() == "Unauthorized") {
					t.Fatalf("got %+v, %v; want error %q", resp, err, tc.wantErr)
				}
				return
			}
			if err != nil || resp.PrincipalID != "u1" || resp.PolicyDocument.Statement[0].Effect != "Allow" ||
				resp.PolicyDocument.Statement[0].Resource[0] != "arn:m" {
				t.Fatalf("got %+v, %v", resp, err)
			}
			if _, err := PrincipalFromAuthorizer(resp.Context, tc.want, time.Now()); err != nil {
				t.Errorf("context does not carry the principal: %v", err)
			}
		})
	}
}

func TestParseAWSConfig(t *testing.T) {
	base := map[string]string{
		EnvTable: "t", EnvKeystoneURL: "https://ks/v3", EnvConfigRepo: "https://git/c.git", EnvScriptsRepo: "https://git/s.git",
		EnvCloudZones: "az1, az2", EnvSecretARN: "arn:aws:secretsmanager:us-east-1:1:secret:x",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name  string
		env   map[string]string
		check func(t *testing.T, c AWSConfig)
		bad   []string // variables the error names
	}{
		{"defaults", base, func(t *testing.T, c AWSConfig) {
			if c.StatusQueue != "straas-status" || c.Git.Dir != DefaultGitDir || c.HeartbeatSeconds != 10 || c.StaleAfter != 3*time.Minute ||
				c.LeaseRenewal != time.Minute || c.Keystone.AdminProject != "admin" || c.Keystone.Domain != "Default" {
				t.Errorf("got %+v", c)
			}
			if len(c.Clouds) != 2 || c.Clouds["az2"].AuthURL != "https://ks/v3" || c.Clouds["az1"].Username != "straas" || c.Clouds["az1"].Password != "" {
				t.Errorf("clouds: got %+v", c.Clouds)
			}
		}, nil},
		{"other cloud", with(EnvCloudAuthURL, "https://nova-ks/v3", EnvCloudUser, "nova", EnvClouds, `{"az3": {"auth_url": "https://ks3/v3", "region": "R3"}}`),
			func(t *testing.T, c AWSConfig) {
				if c.Clouds["az1"].AuthURL != "https://nova-ks/v3" || c.Clouds["az1"].Username != "nova" ||
					c.Clouds["az3"].AuthURL != "https://ks3/v3" || c.Clouds["az3"].Region != "R3" || c.Clouds["az3"].Username != "nova" {
					t.Errorf("clouds: got %+v", c.Clouds)
				}
			}, nil},
		{"inline secret", with(EnvSecretARN, "", EnvSecret, `{"keystone_password":"x"}`), func(t *testing.T, c AWSConfig) {
			if c.SecretInline == "" {
				t.Error("inline secret not kept")
			}
		}, nil},
		{"missing", map[string]string{}, nil, []string{EnvTable, EnvKeystoneURL, EnvConfigRepo, EnvScriptsRepo, EnvCloudZones, EnvSecretARN}},
		{"malformed", with(EnvStageTimeout, "soon", EnvHeartbeatSeconds, "-1", EnvClouds, "{"), nil, []string{EnvStageTimeout, EnvHeartbeatSeconds, EnvClouds}},
		{"lease outlives staleness", with(EnvStaleAfter, "30s"), nil, []string{EnvStaleAfter}},
		// A renewal is due at the first heartbeat a lease period after the last one: the
		// threshold leaves a few intervals more (60 s + 3 × 10 s).
		{"staleness within a few heartbeats of the lease", with(EnvStaleAfter, "90s"), nil, []string{EnvStaleAfter, EnvHeartbeatSeconds}},
		{"staleness beyond a few heartbeats of the lease", with(EnvStaleAfter, "91s"), func(t *testing.T, c AWSConfig) {
			if c.StaleAfter != 91*time.Second || c.LeaseRenewal != time.Minute {
				t.Errorf("got stale after %v, lease %v", c.StaleAfter, c.LeaseRenewal)
			}
		}, nil},
		{"longer heartbeats need a longer threshold", with(EnvHeartbeatSeconds, "60"), nil, []string{EnvStaleAfter}},
		{"machines by listing", base, func(t *testing.T, c AWSConfig) {
			if c.MachineARNs() != nil {
				t.Errorf("no ARN prefix: got %v, want nil (list the machines)", c.MachineARNs())
			}
		}, nil},
		{"machines by ARN", with(EnvMachinePrefix, "prod-", EnvMachineARNPrefix, "arn:aws:states:eu-west-1:123456789012:stateMachine:prod-"),
			func(t *testing.T, c AWSConfig) {
				m := c.MachineARNs()
				if len(m) != len(statemachines.Names()) || m["config_change"] != "arn:aws:states:eu-west-1:123456789012:stateMachine:prod-config_change" {
					t.Errorf("got %v, want every machine's ARN", m)
				}
			}, nil},
		{"machine ARNs of another prefix", with(EnvMachinePrefix, "prod-", EnvMachineARNPrefix, "arn:aws:states:eu-west-1:123456789012:stateMachine:dev-"),
			nil, []string{EnvMachineARNPrefix}},
		{"machine ARNs that are not", with(EnvMachinePrefix, "prod-", EnvMachineARNPrefix, "prod-"), nil, []string{EnvMachineARNPrefix}},
		{"external CMDB", with(EnvCMDBURL, "https://cmdb.example.com/api"), func(t *testing.T, c AWSConfig) {
			if c.CMDBURL != "https://cmdb.example.com/api" {
				t.Errorf("CMDB URL: got %q", c.CMDBURL)
			}
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseAWSConfig(func(k string) string { return tc.env[k] })
			if tc.bad == nil {
				if err != nil {
					t.Fatal(err)
				}
				tc.check(t, c)
				return
			}
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("got %v, want Invalid", err)
			}
			for _, v := range tc.bad {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("error does not name %s: %v", v, err)
				}
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret{KeystonePassword: "hunter2", GitToken: "ghp_x", CloudPasswords: map[string]string{"az1": "pw"}}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(f, s); strings.Contains(out, "hunter2") || strings.Contains(out, "ghp_x") || strings.Contains(out, "pw}") {
			t.Errorf("%s shows a credential: %s", f, out)
		}
	}
}

func TestSQSBody(t *testing.T) {
	b64 := "base64"
	tests := []struct {
		name string
		m    events.SQSMessage
		want string
		bad  bool
	}{
		{"plain", events.SQSMessage{Body: `{"v":1}`}, `{"v":1}`, false},
		{"encoded", events.SQSMessage{Body: "AAEC", MessageAttributes: map[string]events.SQSMessageAttribute{"straas-enc": {StringValue: &b64, DataType: "String"}}}, "\x00\x01\x02", false},
		{"empty", events.SQSMessage{Body: "=", MessageAttributes: map[string]events.SQSMessageAttribute{"straas-enc": {StringValue: &b64}}}, "", false},
		{"broken", events.SQSMessage{Body: "!!", MessageAttributes: map[string]events.SQSMessageAttribute{"straas-enc": {StringValue: &b64}}}, "", true},
	}
	for _, tc := range tests {
		got, err := sqsBody(&tc.m)
		if (err != nil) != tc.bad || (!tc.bad && string(got) != tc.want) {
			t.Errorf("%s: got %q, %v", tc.name, got, err)
		}
	}
}

func TestMachineOfSubstitution(t *testing.T) {
	for k, want := range map[string]string{"ConfigChangeStateMachineArn": "config_change", "CreationStateMachineArn": "creation", "SpawnFunctionArn": "", "StateMachineArn": ""} {
		got, ok := MachineOfSubstitution(k)
		if got != want || ok != (want != "") {
			t.Errorf("%s: got %q, %v; want %q", k, got, ok, want)
		}
	}
	subs, err := Substitutions(func(f string) string { return "fn:" + f }, func(m string) string { return "sm:" + m })
	if err != nil {
		t.Fatal(err)
	}
	if subs["SpawnFunctionArn"] != "fn:Spawn" {
		t.Errorf("got %v", subs)
	}
}
