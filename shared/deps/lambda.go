package deps

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/alert"
	"github.com/straas/straas/shared/alert/snsalert"
	"github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/auth"
	"github.com/straas/straas/shared/awsconf"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/checker"
	"github.com/straas/straas/shared/cloud"
	"github.com/straas/straas/shared/conductor"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/gitrepo"
	"github.com/straas/straas/shared/jobs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/queue/sqsq"
	"github.com/straas/straas/shared/stages"
	"github.com/straas/straas/shared/store/dynamo"
	"github.com/straas/straas/shared/workflow"
	"github.com/straas/straas/shared/workflow/sfn"
)

// Lambda builds the handlers of the Lambda functions (functions/*/main.go) from an
// AWSConfig: the same api.Server, stages.Env, conductor.Conductor and checker.Checker as
// `straas up`, on the AWS adapters. Building a handler sends no request. What needs the
// network — the credentials secret, Keystone's service token, the git mirrors, the
// clouds' tokens — is fetched on the first invocation that uses it, and kept for the
// life of the execution environment; a failure is retried by the next invocation.
type Lambda struct {
	cfg AWSConfig
	log *slog.Logger

	sdk    lazy[aws.Config]
	secret lazy[Secret]
	shared lazy[*awsPorts]
	repos  *awsRepos
	clouds *awsClouds
}

// awsPorts are the adapters every function but the authorizer uses.
type awsPorts struct {
	store    *dynamo.Store
	queue    *sqsq.Queue
	workflow *sfn.Engine
	db       *db.DB
	batches  *batch.Service
}

// NewLambda returns a builder over cfg, logging as JSON to stdout (CloudWatch Logs).
func NewLambda(cfg AWSConfig) *Lambda {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	return NewLambdaWithLogger(cfg, slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level})))
}

// NewLambdaWithLogger returns a builder over cfg logging to log.
func NewLambdaWithLogger(cfg AWSConfig, log *slog.Logger) *Lambda {
	l := &Lambda{cfg: cfg, log: log}
	l.repos = &awsRepos{l: l}
	zones := make(map[string]cloud.Options, len(cfg.Clouds))
	for z, o := range cfg.Clouds {
		o.Password = "" // only ever from the secret
		zones[z] = o
	}
	l.clouds = &awsClouds{l: l, zones: zones}
	return l
}

// LambdaFromEnv returns a builder over the environment's configuration.
func LambdaFromEnv() (*Lambda, error) {
	cfg, err := AWSConfigFromEnv()
	if err != nil {
		return nil, err
	}
	return NewLambda(cfg), nil
}

// Config returns the configuration the builder uses.
func (l *Lambda) Config() AWSConfig { return l.cfg }

// Build makes a function's handler from the environment for its main, or logs why it
// cannot and exits: Lambda reports a failed init and starts a new environment for the
// next invocation.
//
//	func main() { lambda.Start(deps.Build((*deps.Lambda).API)) }
func Build[H any](build func(*Lambda, context.Context) (H, error)) H {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := LambdaFromEnv()
	if err == nil {
		var h H
		if h, err = build(l, ctx); err == nil {
			return h
		}
	}
	slog.Error("straas: cannot build the function's handler", "err", err)
	os.Exit(1)
	var zero H
	return zero
}

// StageNamed is Build's argument for the stage function name.
func StageNamed(name string) func(*Lambda, context.Context) (StageHandler, error) {
	return func(l *Lambda, ctx context.Context) (StageHandler, error) { return l.Stage(ctx, name) }
}

// --- handlers ---------------------------------------------------------------------

// APIHandler serves API Gateway REST API (v1) proxy events.
type APIHandler func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)

// API returns the REST API: api.Server's handler behind aws-lambda-go-api-proxy, taking
// the caller from the authorizer's decision (GatewayValidator).
func (l *Lambda) API(ctx context.Context) (APIHandler, error) {
	srv, err := l.APIServer(ctx)
	if err != nil {
		return nil, err
	}
	return httpadapter.New(srv.Handler()).ProxyWithContext, nil
}

