// Package lambda invokes every Lambda function's handler with its sample events
// (events/) in-process, through aws-lambda-go's handler machinery, against an AWS
// endpoint (moto started by awsendpoint, or AWS_ENDPOINT_URL), an in-process mock cloud
// (Keystone and Nova, served with httptest) and git remotes served by git http-backend.
package lambda

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/straas/straas/infra/bootstrap"
	"github.com/straas/straas/mockcn"
	"github.com/straas/straas/shared/deps"
	"github.com/straas/straas/test/awsendpoint"
)

func TestMain(m *testing.M) { os.Exit(awsendpoint.Main(m)) }

const root = "../.."

// stack is one isolated straas deployment on the endpoint: its own table, status queue,
// topic, state machines and secret, a mock cloud and git remotes.
type stack struct {
	aws      aws.Config
	env      map[string]string // the functions' environment
	cfg      deps.AWSConfig
	lambda   *deps.Lambda
	cloud    *mockcn.Cloud
	cloudURL string
	machines map[string]string // name -> ARN
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// functionARN is what the state machines name a stage function on the local stack.
func functionARN(fn string) string {
	return "arn:aws:lambda:us-east-1:123456789012:function:straas-" + fn
}

func newStack(t testing.TB) *stack {
	t.Helper()
	ctx := testCtx(t)
	s := &stack{aws: awsendpoint.Config(t)}
	prefix := awsendpoint.Name("lt") + "-"
	subs, err := deps.Substitutions(functionARN, func(m string) string {
		return "arn:aws:states:" + s.aws.Region + ":123456789012:stateMachine:" + prefix + m
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := bootstrap.Bootstrap(ctx, s.aws, bootstrap.Options{
		Table: prefix + "table", StatusQueue: prefix + "status", Topic: prefix + "alerts", Bucket: prefix + "blobs",
		StateMachinesDir: filepath.Join(root, "statemachines"), Substitutions: subs, MachinePrefix: prefix,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.machines = res.StateMachines
	// The functions start workflows by ARN, as deployed by template.yaml: <ARN prefix><name>.
	arnPrefix := "arn:aws:states:" + s.aws.Region + ":123456789012:stateMachine:" + prefix
	for name, arn := range s.machines {
		if arn != arnPrefix+name {
			t.Fatalf("state machine %s has ARN %s, not %s%s", name, arn, arnPrefix, name)
		}
	}

	// The mock cloud: Keystone (admin/admin) and Nova; no agents (the tests play them).
	s.cloud, err = mockcn.New(mockcn.Config{Root: t.TempDir(), AZs: []string{"az1"}, CNsPerAZ: 4, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.cloud.Handler())
	t.Cleanup(srv.Close)
	s.cloudURL = srv.URL
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.cloud.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	const gitToken = "git-secret-token"
	gitURL := gitServer(t, gitToken)
	secret, err := json.Marshal(deps.Secret{KeystonePassword: "admin", GitToken: gitToken})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := secretsmanager.NewFromConfig(s.aws).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(prefix + "credentials"), SecretString: aws.String(string(secret)),
	})
	if err != nil {
		t.Fatal(err)
	}
	s.env = map[string]string{
		deps.EnvTable: res.Table, deps.EnvStatusQueue: prefix + "status", deps.EnvAlertTopic: res.TopicARN, deps.EnvBucket: res.Bucket,
		deps.EnvMachinePrefix: prefix, deps.EnvMachineARNPrefix: arnPrefix,
		deps.EnvKeystoneURL: srv.URL + "/identity/v3", deps.EnvKeystoneUser: "admin", deps.EnvKeystoneProject: "admin",
		deps.EnvCloudZones: "az1",
		deps.EnvConfigRepo: gitURL + "/config.git", deps.EnvScriptsRepo: gitURL + "/scripts.git",
		deps.EnvGitDir:    t.TempDir(),
		deps.EnvSecretARN: aws.ToString(sec.ARN),
	}
	s.cfg = s.config(t, nil)
	s.lambda = deps.NewLambdaWithLogger(s.cfg, quiet())
	return s
}

// config parses the stack's environment with some variables changed.
func (s *stack) config(t testing.TB, change map[string]string) deps.AWSConfig {
	t.Helper()
	cfg, err := deps.ParseAWSConfig(func(k string) string {
		if v, ok := change[k]; ok {
			return v
		}
		return s.env[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// gitServer serves empty bare repos config.git and scripts.git with git http-backend,
// requiring token as the basic-auth password (the functions seed them on first use).
func gitServer(t testing.TB, token string) string {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	dir := t.TempDir()
	for _, name := range []string{"config.git", "scripts.git"} {
		p := filepath.Join(dir, name)
		for _, args := range [][]string{{"init", "--quiet", "--bare", p}, {"-C", p, "config", "http.receivepack", "true"}} {
			if out, err := exec.Command("git", args...).CombinedOutput(); err != nil {
				t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	}
	h := &cgi.Handler{
		Path:   filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"),
		Root:   "/git",
		Env:    []string{"GIT_PROJECT_ROOT=" + dir, "GIT_HTTP_EXPORT_ALL=1"},
		Stderr: io.Discard,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pw, ok := r.BasicAuth(); !ok || pw != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/git"
}

// event reads events/<name>, replacing each key of repl by its value.
func event(t testing.TB, name string, repl map[string]string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for k, v := range repl {
		s = strings.ReplaceAll(s, k, v)
	}
	return []byte(s)
}

// invoke runs handler on payload as the Lambda runtime does (JSON in, JSON out), with a
// context that ends with the invocation: nothing built lazily may keep it.
func invoke(t testing.TB, handler any, payload []byte) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return lambda.NewHandler(handler).Invoke(ctx, payload)
}
