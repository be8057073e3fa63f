// Package webhook is the embedded adapter of the alert port: every alert is logged
// (structured, through slog) and POSTed as JSON to each configured URL, with a timeout
// per attempt and a few retries. An alert whose Key was published within the
// de-duplication window is logged at debug level and not sent again, until Clear.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/straas/straas/shared/alert"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
)

var _ alert.Publisher = (*Publisher)(nil)

// Defaults.
const (
	DefaultTimeout = 5 * time.Second
	DefaultRetries = 2
	DefaultBackoff = 200 * time.Millisecond
	DefaultWindow  = 10 * time.Minute
)

// Publisher logs alerts and posts them to webhooks. It is safe for concurrent use.
type Publisher struct {
	urls    []string
	log     *slog.Logger
	client  *http.Client
	timeout time.Duration
	retries int
	backoff time.Duration
	window  time.Duration
	clock   clock.Clock

	mu   sync.Mutex
	seen map[string]time.Time // Key -> when it was last published
}

// Option configures New.
type Option func(*Publisher)

// WithClient sets the HTTP client (default: a client with no overall timeout; each
// attempt has its own).
func WithClient(c *http.Client) Option { return func(p *Publisher) { p.client = c } }

// WithTimeout bounds one delivery attempt (default DefaultTimeout).
func WithTimeout(d time.Duration) Option { return func(p *Publisher) { p.timeout = d } }

// WithRetries sets how many times a failed delivery is tried again (default
// DefaultRetries); only network errors, 429 and 5xx answers are retried.
func WithRetries(n int) Option { return func(p *Publisher) { p.retries = max(0, n) } }

// WithBackoff sets the wait before the first retry, doubled for each next one.
func WithBackoff(d time.Duration) Option { return func(p *Publisher) { p.backoff = d } }

// WithDedupWindow sets how long an alert Key is not sent again (default
// DefaultWindow; 0 sends every alert).
func WithDedupWindow(d time.Duration) Option { return func(p *Publisher) { p.window = d } }

// WithClock sets the clock of the de-duplication window and back-off.
func WithClock(c clock.Clock) Option { return func(p *Publisher) { p.clock = c } }

// New returns a publisher posting to urls (none: log only) and logging to logger (nil:
// slog.Default()).
func New(urls []string, logger *slog.Logger, opts ...Option) *Publisher {
	if logger == nil {
		logger = slog.Default()
	}
	p := &Publisher{
		urls: append([]string(nil), urls...), log: logger, client: &http.Client{},
		timeout: DefaultTimeout, retries: DefaultRetries, backoff: DefaultBackoff, window: DefaultWindow,
		clock: clock.Real{}, seen: map[string]time.Time{},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Publish logs a and delivers it to every URL, unless its Key was published within the
// window. It returns an errs.Unavailable error naming the URLs that failed after their
// retries; the alert then counts as not published, so publishing it again retries.
func (p *Publisher) Publish(ctx context.Context, a alert.Alert) error {
	now := p.clock.Now()
	if a.At.IsZero() {
		a.At = now
	}
	if !p.claim(a.Key, now) {
		p.log.LogAttrs(ctx, slog.LevelDebug, "alert suppressed: raised within the de-duplication window",
			slog.String("key", a.Key), slog.Duration("window", p.window))
		return nil
	}
	p.log.LogAttrs(ctx, levelOf(a.Level), "alert: "+a.Title, attrs(a)...)
	if len(p.urls) == 0 {
		return nil
	}
	body, err := json.Marshal(a)
	if err != nil {
		p.release(a.Key)
		return fmt.Errorf("alert %s: %w", a.Key, err)
	}
	errc := make([]error, len(p.urls))
	var wg sync.WaitGroup
	for i, u := range p.urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc[i] = p.deliver(ctx, u, body)
		}()
	}
	wg.Wait()
	if err := errors.Join(errc...); err != nil {
		p.release(a.Key)
		p.log.LogAttrs(ctx, slog.LevelError, "alert webhook delivery failed",
			slog.String("key", a.Key), slog.String("err", err.Error()))
		return errs.Wrap(errs.Unavailable, "publish alert "+a.Key, err)
	}
	return nil
}

// Clear forgets key: the next alert with it is published at once (the condition that
// raised it was resolved, and may come back).
func (p *Publisher) Clear(key string) {
	p.release(key)
}

// claim reports whether key may be published now, and marks it published.
func (p *Publisher) claim(key string, now time.Time) bool {
	if key == "" || p.window <= 0 {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if at, ok := p.seen[key]; ok && now.Sub(at) < p.window {
		return false
	}
	if len(p.seen) >= 1024 { // keep the map to the keys still inside the window
		for k, at := range p.seen {
			if now.Sub(at) >= p.window {
				delete(p.seen, k)
			}
		}
	}
	p.seen[key] = now
	return true
}

func (p *Publisher) release(key string) {
	p.mu.Lock()
	delete(p.seen, key)
	p.mu.Unlock()
}

// deliver posts body to url, retrying what may succeed later.
func (p *Publisher) deliver(ctx context.Context, url string, body []byte) error {
	wait := p.backoff
	var err error
	for attempt := 0; ; attempt++ {
		var retry bool
		retry, err = p.post(ctx, url, body)
		if err == nil {
			return nil
		}
		if !retry || attempt >= p.retries {
			return fmt.Errorf("%s: %w", url, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (then %w)", url, err, ctx.Err())
		case <-p.clock.After(wait):
		}
		wait *= 2
	}
}

// post makes one attempt; retry tells whether another may succeed.
func (p *Publisher) post(ctx context.Context, url string, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "straas-alert/1")
	resp, err := p.client.Do(req)
	if err != nil {
		return true, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("answered %s", resp.Status)
	default:
		return false, fmt.Errorf("answered %s", resp.Status)
	}
}

func levelOf(level string) slog.Level {
	switch level {
	case "critical":
		return slog.LevelError
	case "warning":
		return slog.LevelWarn
	default:
		return slog.LevelInfo
	}
}

// attrs renders a for the log; its level goes under "severity", "level" being slog's.
func attrs(a alert.Alert) []slog.Attr {
	out := []slog.Attr{
		slog.String("key", a.Key), slog.String("severity", a.Level), slog.String("title", a.Title),
		slog.String("message", a.Message), slog.Time("at", a.At),
	}
	if a.Topology != "" {
		out = append(out, slog.String("topology", a.Topology))
	}
	if len(a.Labels) > 0 {
		labels := make([]any, 0, len(a.Labels))
		for k, v := range a.Labels {
			labels = append(labels, slog.String(k, v))
		}
		out = append(out, slog.Group("labels", labels...))
	}
	return out
}