// APIServer returns the api.Server the API function serves.
func (l *Lambda) APIServer(ctx context.Context) (*api.Server, error) {
	p, err := l.ports(ctx)
	if err != nil {
		return nil, err
	}
	env, err := l.Stages(ctx)
	if err != nil {
		return nil, err
	}
	lc, err := l.Lifecycle(ctx)
	if err != nil {
		return nil, err
	}
	return &api.Server{
		DB: p.db, Launcher: &jobs.Launcher{DB: p.db, Workflow: p.workflow, Log: l.log}, Workflow: p.workflow,
		Batches: p.batches, Auth: GatewayValidator{}, Catalog: awsCatalog{clouds: l.clouds, repos: l.repos, env: env},
		Log: l.log.With("component", "api"), Lifecycle: lc,
	}, nil
}

// Authorizer returns the API Gateway authorizer: Keystone validation (auth.Keystone,
// with its service user's password from the secret) of the request's token.
func (l *Lambda) Authorizer(context.Context) (AuthorizerHandler, error) {
	return NewAuthorizer(l.Keystone()), nil
}

// Keystone returns the token validator of the authorizer. It authenticates its service
// user on first use.
func (l *Lambda) Keystone() auth.Validator { return &lazyKeystone{l: l} }

// StageHandler is a stage function on Lambda: JSON in, JSON out.
type StageHandler func(context.Context, json.RawMessage) (json.RawMessage, error)

// Stage returns the stage function registered as name in (*stages.Env).Functions. Its
// errors reach Step Functions under workflow.ErrorName, as the embedded interpreter
// names them (InvokeError).
func (l *Lambda) Stage(ctx context.Context, name string) (StageHandler, error) {
	env, err := l.Stages(ctx)
	if err != nil {
		return nil, err
	}
	f, ok := env.Functions()[name]
	if !ok {
		return nil, errs.Invalidf("stage", "no stage function %q", name)
	}
	log := l.log.With("stage", name)
	return func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
		out, err := f(ctx, in)
		if err != nil {
			ie := InvokeError(err)
			log.Warn("stage failed", "error", ie.Type, "cause", ie.Message)
			return nil, ie
		}
		return out, nil
	}, nil
}

// Stages returns the stage functions' environment.
func (l *Lambda) Stages(ctx context.Context) (*stages.Env, error) {
	p, err := l.ports(ctx)
	if err != nil {
		return nil, err
	}
	return stages.NewEnv(stages.Env{DB: p.db, Batches: p.batches, Queue: p.queue, Workflow: p.workflow,
		Clouds: l.clouds, Repos: l.repos, Log: l.log.With("component", "stages"),
		Settings: stages.Settings{StatusQueue: l.cfg.StatusQueue, HeartbeatSeconds: l.cfg.HeartbeatSeconds,
			LeaseSeconds: int(l.cfg.LeaseRenewal / time.Second),
			StageTimeout: l.cfg.StageTimeout, SpawnTimeout: l.cfg.SpawnTimeout}}), nil
}

// InvokeError is err as a Lambda function reports it: the runtime sends a
// messages.InvokeResponse_Error as it is, so Step Functions' Retry and Catch match
// workflow.ErrorName(err) — the name the embedded interpreter uses — rather than the Go
// type the error happens to have after wrapping.
func InvokeError(err error) messages.InvokeResponse_Error {
	return messages.InvokeResponse_Error{Type: workflow.ErrorName(err), Message: err.Error()}
}

// ConductorHandler consumes a batch of the status queue's messages.
type ConductorHandler func(context.Context, events.SQSEvent) (events.SQSEventResponse, error)

