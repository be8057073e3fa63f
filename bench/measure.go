package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
)

// latencies collects durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

// ms returns the q-quantile in milliseconds.
func (l *latencies) ms(q float64) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	slices.Sort(l.d)
	i := int(q * float64(len(l.d)-1))
	return float64(l.d[i]) / float64(time.Millisecond)
}

func (l *latencies) reset() {
	l.mu.Lock()
	l.d = l.d[:0]
	l.mu.Unlock()
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var statusField = regexp.MustCompile(`(?m)^(VmRSS|VmHWM):\s+(\d+) kB`)

// rss returns the resident set size and its peak, in bytes (0 where /proc is missing).
func rss() (cur, peak int64) {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, m := range statusField.FindAllSubmatch(raw, -1) {
		kb, _ := strconv.ParseInt(string(m[2]), 10, 64)
		if string(m[1]) == "VmRSS" {
			cur = kb << 10
		} else {
			peak = kb << 10
		}
	}
	return cur, peak
}

// --- progress ------------------------------------------------------------------------

var showProgress bool

func setProgress(mode string) {
	switch mode {
	case "always":
		showProgress = true
	case "never":
		showProgress = false
	default:
		st, err := os.Stderr.Stat()
		showProgress = err == nil && st.Mode()&os.ModeCharDevice != 0
	}
}

// bar is a progress bar on stderr (invisible when stderr is not a terminal).
func bar(max int, desc string) *progressbar.ProgressBar {
	return progressbar.NewOptions(max,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetVisibility(showProgress),
	)
}

// follow moves b to what count says until done is closed or ctx ends; it returns once
// it has stopped.
func follow(ctx context.Context, b *progressbar.ProgressBar, count func() int, done <-chan struct{}) func() {
	stopped := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			_ = b.Set(count())
			select {
			case <-ctx.Done():
				return
			case <-done:
				return
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(quit)
		<-stopped
		_ = b.Finish()
	}
}

// --- logs ----------------------------------------------------------------------------

// logCounter is a slog handler that drops every record but counts warnings and errors by
// message, so that a job can say what went wrong without flooding the output.
type logCounter struct {
	mu     *sync.Mutex
	counts map[string]int
	attrs  []slog.Attr
}

func newLogCounter() *logCounter {
	return &logCounter{mu: &sync.Mutex{}, counts: map[string]int{}}
}

func (h *logCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	comp := ""
	for _, a := range h.attrs {
		if a.Key == "component" {
			comp = a.Value.String() + ": "
		}
	}
	// The error's last clause says what went wrong without the ids before it.
	why := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			e := a.Value.String()
			if i := strings.LastIndex(e, ": "); i >= 0 {
				e = e[i+2:]
			}
			if len(e) > 80 {
				e = e[:80] + "..."
			}
			why = " (" + e + ")"
			if e == "context canceled" {
				why = "\x00" // the job shutting down: not worth a note
			}
			return false
		}
		return true
	})
	if why == "\x00" {
		return nil
	}
	h.mu.Lock()
	h.counts[r.Level.String()+" "+comp+r.Message+why]++
	h.mu.Unlock()
	return nil
}

func (h *logCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return &logCounter{mu: h.mu, counts: h.counts, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *logCounter) WithGroup(string) slog.Handler { return h }

// summary lists the counted messages, most frequent first.
func (h *logCounter) summary() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for m, n := range h.counts {
		out = append(out, fmt.Sprintf("%d× %s", n, m))
	}
	sort.Slice(out, func(i, j int) bool {
		var a, b int
		fmt.Sscanf(out[i], "%d", &a)
		fmt.Sscanf(out[j], "%d", &b)
		return a > b || (a == b && out[i] < out[j])
	})
	return out
}

// noteLogs adds the counted warnings to the report.
func noteLogs(r *report, what string, h *logCounter) {
	s := h.summary()
	if len(s) == 0 {
		return
	}
	if len(s) > 5 {
		s = append(s[:5], fmt.Sprintf("... %d more kinds", len(s)-5))
	}
	r.note("%s logged: %s", what, joinSemi(s))
}

func joinSemi(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += "; "
		}
		out += x
	}
	return out
}

// waitFor polls cond every step until it holds, ctx ends or limit passes.
func waitFor(ctx context.Context, limit, step time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %v", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(step):
		}
	}
}
