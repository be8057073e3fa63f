// Command bench measures straas against the figures of DESIGN §11 (`make bench`) and
// writes bench/results.json. Every number comes from the run.
//
//	go run ./bench                    every scenario at full size (about ten minutes)
//	go run ./bench -quick             small sizes, under two minutes
//	go run ./bench -run '^[35]$'      some scenarios, by number
//	go run ./bench -cpuprofile bench/cpu.prof
//	                                  a CPU profile per job: bench/cpu.<job>-<size>.prof
//
// Each job (a scenario at one size, or a few scenarios measured together) runs in a
// child process of its own — this binary again — so that a memory figure is the job's
// alone and one job's garbage does not slow the next. The parent prints every
// scenario's figure, its setup and how it grows with size, and writes the results file.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	quick      bool
	run        string
	out        string
	cpuprofile string
	memprofile string
	progress   string

	// Internal: a child runs one job at one size and writes its report to childOut.
	child    string
	size     int
	childOut string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var o options
	flag.BoolVar(&o.quick, "quick", false, "small sizes (make bench QUICK=1): the whole run in under two minutes")
	flag.StringVar(&o.run, "run", "", "run only the scenarios whose number matches this regexp (e.g. '^[35]$')")
	flag.StringVar(&o.out, "out", "", "results file (default bench/results.json under the module root)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of each job to <path without .prof>.<job>-<size>.prof")
	flag.StringVar(&o.memprofile, "memprofile", "", "write a heap profile at the end of each job, named like -cpuprofile's")
	flag.StringVar(&o.progress, "progress", "auto", "progress bars: auto (when stderr is a terminal), always or never")
	flag.StringVar(&o.child, "child", "", "internal: run one job in this process")
	flag.IntVar(&o.size, "size", 0, "internal: the job's size")
	flag.StringVar(&o.childOut, "child-out", "", "internal: where the child writes its report")
	flag.Parse()
	var err error
	if o.child != "" {
		err = runChild(ctx, o)
	} else {
		err = runParent(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// runChild runs one job and writes its report.
func runChild(ctx context.Context, o options) error {
	j := findJob(o.child)
	if j == nil {
		return fmt.Errorf("no job %q", o.child)
	}
	setProgress(o.progress)
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r := &report{}
	err := j.run(ctx, r, o.size, o.quick)
	if err != nil {
		r.Error = err.Error()
	}
	if o.memprofile != "" {
		runtime.GC()
		if f, ferr := os.Create(o.memprofile); ferr == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	raw, merr := json.Marshal(r)
	if merr != nil {
		return merr
	}
	if o.childOut == "" {
		_, werr := os.Stdout.Write(append(raw, '\n'))
		return werr
	}
	return os.WriteFile(o.childOut, raw, 0o644)
}

// runParent runs the selected jobs, each size in a child, prints and writes results.
func runParent(ctx context.Context, o options) error {
	var sel *regexp.Regexp
	if o.run != "" {
		var err error
		if sel, err = regexp.Compile(o.run); err != nil {
			return fmt.Errorf("-run: %w", err)
		}
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Join(root, "bench", "results.json")
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	start := time.Now()
	m := machineInfo(root)
	out := resultsFile{Machine: m, Quick: o.quick, Started: start.UTC().Format(time.RFC3339), Results: []result{}}
	mode := "full sizes"
	if o.quick {
		mode = "quick (small sizes)"
	}
	fmt.Printf("straas bench — %s\nmachine: %d CPUs (%s), %.1f GiB, %s, commit %s; load average at start %s\n",
		mode, m.CPUs, m.CPUModel, float64(m.Memory)/(1<<30), m.Go, m.Commit, m.LoadStart)
	for _, j := range allJobs {
		if sel != nil && !j.selected(sel) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		var reps []*report
		jobStart := time.Now()
		sizes := j.sizes(o.quick)
		for _, size := range sizes {
			var r *report
			if j.inParent {
				r = &report{}
				if err := j.run(ctx, r, size, o.quick); err != nil {
					r.Error = err.Error()
				}
			} else {
				r = runJob(ctx, self, o, j, size)
			}
			reps = append(reps, r)
		}
		merged := merge(reps)
		printJob(os.Stdout, j, merged)
		fmt.Printf("   (%s: %.0f s)\n", j.name, time.Since(jobStart).Seconds())
		out.Results = append(out.Results, merged.Results...)
		out.Unavailable = append(out.Unavailable, merged.Unavailable...)
		for _, s := range j.scenarios {
			if setup := merged.setupOf(s); setup != "" {
				if out.Setup == nil {
					out.Setup = map[string]string{}
				}
				out.Setup[scenarioKey(s)] = setup
			}
		}
		if merged.Error != "" {
			out.Errors = append(out.Errors, jobError{Job: j.name, Error: merged.Error})
		}
	}
	out.Machine.LoadEnd = loadAvg()
	out.DurationS = round(time.Since(start).Seconds(), 1)
	raw, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out, append(raw, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\n%d results in %.0f s written to %s (load average at end %s)\n", len(out.Results), out.DurationS, o.out, out.Machine.LoadEnd)
	if len(out.Errors) > 0 {
		return fmt.Errorf("%d jobs failed: see above", len(out.Errors))
	}
	return nil
}

// runJob runs a job at one size in a child process; a child that fails is reported as
// the job's error.
func runJob(ctx context.Context, self string, o options, j *job, size int) *report {
	tmp, err := os.CreateTemp("", "straas-bench-*.json")
	if err != nil {
		return &report{Error: err.Error()}
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := []string{"-child", j.name, "-size", strconv.Itoa(size), "-child-out", tmp.Name(), "-progress", o.progress}
	if o.quick {
		args = append(args, "-quick")
	}
	if o.cpuprofile != "" {
		args = append(args, "-cpuprofile", profileName(o.cpuprofile, j.name, size))
	}
	if o.memprofile != "" {
		args = append(args, "-memprofile", profileName(o.memprofile, j.name, size))
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	runErr := cmd.Run()
	raw, err := os.ReadFile(tmp.Name())
	r := &report{}
	if err == nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, r); err != nil {
			r.Error = fmt.Sprintf("bad report from child: %v", err)
		}
	} else if runErr != nil {
		r.Error = fmt.Sprintf("job %s (size %d): %v", j.name, size, runErr)
	}
	return r
}

func profileName(base, job string, size int) string {
	ext := filepath.Ext(base)
	return fmt.Sprintf("%s.%s-%d%s", strings.TrimSuffix(base, ext), job, size, ext)
}

// moduleRoot is the directory of the nearest go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s: run the bench from the repository", dir)
		}
		dir = parent
	}
}