// Conductor returns the status queue's consumer. Messages are handled concurrently; one
// whose handling fails is reported in BatchItemFailures (the event source mapping must
// have ReportBatchItemFailures) and redelivered alone; a malformed one is dropped.
func (l *Lambda) Conductor(ctx context.Context) (ConductorHandler, error) {
	p, err := l.ports(ctx)
	if err != nil {
		return nil, err
	}
	log := l.log.With("component", "conductor")
	c := &conductor.Conductor{DB: p.db, Batches: p.batches, Queue: p.queue, Log: log, StatusQueue: l.cfg.StatusQueue,
		LeaseRenewal: l.cfg.LeaseRenewal, StaleAfter: l.cfg.StaleAfter}
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		failed := make([]bool, len(ev.Records))
		var wg sync.WaitGroup
		sem := make(chan struct{}, 10)
		for i := range ev.Records {
			rec := &ev.Records[i]
			body, err := sqsBody(rec)
			if err != nil {
				log.Warn("drop undecodable status message", "message", rec.MessageId, "err", err)
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := c.Handle(ctx, body); err != nil {
					log.Warn("handle status message (will be redelivered)", "message", rec.MessageId, "err", err)
					failed[i] = true
				}
			}()
		}
		wg.Wait()
		var resp events.SQSEventResponse
		for i, f := range failed {
			if f {
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
			}
		}
		return resp, nil
	}, nil
}

// sqsBody undoes the sqsq adapter's encoding of bodies SQS cannot carry as they are
// (base64, marked by a message attribute; see sqsq.encode).
func sqsBody(m *events.SQSMessage) ([]byte, error) {
	const encAttr, encBase64 = "straas-enc", "base64" // sqsq's encAttr and encBase64
	a, ok := m.MessageAttributes[encAttr]
	if !ok || a.StringValue == nil || *a.StringValue != encBase64 {
		return []byte(m.Body), nil
	}
	if m.Body == "=" {
		return []byte{}, nil
	}
	b, err := base64.StdEncoding.DecodeString(m.Body)
	if err != nil {
		return nil, fmt.Errorf("bad base64 body: %w", err)
	}
	return b, nil
}

// CheckerHandler runs the periodic checks once per scheduled event.
type CheckerHandler func(context.Context, events.EventBridgeEvent) (checker.Report, error)

// Checker returns the scheduled checks, raising alerts on the SNS topic (or in the log
// when no topic is configured).
func (l *Lambda) Checker(ctx context.Context) (CheckerHandler, error) {
	p, err := l.ports(ctx)
	if err != nil {
		return nil, err
	}
	log := l.log.With("component", "checker")
	var alerts alert.Publisher = logPublisher{l.log.With("component", "alerts")}
	if l.cfg.AlertTopicARN != "" {
		cfg, err := l.awsConfig(ctx)
		if err != nil {
			return nil, err
		}
		alerts = snsalert.New(cfg, l.cfg.AlertTopicARN)
	}
	c := &checker.Checker{DB: p.db, Batches: p.batches, Launcher: &jobs.Launcher{DB: p.db, Workflow: p.workflow, Log: log},
		Alerts: alerts, Log: log, StaleAfter: l.cfg.StaleAfter}
	return func(ctx context.Context, _ events.EventBridgeEvent) (checker.Report, error) {
		r, err := c.TickReport(ctx)
		if err != nil {
			return r, err
		}
		log.Info("checked", "batches", r.Batches, "stale", r.Stale, "launched", r.Launched)
		return r, nil
	}, nil
}

// --- adapters, built once ---------------------------------------------------------

func (l *Lambda) awsConfig(ctx context.Context) (aws.Config, error) {
	return l.sdk.get(func() (aws.Config, error) { return awsconf.Load(ctx) })
}

func (l *Lambda) ports(ctx context.Context) (*awsPorts, error) {
	return l.shared.get(func() (*awsPorts, error) {
		cfg, err := l.awsConfig(ctx)
		if err != nil {
			return nil, err
		}
		p := &awsPorts{
			store:    dynamo.New(cfg, l.cfg.Table, dynamo.Options{}),
			queue:    sqsq.New(cfg, sqsq.Options{}),
			workflow: sfn.New(cfg, sfn.Options{Prefix: l.cfg.MachinePrefix, Machines: l.cfg.MachineARNs()}),
		}
		p.db = db.New(p.store, nil)
		p.batches = &batch.Service{DB: p.db, Queue: p.queue, Workflow: p.workflow, Log: l.log.With("component", "batch")}
		return p, nil
	})
}

