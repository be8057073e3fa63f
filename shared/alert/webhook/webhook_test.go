package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straas/straas/shared/alert"
	"github.com/straas/straas/shared/alert/webhook"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
)

// hook is a test webhook answering with the statuses given, then 200.
type hook struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	got      []alert.Alert
	headers  []http.Header
	hits     atomic.Int32
}

func newHook(t *testing.T, statuses ...int) *hook {
	t.Helper()
	h := &hook{statuses: statuses}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.hits.Add(1)
		var a alert.Alert
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.Method != http.MethodPost || json.Unmarshal(b, &a) != nil {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		h.got = append(h.got, a)
		h.headers = append(h.headers, r.Header.Clone())
		if len(h.statuses) > 0 {
			w.WriteHeader(h.statuses[0])
			h.statuses = h.statuses[1:]
		}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hook) alerts() []alert.Alert {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]alert.Alert(nil), h.got...)
}

func logger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

var sample = alert.Alert{
	Key: "node-stale/n-1", Level: "critical", Title: "node n-1 is stale", Message: "no heartbeat for 90s",
	Topology: "t-1", Labels: map[string]string{"node": "n-1"},
	At: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
}

func TestDeliversToEveryURLAndLogs(t *testing.T) {
	a, b := newHook(t), newHook(t)
	log, buf := logger()
	p := webhook.New([]string{a.URL, b.URL}, log)
	if err := p.Publish(context.Background(), sample); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*hook{a, b} {
		got := h.alerts()
		if len(got) != 1 {
			t.Fatalf("got %d posts, want 1", len(got))
		}
		g := got[0]
		if g.Key != sample.Key || g.Title != sample.Title || g.Labels["node"] != "n-1" || !g.At.Equal(sample.At) {
			t.Fatalf("posted %+v, want %+v", g, sample)
		}
		if ct := h.headers[0].Get("Content-Type"); ct != "application/json" {
			t.Fatalf("content type %q", ct)
		}
	}
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	if rec["level"] != "ERROR" || rec["severity"] != "critical" || rec["key"] != sample.Key || rec["topology"] != "t-1" ||
		rec["labels"].(map[string]any)["node"] != "n-1" {
		t.Fatalf("log record %v", rec)
	}
}

func TestLogOnlyWithoutURLs(t *testing.T) {
	log, buf := logger()
	p := webhook.New(nil, log)
	a := sample
	a.Level = "warning"
	a.At = time.Time{}
	if err := p.Publish(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"level":"WARN"`) || !strings.Contains(buf.String(), sample.Title) {
		t.Fatalf("log: %s", buf.String())
	}
}

func TestDeduplicatesByKeyWithinWindow(t *testing.T) {
	h := newHook(t)
	clk := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	log, _ := logger()
	p := webhook.New([]string{h.URL}, log, webhook.WithClock(clk), webhook.WithDedupWindow(time.Minute))
	ctx := context.Background()
	other := sample
	other.Key = "other"
	steps := []struct {
		name    string
		advance time.Duration
		clear   bool
		a       alert.Alert
		want    int // posts so far
	}{
		{"first", 0, false, sample, 1},
		{"same key at once", 0, false, sample, 1},
		{"other key", 0, false, other, 2},
		{"same key inside the window", 59 * time.Second, false, sample, 2},
		{"same key after the window", time.Second, false, sample, 3},
		{"cleared", 0, true, sample, 4},
		{"empty keys are never merged", 0, false, alert.Alert{Title: "a"}, 5},
		{"empty keys are never merged, again", 0, false, alert.Alert{Title: "a"}, 6},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		if st.clear {
			p.Clear(st.a.Key)
		}
		if err := p.Publish(ctx, st.a); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := len(h.alerts()); got != st.want {
			t.Fatalf("%s: %d posts, want %d", st.name, got, st.want)
		}
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name     string
		statuses []int
		retries  int
		ok       bool
		hits     int32
	}{
		{"5xx then success", []int{500, 503}, 2, true, 3},
		{"429 is retried", []int{429}, 2, true, 2},
		{"always failing", []int{500, 500, 500, 500}, 2, false, 3},
		{"4xx is final", []int{400}, 2, false, 1},
		{"no retries", []int{500}, 0, false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHook(t, tc.statuses...)
			log, _ := logger()
			p := webhook.New([]string{h.URL}, log, webhook.WithRetries(tc.retries), webhook.WithBackoff(time.Millisecond))
			err := p.Publish(context.Background(), sample)
			if tc.ok != (err == nil) {
				t.Fatalf("got %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errs.Is(err, errs.Unavailable) {
				t.Fatalf("got kind %v, want unavailable", errs.KindOf(err))
			}
			if got := h.hits.Load(); got != tc.hits {
				t.Fatalf("%d attempts, want %d", got, tc.hits)
			}
			if err != nil {
				// Not published: the same key goes out on the next try.
				before := h.hits.Load()
				_ = p.Publish(context.Background(), sample)
				if h.hits.Load() == before {
					t.Fatal("a failed alert was de-duplicated")
				}
			}
		})
	}
}

func TestTimeoutPerAttempt(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	log, _ := logger()
	p := webhook.New([]string{slow.URL}, log, webhook.WithTimeout(50*time.Millisecond), webhook.WithRetries(1),
		webhook.WithBackoff(time.Millisecond))
	start := time.Now()
	err := p.Publish(context.Background(), sample)
	if !errs.Is(err, errs.Unavailable) {
		t.Fatalf("got %v, want unavailable", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %v despite a 50ms timeout", took)
	}
}

func TestOneFailingURLDoesNotStopTheOthers(t *testing.T) {
	good, bad := newHook(t), newHook(t, 400)
	log, _ := logger()
	p := webhook.New([]string{bad.URL, good.URL}, log)
	err := p.Publish(context.Background(), sample)
	if err == nil || !strings.Contains(err.Error(), bad.URL) {
		t.Fatalf("got %v, want an error naming %s", err, bad.URL)
	}
	if len(good.alerts()) != 1 {
		t.Fatal("the good webhook got nothing")
	}
}
