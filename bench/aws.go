package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// awsReport mirrors awspaths.Report (a test package cannot be imported).
type awsReport struct {
	Endpoint     string `json:"endpoint"`
	Moto         bool   `json:"moto"`
	Measurements []struct {
		Op          string  `json:"op"`
		Adapter     string  `json:"adapter"`
		Concurrency int     `json:"concurrency"`
		Calls       int     `json:"calls"`
		P50ms       float64 `json:"p50_ms"`
		P99ms       float64 `json:"p99_ms"`
		PerSecond   float64 `json:"per_second"`
	} `json:"measurements"`
}

// runAWS measures scenario 8 by running bench/awspaths's benchmark, which gets its
// endpoint from test/awsendpoint (moto_server from .venv, started and stopped for the
// run, or AWS_ENDPOINT_URL). Without moto the scenario says so and the bench goes on.
func runAWS(ctx context.Context, r *report, _ int, quick bool) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	out, err := os.CreateTemp("", "straas-bench-aws-*.json")
	if err != nil {
		return err
	}
	out.Close()
	defer os.Remove(out.Name())
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	fmt.Fprintln(os.Stderr, "aws: go test ./bench/awspaths -bench Paths (moto_server via test/awsendpoint) ...")
	cmd := exec.CommandContext(ctx, "go", "test", "./bench/awspaths", "-run", "^$", "-bench", "^BenchmarkPaths$", "-benchtime", "1x", "-count", "1")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "STRAAS_BENCH_OUT="+out.Name())
	if quick {
		cmd.Env = append(cmd.Env, "STRAAS_BENCH_QUICK=1")
	}
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	runErr := cmd.Run()
	raw, _ := os.ReadFile(out.Name())
	r.setup("8", "bench/awspaths (go test) times the same port calls on the embedded adapters (bbolt store, boltq) and on the AWS adapters "+
		"(shared/store/dynamo, shared/queue/sqsq) against the local endpoint test/awsendpoint provides (moto_server, one process, loopback); "+
		"size = concurrent callers; the figure is the ratio AWS/embedded of p50 latency and of calls per second")
	if len(raw) == 0 {
		reason := strings.TrimSpace(buf.String())
		for _, line := range strings.Split(reason, "\n") {
			if strings.Contains(line, "cannot start") || strings.Contains(line, "not found") {
				reason = strings.TrimSpace(line)
				break
			}
		}
		if len(reason) > 600 {
			reason = reason[:600] + "..."
		}
		if runErr == nil {
			runErr = fmt.Errorf("no measurements")
		}
		r.unavailable("8", "the AWS endpoint could not be used (%v): %s. Install moto with: python3 -m venv .venv && .venv/bin/pip install \"moto[server]\"", runErr, reason)
		return nil
	}
	var rep awsReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("awspaths report: %w", err)
	}
	type key struct {
		op   string
		conc int
	}
	emb := map[key][2]float64{}
	for _, m := range rep.Measurements {
		if m.Adapter == "embedded" {
			emb[key{m.Op, m.Concurrency}] = [2]float64{m.P50ms, m.PerSecond}
		}
	}
	for _, m := range rep.Measurements {
		if m.Adapter != "aws" {
			continue
		}
		e, ok := emb[key{m.Op, m.Concurrency}]
		if !ok {
			continue
		}
		r.add("8", m.Concurrency, m.Op+" p50 ratio", m.P50ms/max(e[0], 0.001), "×")
		r.add("8", m.Concurrency, m.Op+" rate ratio", e[1]/max(m.PerSecond, 0.001), "× fewer/s")
		r.add("8", m.Concurrency, m.Op+" aws p50", m.P50ms, "ms")
		r.add("8", m.Concurrency, m.Op+" embedded p50", e[0], "ms")
	}
	what := "endpoint"
	if rep.Moto {
		what = "moto"
	}
	r.note("AWS adapters ran against %s at %s", what, rep.Endpoint)
	return nil
}