// Secret returns the credentials, reading the secret on first use.
func (l *Lambda) Secret(ctx context.Context) (Secret, error) {
	return l.secret.get(func() (Secret, error) {
		raw, what := l.cfg.SecretInline, EnvSecret
		if l.cfg.SecretARN != "" {
			what = "secret " + l.cfg.SecretARN
			cfg, err := l.awsConfig(ctx)
			if err != nil {
				return Secret{}, err
			}
			out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(l.cfg.SecretARN)})
			if err != nil {
				return Secret{}, errs.Wrap(errs.Unavailable, "read "+what, err)
			}
			raw = aws.ToString(out.SecretString)
		}
		var s Secret
		// The decoder's message could quote the secret: say only what is wrong.
		if json.Unmarshal([]byte(raw), &s) != nil {
			return Secret{}, errs.E(errs.Invalid, "read "+what, `not a JSON object {"keystone_password", "git_token", "cloud_passwords"}`)
		}
		return s, nil
	})
}

// lazy builds a value on its first successful use.
type lazy[T any] struct {
	mu sync.Mutex
	ok bool
	v  T
}

func (z *lazy[T]) get(build func() (T, error)) (T, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.ok {
		return z.v, nil
	}
	v, err := build()
	if err != nil {
		var zero T
		return zero, err
	}
	z.v, z.ok = v, true
	return v, nil
}

// lazyKeystone authenticates the service user on the first validation.
type lazyKeystone struct {
	l *Lambda
	k lazy[*auth.Keystone]
}

func (z *lazyKeystone) Validate(ctx context.Context, token string) (auth.Principal, error) {
	k, err := z.k.get(func() (*auth.Keystone, error) {
		s, err := z.l.Secret(ctx)
		if err != nil {
			return nil, err
		}
		kc := z.l.cfg.Keystone
		return auth.NewKeystone(ctx, auth.KeystoneOptions{AuthURL: kc.URL, Username: kc.Username, Password: s.KeystonePassword,
			Project: kc.Project, Domain: kc.Domain, AdminProject: kc.AdminProject})
	})
	if err != nil {
		return auth.Principal{}, err
	}
	return k.Validate(ctx, token)
}

// awsClouds are the zones' clouds, connected with passwords from the secret.
type awsClouds struct {
	l     *Lambda
	zones map[string]cloud.Options // without passwords
	c     lazy[*Clouds]
}

var _ stages.Clouds = (*awsClouds)(nil)

func (a *awsClouds) get(ctx context.Context) (*Clouds, error) {
	return a.c.get(func() (*Clouds, error) {
		s, err := a.l.Secret(ctx)
		if err != nil {
			return nil, err
		}
		m := make(map[string]cloud.Options, len(a.zones))
		for z, o := range a.zones {
			o.Password = s.KeystonePassword
			if pw, ok := s.CloudPasswords[z]; ok {
				o.Password = pw
			}
			m[z] = o
		}
		return NewClouds(m), nil
	})
}

func (a *awsClouds) Zone(ctx context.Context, az string) (stages.Compute, error) {
	if _, ok := a.zones[az]; !ok {
		return nil, errs.Invalidf("availability_zone", "no cloud is configured for availability zone %q", az)
	}
	c, err := a.get(ctx)
	if err != nil {
		return nil, err
	}
	return c.Zone(ctx, az)
}

func (a *awsClouds) Zones(context.Context) ([]string, error) {
	out := make([]string, 0, len(a.zones))
	for z := range a.zones {
		out = append(out, z)
	}
	sort.Strings(out)
	return out, nil
}

func (a *awsClouds) Flavors(ctx context.Context, az string) ([]cloud.Flavor, error) {
	if _, ok := a.zones[az]; !ok {
		return nil, errs.Invalidf("availability_zone", "no cloud is configured for availability zone %q", az)
	}
	c, err := a.get(ctx)
	if err != nil {
		return nil, err
	}
	return c.Flavors(ctx, az)
}

// awsRepos are the remote config and script repos, mirrored under the git dir on first
// use (gitrepo remote mode: reads fetch when stale, writes push).
type awsRepos struct {
	l *Lambda
	r lazy[*gitrepo.Repos]
}

