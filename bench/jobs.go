package main

import (
	"context"
	"regexp"
)

// job measures one or more scenarios; each size runs in a child process unless
// inParent (a job that runs another program itself).
type job struct {
	name      string
	scenarios []string // scenario numbers it reports
	sizes     func(quick bool) []int
	run       func(ctx context.Context, r *report, size int, quick bool) error
	inParent  bool
}

func (j *job) selected(sel *regexp.Regexp) bool {
	for _, s := range j.scenarios {
		if sel.MatchString(s) {
			return true
		}
	}
	return false
}

func sizes(quick, full []int) func(bool) []int {
	return func(q bool) []int {
		if q {
			return quick
		}
		return full
	}
}

// jobs in the order they run.
var allJobs = []*job{
	{name: "fleet", scenarios: []string{"1", "2"}, sizes: sizes([]int{500, 1000}, []int{1000, 5000, 10000}), run: runFleet},
	{name: "ingest", scenarios: []string{"3"}, sizes: sizes([]int{2000, 5000}, []int{2000, 5000, 10000, 20000}), run: runIngest},
	{name: "leases", scenarios: []string{"3b"}, sizes: sizes([]int{2000}, []int{1000, 10000}), run: runLeaseWrites},
	{name: "interp", scenarios: []string{"4"}, sizes: sizes([]int{16, 256}, []int{1, 16, 32, 64, 256}), run: runInterpreter},
	{name: "create", scenarios: []string{"5"}, sizes: sizes([]int{0}, []int{0}), run: runCreate},
	{name: "change", scenarios: []string{"6"}, sizes: sizes([]int{30}, []int{100}), run: runChange},
	{name: "api", scenarios: []string{"7"}, sizes: sizes([]int{10}, []int{20, 200}), run: runAPI},
	{name: "aws", scenarios: []string{"8"}, sizes: sizes([]int{0}, []int{0}), run: runAWS, inParent: true},
	{name: "idle", scenarios: []string{"9"}, sizes: sizes([]int{100}, []int{300, 1000}), run: runIdle},
}

func findJob(name string) *job {
	for _, j := range allJobs {
		if j.name == name {
			return j
		}
	}
	return nil
}
