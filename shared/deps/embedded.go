// Package deps is the one place that picks adapters: embedded ones for `straas up`
// (bbolt store, durable local queues, the ASL interpreter, the mock cloud, local git
// repos) and AWS ones from the environment for Lambda.
package deps

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/straas/straas/mockcn"
	"github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/asl"
	"github.com/straas/straas/shared/auth"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/checker"
	"github.com/straas/straas/shared/cloud"
	"github.com/straas/straas/shared/conductor"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/gitrepo"
	"github.com/straas/straas/shared/jobs"
	"github.com/straas/straas/shared/metrics"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/boltq"
	"github.com/straas/straas/shared/stages"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/bolt"
	"github.com/straas/straas/shared/workflow"
	"github.com/straas/straas/statemachines"
)

// Config configures the embedded control plane.
type Config struct {
	DataDir          string        // everything durable lives here (default ./.straas)
	Listen           string        // API address (default 127.0.0.1:8080)
	CloudListen      string        // mock cloud address (default 127.0.0.1:8090); "" with NoMockCloud
	CNs              int           // compute nodes per availability zone (default 8)
	AZs              []string      // availability zones of the mock cloud (default az1)
	HeartbeatSeconds int           // agents' heartbeat interval (default 10)
	StageTimeout     time.Duration // how long a stage waits for its nodes (default 15 min)
	StaleAfter       time.Duration // silence after which a node is UNREACHABLE (default 3 heartbeats)
	CheckInterval    time.Duration // checker period (default 1 s)
	AlertWebhooks    []string      // URLs alerts are POSTed to
	BootLatency      *mockcn.Latency
	TokenTTL         time.Duration // lifetime of the mock Keystone's tokens (default 1 h)
	APIRateLimit     api.RateLimit // per-project API rate limit (default none)
	Logger           *slog.Logger

	// Zones served by other clouds than the in-process mock (see zones.go); a zone
	// here wins over the mock zone of the same name.
	Zones map[string]cloud.Options
}

func (c *Config) defaults() {
	if c.DataDir == "" {
		c.DataDir = ".straas"
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.CloudListen == "" {
		c.CloudListen = "127.0.0.1:8090"
	}
	if c.CNs == 0 {
		c.CNs = 8
	}
	if len(c.AZs) == 0 {
		c.AZs = []string{"az1"}
	}
	if c.HeartbeatSeconds == 0 {
		c.HeartbeatSeconds = 10
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = 3 * time.Duration(c.HeartbeatSeconds) * time.Second
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Embedded is the whole control plane in one process.
type Embedded struct {
	cfg      Config
	log      *slog.Logger
	Store    *bolt.Store
	Queue    *boltq.Queue
	Engine   *asl.Engine
	Cloud    *mockcn.Cloud
	Repos    *gitrepo.Repos
	DB       *db.DB
	Metrics  *metrics.Metrics
	Stages   *stages.Env
	Checker  *checker.Checker
	APIURL   string
	CloudURL string

	apiLn, cloudLn net.Listener
	push           *FleetPush
	ready          chan struct{}
	closeOnce      sync.Once
}

// New opens the embedded stores, the repos and the mock cloud, and binds both
// listeners (so that their URLs are known); Run serves.
func New(ctx context.Context, cfg Config) (*Embedded, error) {
	cfg.defaults()
	e := &Embedded{cfg: cfg, log: cfg.Logger, ready: make(chan struct{}), Metrics: metrics.New()}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			e.Close()
		}
	}()
	var err error
	if e.Store, err = bolt.Open(filepath.Join(cfg.DataDir, "store.db")); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if e.Queue, err = boltq.Open(filepath.Join(cfg.DataDir, "queue.db"), boltq.WithLogger(cfg.Logger)); err != nil {
		return nil, fmt.Errorf("open queues: %w", err)
	}
	if e.cloudLn, err = net.Listen("tcp", cfg.CloudListen); err != nil {
		return nil, fmt.Errorf("mock cloud listen: %w", err)
	}
	e.CloudURL = "http://" + e.cloudLn.Addr().String()
	if e.apiLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("API listen: %w", err)
	}
	e.APIURL = "http://" + e.apiLn.Addr().String()

	if e.Repos, err = gitrepo.Open(ctx, gitrepo.Options{Dir: filepath.Join(cfg.DataDir, "git"), Logger: cfg.Logger.With("component", "git")}); err != nil {
		return nil, fmt.Errorf("git repos: %w", err)
	}
	e.push = NewFleetPush(e.Queue, 0)
	mc := mockcn.Config{Root: filepath.Join(cfg.DataDir, "cloud"), AZs: cfg.AZs, CNsPerAZ: cfg.CNs, Queue: e.push.Queue(),
		Logger: cfg.Logger.With("component", "mockcn"), PublicURL: e.CloudURL, Scripts: e.Repos.ReadScript}
	e.push.Configure(&mc.Fleet)
	if cfg.BootLatency != nil {
		mc.BootLatency = *cfg.BootLatency
	}
	mc.TokenTTL = cfg.TokenTTL
	if e.Cloud, err = mockcn.New(mc); err != nil {
		return nil, fmt.Errorf("mock cloud: %w", err)
	}
	e.push.Bind(e.Cloud.Fleet())
	ok = true
	return e, nil
}

