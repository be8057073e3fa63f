package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestHuman(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0"}, {3, "3"}, {2000, "2000"}, {12345.6, "12346"}, {150.4, "150"},
		{42.25, "42.2"}, {3.14159, "3.14"}, {0.0123, "0.0123"}, {-7.5, "-7.50"},
	}
	for _, tt := range tests {
		if got := human(tt.in); got != tt.want {
			t.Errorf("human(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPrintTableGrowth(t *testing.T) {
	r := &report{}
	r.add("2", 1000, "time", 2, "s")
	r.add("2", 10000, "time", 20, "s")
	r.add("2", 1000, "rate", 500, "nodes/s")
	r.add("1", 1000, "heap", 4, "KiB") // another scenario: not in this table
	var b bytes.Buffer
	printTable(&b, scenarioKey("2"), r.Results)
	out := b.String()
	for _, want := range []string{"size:", "1000", "10000", "×10 size", "time (s)", "×10", "rate (nodes/s)", "500"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "heap") {
		t.Errorf("table shows another scenario's metric:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Errorf("got %d lines, want a header and one per metric:\n%s", len(lines), out)
	}
}

func TestReportDropsNonNumbers(t *testing.T) {
	r := &report{}
	var zero float64
	r.add("3", 1, "nan", zero/zero, "")
	r.add("3", 1, "ok", 1, "")
	if len(r.Results) != 1 || r.Results[0].Scenario != "3_heartbeat_ingest" {
		t.Fatalf("results = %+v", r.Results)
	}
}

func TestLatencyQuantiles(t *testing.T) {
	l := &latencies{}
	for i := 100; i >= 1; i-- {
		l.add(time.Duration(i) * time.Millisecond)
	}
	if got := l.ms(0.5); got != 50 {
		t.Errorf("p50 = %v ms, want 50", got)
	}
	if got := l.ms(0.99); got != 99 {
		t.Errorf("p99 = %v ms, want 99", got)
	}
	l.reset()
	if got := l.ms(0.5); got != 0 || l.len() != 0 {
		t.Errorf("after reset: p50 %v, len %d", got, l.len())
	}
}

func TestProfileName(t *testing.T) {
	if got := profileName("bench/cpu.prof", "fleet", 1000); got != "bench/cpu.fleet-1000.prof" {
		t.Errorf("profileName = %q", got)
	}
	if got := profileName("cpu", "api", 20); got != "cpu.api-20" {
		t.Errorf("profileName = %q", got)
	}
}

func TestEveryScenarioHasAJobAndInfo(t *testing.T) {
	seen := map[string]bool{}
	for _, j := range allJobs {
		for _, s := range j.scenarios {
			if _, ok := scenarios[s]; !ok {
				t.Errorf("job %s reports scenario %s, which has no description", j.name, s)
			}
			seen[s] = true
		}
		if len(j.sizes(true)) == 0 || len(j.sizes(false)) == 0 {
			t.Errorf("job %s has no sizes", j.name)
		}
	}
	for s := range scenarios {
		if !seen[s] {
			t.Errorf("scenario %s is run by no job", s)
		}
	}
}