var (
	_ stages.Repos       = (*awsRepos)(nil)
	_ stages.RestartKeys = (*awsRepos)(nil)
	_ stages.ScriptInfo  = (*awsRepos)(nil)
)

func (a *awsRepos) get(ctx context.Context) (gitRepos, error) {
	r, err := a.raw(ctx)
	return gitRepos{r}, err
}

func (a *awsRepos) raw(ctx context.Context) (*gitrepo.Repos, error) {
	return a.r.get(func() (*gitrepo.Repos, error) {
		s, err := a.l.Secret(ctx)
		if err != nil {
			return nil, err
		}
		g := a.l.cfg.Git
		return gitrepo.Open(ctx, gitrepo.Options{Dir: g.Dir, Logger: a.l.log.With("component", "git"),
			Remote: &gitrepo.RemoteOptions{ConfigURL: g.ConfigURL, ScriptsURL: g.ScriptsURL, Token: s.GitToken, Username: g.Username}})
	})
}

func (a *awsRepos) ComponentType(ctx context.Context, typ string) (model.ComponentType, error) {
	g, err := a.get(ctx)
	if err != nil {
		return model.ComponentType{}, err
	}
	return g.ComponentType(ctx, typ)
}

func (a *awsRepos) Layout(ctx context.Context, c *model.Component) (model.Layout, error) {
	g, err := a.get(ctx)
	if err != nil {
		return nil, err
	}
	return g.Layout(ctx, c)
}

func (a *awsRepos) Package(ctx context.Context, typ, role, version string) (agentproto.Package, error) {
	g, err := a.get(ctx)
	if err != nil {
		return agentproto.Package{}, err
	}
	return g.Package(ctx, typ, role, version)
}

func (a *awsRepos) ScriptsRef(ctx context.Context) (string, error) {
	g, err := a.get(ctx)
	if err != nil {
		return "", err
	}
	return g.ScriptsRef(ctx)
}

func (a *awsRepos) CreateBranch(ctx context.Context, branch string) error {
	g, err := a.get(ctx)
	if err != nil {
		return err
	}
	return g.CreateBranch(ctx, branch)
}

func (a *awsRepos) DeleteBranch(ctx context.Context, branch string) error {
	g, err := a.get(ctx)
	if err != nil {
		return err
	}
	return g.DeleteBranch(ctx, branch)
}

func (a *awsRepos) PreConfig(ctx context.Context, in stages.PreConfigInput) (stages.PreConfigOutput, error) {
	g, err := a.get(ctx)
	if err != nil {
		return stages.PreConfigOutput{}, err
	}
	return g.PreConfig(ctx, in)
}

func (a *awsRepos) RestartKeys(ctx context.Context, ref, typ, version string) (map[string]bool, error) {
	g, err := a.get(ctx)
	if err != nil {
		return nil, err
	}
	return g.RestartKeys(ctx, ref, typ, version)
}

func (a *awsRepos) TypeInfo(ctx context.Context, typ string) (stages.TypeInfo, error) {
	g, err := a.get(ctx)
	if err != nil {
		return stages.TypeInfo{}, err
	}
	return g.TypeInfo(ctx, typ)
}

func (a *awsRepos) DrainCommand(ctx context.Context, in stages.PreConfigInput, n model.Node) (stages.Operation, bool, error) {
	g, err := a.get(ctx)
	if err != nil {
		return stages.Operation{}, false, err
	}
	return g.DrainCommand(ctx, in, n)
}

// GuestCommands lists the script repo's guest commands by group.
func (a *awsRepos) GuestCommands(ctx context.Context) (map[string][]string, error) {
	r, err := a.raw(ctx)
	if err != nil {
		return nil, err
	}
	return r.GuestCommands(ctx)
}

// awsCatalog is the API's catalog on AWS: component types from the remote script repo,
// zones from the configuration, flavors from the zones' clouds; and, as embedded mode's,
// the backends of the configuration routes (the repos, the change planner).
type awsCatalog struct {
	clouds *awsClouds
	repos  *awsRepos
	env    *stages.Env
}