// Ready is closed once the API serves.
func (e *Embedded) Ready() <-chan struct{} { return e.ready }

// Run serves the mock cloud and the API and runs the interpreter, conductor and checker
// until ctx ends, then shuts everything down.
func (e *Embedded) Run(ctx context.Context) error {
	defer e.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	goRun := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}

	cloudSrv := &http.Server{Handler: e.Cloud.Handler(), ReadHeaderTimeout: 10 * time.Second}
	goRun("mock cloud", func(context.Context) error { return serve(cloudSrv, e.cloudLn) })
	goRun("mock fleet", e.Cloud.Run)
	goRun("mock fleet push", e.push.Run)

	authURL := e.CloudURL + "/identity/v3"
	admin := cloud.Options{AuthURL: authURL, Username: "admin", Password: "admin", Project: "admin"}
	validator, err := auth.NewKeystone(ctx, auth.KeystoneOptions{AuthURL: authURL, Username: "admin", Password: "admin", Project: "admin"})
	if err != nil {
		cancel()
		wg.Wait()
		return err
	}
	clouds := NewClouds(zoneMap(admin, e.cfg.AZs, e.cfg.Zones))

	e.DB = db.New(e.Store, nil)
	var eng *asl.Engine
	lazy := &lazyEngine{}
	batches := &batch.Service{DB: e.DB, Queue: e.Queue, Workflow: lazy, Log: e.log}
	e.Stages = stages.NewEnv(stages.Env{DB: e.DB, Batches: batches, Queue: e.Queue, Workflow: lazy, Clouds: clouds,
		Repos: gitRepos{e.Repos}, Log: e.log.With("component", "stages"),
		Settings: stages.Settings{HeartbeatSeconds: e.cfg.HeartbeatSeconds, StageTimeout: e.cfg.StageTimeout}})
	eng, err = NewEngine(e.Store, e.Queue, e.Stages.Functions(), e.log.With("component", "asl"), func(asl.Transition) { e.Metrics.Transitions.Inc() })
	if err != nil {
		cancel()
		wg.Wait()
		return err
	}
	lazy.set(eng)
	e.Engine = eng
	goRun("workflow engine", eng.Run)

	launcher := &jobs.Launcher{DB: e.DB, Workflow: eng, Log: e.log}
	cond := &conductor.Conductor{DB: e.DB, Batches: batches, Queue: e.Queue, Log: e.log.With("component", "conductor"),
		Metrics: e.Metrics, StaleAfter: e.cfg.StaleAfter}
	goRun("conductor", cond.Run)
	e.Checker = &checker.Checker{DB: e.DB, Batches: batches, Launcher: launcher, Log: e.log.With("component", "checker"),
		Alerts: newAlerts(e.cfg.AlertWebhooks, e.log.With("component", "alerts")), StaleAfter: e.cfg.StaleAfter, Interval: e.cfg.CheckInterval}
	goRun("checker", e.Checker.Run)

	lc, blobs := e.lifecycleAPI() // storage, signed file URLs and the CMDB of the lifecycle routes (blob.go)
	srv := &api.Server{DB: e.DB, Launcher: launcher, Workflow: eng, Batches: batches, Auth: validator,
		Catalog: apiCatalog{catalog: catalog{Clouds: clouds, repos: gitRepos{e.Repos}}, Repos: e.Repos, env: e.Stages}, Log: e.log.With("component", "api"), Lifecycle: lc}
	srv.RateLimit = e.cfg.APIRateLimit
	mux := http.NewServeMux()
	mux.Handle("GET "+api.BlobPath, blobs)
	mux.Handle("/", srv.Handler())
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.Metrics.Registry, promhttp.HandlerOpts{}))
	mux.Handle("/debug/pprof/", adminOnly(validator, http.HandlerFunc(pprof.Index)))
	mux.Handle("/debug/pprof/profile", adminOnly(validator, http.HandlerFunc(pprof.Profile)))
	mux.Handle("/debug/pprof/trace", adminOnly(validator, http.HandlerFunc(pprof.Trace)))
	apiSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	goRun("API", func(context.Context) error { return serve(apiSrv, e.apiLn) })
	close(e.ready)

	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	_ = apiSrv.Shutdown(sctx)
	_ = cloudSrv.Shutdown(sctx)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func serve(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close releases the stores and listeners.
func (e *Embedded) Close() {
	e.closeOnce.Do(func() {
		if e.apiLn != nil {
			_ = e.apiLn.Close()
		}
		if e.cloudLn != nil {
			_ = e.cloudLn.Close()
		}
		if e.Repos != nil {
			_ = e.Repos.Close()
		}
		if e.Queue != nil {
			_ = e.Queue.Close()
		}
		if e.Store != nil {
			_ = e.Store.Close()
		}
	})
}

// NewEngine loads every state machine with embedded substitutions and builds the
// interpreter over fns (by function name).
func NewEngine(s store.Store, q queue.Queue, fns map[string]workflow.Func, log *slog.Logger, onTransition func(asl.Transition)) (*asl.Engine, error) {
	machines, functions, err := LoadMachines(fns)
	if err != nil {
		return nil, err
	}
	return asl.New(asl.Config{Store: s, Queue: q, Machines: machines, Functions: functions, Logger: log, OnTransition: onTransition})
}

// LoadMachines loads statemachines/*.asl.json, resolving ${XFunctionArn} to the embedded
// function X; a substitution without a function is an error.
func LoadMachines(fns map[string]workflow.Func) (map[string]*asl.Machine, map[string]workflow.Func, error) {
	machines := map[string]*asl.Machine{}
	functions := map[string]workflow.Func{}
	for _, name := range statemachines.Names() {
		def, err := statemachines.Definition(name)
		if err != nil {
			return nil, nil, err
		}
		subst := map[string]string{}
		for _, k := range statemachines.Substitutions(def) {
			fn, ok := statemachines.FunctionName(k)
			if !ok {
				if m, ok := cutMachine(k); ok {
					subst[k] = asl.MachineARN(m)
					continue
				}
				return nil, nil, fmt.Errorf("state machine %s: unknown substitution ${%s}", name, k)
			}
			f, ok := fns[fn]
			if !ok {
				return nil, nil, fmt.Errorf("state machine %s: no stage function %q for ${%s}", name, fn, k)
			}
			arn := statemachines.EmbeddedARN(fn)
			subst[k] = arn
			functions[arn] = f
		}
		m, err := asl.Load(name, def, subst)
		if err != nil {
			return nil, nil, err
		}
		machines[name] = m
	}
	return machines, functions, nil
}

func cutMachine(k string) (string, bool) {
	const suffix = "StateMachineArn"
	if len(k) > len(suffix) && k[len(k)-len(suffix):] == suffix {
		return MachineOfSubstitution(k) // CreationStateMachineArn -> creation, ConfigChange... -> config_change
	}
	return "", false
}

// lazyEngine lets stage functions hold the engine that is built from them.
type lazyEngine struct {
	mu sync.RWMutex
	e  workflow.Engine
}

func (l *lazyEngine) set(e workflow.Engine) { l.mu.Lock(); l.e = e; l.mu.Unlock() }
func (l *lazyEngine) get() workflow.Engine  { l.mu.RLock(); defer l.mu.RUnlock(); return l.e }

func (l *lazyEngine) Start(ctx context.Context, m, n string, in []byte) (string, error) {
	return l.get().Start(ctx, m, n, in)
}
func (l *lazyEngine) Describe(ctx context.Context, id string) (workflow.Execution, error) {
	return l.get().Describe(ctx, id)
}
func (l *lazyEngine) Stop(ctx context.Context, id, e, c string) error {
	return l.get().Stop(ctx, id, e, c)
}
func (l *lazyEngine) SendTaskSuccess(ctx context.Context, t string, o []byte) error {
	return l.get().SendTaskSuccess(ctx, t, o)
}
func (l *lazyEngine) SendTaskFailure(ctx context.Context, t, e, c string) error {
	return l.get().SendTaskFailure(ctx, t, e, c)
}
func (l *lazyEngine) SendTaskHeartbeat(ctx context.Context, t string) error {
	return l.get().SendTaskHeartbeat(ctx, t)
}
