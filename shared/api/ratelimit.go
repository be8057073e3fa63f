package api

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/straas/straas/shared/errs"
)

// RateLimit is a per-tenant token bucket: PerSecond requests per second sustained, with
// bursts of Burst. PerSecond <= 0 disables it. The bucket is per process: in AWS mode,
// API Gateway usage plans are the global limit and this one is per Lambda instance.
type RateLimit struct {
	PerSecond float64
	Burst     int // default: max(1, ceil(PerSecond))
}

type limiter struct {
	cfg   RateLimit
	now   func() time.Time
	mu    sync.Mutex
	byTen map[string]*tenantBucket
	swept time.Time
}

type tenantBucket struct {
	lim  *rate.Limiter
	last time.Time
}

// idleBucket is how long an unused tenant bucket is kept: a full bucket is the same as none.
const idleBucket = 10 * time.Minute

func newLimiter(cfg RateLimit, now func() time.Time) *limiter {
	if cfg.PerSecond <= 0 {
		return nil
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(math.Ceil(cfg.PerSecond)))
	}
	return &limiter{cfg: cfg, now: now, byTen: map[string]*tenantBucket{}}
}

// rateLimited is the error of a refused request; writeError sets Retry-After from it.
type rateLimited struct {
	tenant     string
	retryAfter int // whole seconds, at least 1
}

func (e *rateLimited) Error() string {
	return fmt.Sprintf("too many requests for this project; retry after %d s", e.retryAfter)
}

// allow takes a token of tenant's bucket, or says how long to wait.
func (l *limiter) allow(tenant string) error {
	if l == nil {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > idleBucket {
		for k, b := range l.byTen {
			if now.Sub(b.last) > idleBucket {
				delete(l.byTen, k)
			}
		}
		l.swept = now
	}
	b := l.byTen[tenant]
	if b == nil {
		b = &tenantBucket{lim: rate.NewLimiter(rate.Limit(l.cfg.PerSecond), l.cfg.Burst)}
		l.byTen[tenant] = b
	}
	b.last = now
	res := b.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now) // a refused request does not use up a token
		return &errs.Error{Kind: errs.RateLimited, Err: &rateLimited{tenant: tenant, retryAfter: int(math.Ceil(d.Seconds()))}}
	}
	return nil
}