var (
	_ api.Catalog       = awsCatalog{}
	_ api.ConfigRepos   = awsCatalog{}
	_ api.ConfigPlanner = awsCatalog{}
)

func (c awsCatalog) Read(ctx context.Context, ref, p string) (gitrepo.Entry, error) {
	r, err := c.repos.raw(ctx)
	if err != nil {
		return gitrepo.Entry{}, err
	}
	return r.Read(ctx, ref, p)
}

func (c awsCatalog) WriteFile(ctx context.Context, branch, p string, content []byte, message string, author gitrepo.Author) (string, error) {
	r, err := c.repos.raw(ctx)
	if err != nil {
		return "", err
	}
	return r.WriteFile(ctx, branch, p, content, message, author)
}

func (c awsCatalog) AuthorizeWrite(ctx context.Context, a gitrepo.Access, branch, p string, content []byte) error {
	r, err := c.repos.raw(ctx)
	if err != nil {
		return err
	}
	return r.AuthorizeWrite(ctx, a, branch, p, content)
}

func (c awsCatalog) Tags(ctx context.Context, branch string) ([]gitrepo.Tag, error) {
	r, err := c.repos.raw(ctx)
	if err != nil {
		return nil, err
	}
	return r.Tags(ctx, branch)
}

func (c awsCatalog) Tag(ctx context.Context, branch, tag string) (gitrepo.Tag, error) {
	r, err := c.repos.raw(ctx)
	if err != nil {
		return gitrepo.Tag{}, err
	}
	return r.Tag(ctx, branch, tag)
}

func (c awsCatalog) CreateTag(ctx context.Context, branch, tag, role, message string, author gitrepo.Author) (gitrepo.Tag, error) {
	r, err := c.repos.raw(ctx)
	if err != nil {
		return gitrepo.Tag{}, err
	}
	return r.CreateTag(ctx, branch, tag, role, message, author)
}

func (c awsCatalog) DeleteTag(ctx context.Context, branch, tag string) error {
	r, err := c.repos.raw(ctx)
	if err != nil {
		return err
	}
	return r.DeleteTag(ctx, branch, tag)
}

func (c awsCatalog) ReadScripts(ctx context.Context, ref, p string) (gitrepo.Entry, error) {
	r, err := c.repos.raw(ctx)
	if err != nil {
		return gitrepo.Entry{}, err
	}
	return r.Scripts.Read(ctx, ref, p)
}

func (c awsCatalog) CommitScripts(ctx context.Context, branch string, changes []gitrepo.Change, message string, author gitrepo.Author) (string, error) {
	r, err := c.repos.raw(ctx)
	if err != nil {
		return "", err
	}
	return r.Scripts.Commit(ctx, branch, changes, message, author)
}

func (c awsCatalog) Verify(ctx context.Context) error {
	r, err := c.repos.raw(ctx)
	if err != nil {
		return err
	}
	return r.Verify(ctx)
}

func (c awsCatalog) PlanConfigChange(ctx context.Context, in stages.ConfigChangeIn, opt stages.PlanOptions) (stages.ConfigPlan, error) {
	return c.env.PlanConfigChange(ctx, in, opt)
}

func (c awsCatalog) ComponentTypes(ctx context.Context) ([]model.ComponentType, error) {
	g, err := c.repos.get(ctx)
	if err != nil {
		return nil, err
	}
	return g.r.ComponentTypes(ctx)
}

func (c awsCatalog) Flavors(ctx context.Context, az string) ([]cloud.Flavor, error) {
	return c.clouds.Flavors(ctx, az)
}

func (c awsCatalog) Zones(ctx context.Context) ([]string, error) { return c.clouds.Zones(ctx) }

// logPublisher logs alerts: the checker's publisher when no topic is configured.
type logPublisher struct{ log *slog.Logger }

func (p logPublisher) Publish(_ context.Context, a alert.Alert) error {
	p.log.Warn("alert", "key", a.Key, "level", a.Level, "title", a.Title, "message", a.Message)
	return nil
}
