// Command mockcn runs the mock cloud on its own (DESIGN §6): Keystone at /identity/v3,
// Nova at /compute/v2.1 and the admin API at /mockcn/v1 over HTTP, with its VMs' agents
// on SQS — wherever the AWS SDK's settings point (AWS_ENDPOINT_URL, AWS_REGION, ...).
// It is the container the mock fleet runs in on ECS (mockcn/Dockerfile).
//
// Every flag can also be given in the environment (MOCKCN_<FLAG>, upper case, - as _).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/straas/straas/agent"
	"github.com/straas/straas/agent/dummy"
	"github.com/straas/straas/mockcn"
	"github.com/straas/straas/shared/awsconf"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/sqsq"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mockcn:", err)
		os.Exit(1)
	}
}

type options struct {
	listen      string
	root        string
	azs         []string
	cnsPerAZ    int
	racksPerAZ  int
	publicURL   string
	queue       string // sqs | none
	bootMin     time.Duration
	bootMax     time.Duration
	pollers     int
	pollMax     time.Duration
	logLevel    slog.Level
	healthcheck bool
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("mockcn", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v, ok := os.LookupEnv("MOCKCN_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))); ok {
			return v
		}
		return def
	}
	str := func(p *string, name, def, usage string) { fs.StringVar(p, name, env(name, def), usage) }
	var azs, level, cns, racks, pollers, bootMin, bootMax, pollMax string
	str(&o.listen, "listen", ":8080", "address to serve on")
	str(&o.root, "root", "/var/lib/mockcn", "SERVER_ROOT: CNs, VMs and identity state")
	str(&azs, "azs", "az1", "availability zones, comma separated")
	str(&cns, "cns-per-az", "4", "compute nodes created in each zone that has fewer")
	str(&racks, "racks-per-az", "2", "racks (fault domains) per zone")
	str(&o.publicURL, "public-url", "", "base URL put in the catalog (default: the request's host)")
	str(&o.queue, "queue", "sqs", "where the agents talk: sqs, or none (no agents)")
	str(&bootMin, "boot-min", "20ms", "shortest boot")
	str(&bootMax, "boot-max", "80ms", "longest boot")
	str(&pollers, "pollers", "64", "concurrent receives on command queues")
	str(&pollMax, "poll-max", "5s", "longest interval between polls of an idle command queue")
	str(&level, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&o.healthcheck, "healthcheck", false, "check a running mockcn's /healthz on -listen and exit")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var err error
	ints := []struct {
		p    *int
		name string
		s    string
	}{{&o.cnsPerAZ, "cns-per-az", cns}, {&o.racksPerAZ, "racks-per-az", racks}, {&o.pollers, "pollers", pollers}}
	for _, x := range ints {
		if *x.p, err = strconv.Atoi(x.s); err != nil || *x.p < 0 {
			return o, fmt.Errorf("-%s: %q is not a count", x.name, x.s)
		}
	}
	durs := []struct {
		p    *time.Duration
		name string
		s    string
	}{{&o.bootMin, "boot-min", bootMin}, {&o.bootMax, "boot-max", bootMax}, {&o.pollMax, "poll-max", pollMax}}
	for _, x := range durs {
		if *x.p, err = time.ParseDuration(x.s); err != nil {
			return o, fmt.Errorf("-%s: %v", x.name, err)
		}
	}
	for _, az := range strings.Split(azs, ",") {
		if az = strings.TrimSpace(az); az != "" {
			o.azs = append(o.azs, az)
		}
	}
	if err := o.logLevel.UnmarshalText([]byte(level)); err != nil {
		return o, fmt.Errorf("-log-level: %v", err)
	}
	if o.queue != "sqs" && o.queue != "none" {
		return o, fmt.Errorf("-queue: want sqs or none, got %q", o.queue)
	}
	return o, nil
}

// build makes the cloud and the HTTP handler (the cloud's, plus /healthz).
func build(ctx context.Context, o options, log *slog.Logger) (*mockcn.Cloud, http.Handler, error) {
	var q queue.Queue
	if o.queue == "sqs" {
		cfg, err := awsconf.Load(ctx)
		if err != nil {
			return nil, nil, err
		}
		q = sqsq.New(cfg, sqsq.Options{})
	}
	cloud, err := mockcn.New(mockcn.Config{
		Root: o.root, AZs: o.azs, CNsPerAZ: o.cnsPerAZ, RacksPerAZ: o.racksPerAZ, PublicURL: o.publicURL,
		Queue: q, Logger: log,
		BootLatency: mockcn.Latency{Min: dummy.Duration(o.bootMin), Max: dummy.Duration(o.bootMax)},
		// SQS does not push: a bounded pool of pollers visits idle queues ever more rarely.
		Fleet: agent.FleetConfig{Pollers: o.pollers, PollMax: o.pollMax, Senders: 8},
	})
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/", cloud.Handler())
	return cloud, mux, nil
}

func run(ctx context.Context, args []string, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	if o.healthcheck {
		return healthcheck(ctx, o.listen)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	cloud, h, err := build(ctx, o, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cloud.Run(ctx) }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("mockcn: serving", "addr", ln.Addr().String(), "root", o.root, "azs", o.azs, "queue", o.queue)
	select {
	case <-ctx.Done():
	case err = <-serveErr:
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if serr := srv.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	cancel()
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func healthcheck(ctx context.Context, listen string) error {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: %s", resp.Status)
	}
	return nil
}
