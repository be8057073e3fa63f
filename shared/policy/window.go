package policy

import (
	"fmt"
	"time"
	_ "time/tzdata" // windows name IANA zones; Lambda images may lack a zoneinfo database

	"github.com/robfig/cron/v3"

	"github.com/straas/straas/shared/errs"
)

// Window is a recurring maintenance window: it opens at each time the cron expression
// (minute hour day-of-month month day-of-week, in TimeZone) fires and stays open for
// Duration.
type Window struct {
	Cron     string `json:"cron"`      // e.g. "0 2 * * SAT"
	Duration string `json:"duration"`  // e.g. "4h"
	TimeZone string `json:"time_zone"` // IANA name, e.g. "Europe/Paris"; default UTC
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// compiled is a parsed window.
type compiled struct {
	sched cron.Schedule
	dur   time.Duration
}

func (w Window) compile(at string) (compiled, error) {
	tz := w.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return compiled{}, errs.Invalidf(at+"time_zone", "unknown time zone %q", w.TimeZone)
	}
	if w.Cron == "" {
		return compiled{}, errs.Invalidf(at+"cron", "required, e.g. \"0 2 * * SAT\"")
	}
	sched, err := cronParser.Parse("CRON_TZ=" + tz + " " + w.Cron)
	if err != nil {
		return compiled{}, errs.Invalidf(at+"cron", "%q: %v", w.Cron, err)
	}
	d, err := time.ParseDuration(w.Duration)
	if err != nil {
		return compiled{}, errs.Invalidf(at+"duration", "%q: want a duration like \"4h\" or \"90m\"", w.Duration)
	}
	if d < time.Minute || d > 7*24*time.Hour {
		return compiled{}, errs.Invalidf(at+"duration", "must be from 1m to 168h, got %s", d)
	}
	return compiled{sched: sched, dur: d}, nil
}

// ValidateWindows checks windows; fields are named under at (e.g. "maintenance_windows").
func ValidateWindows(at string, ws []Window) error {
	if len(ws) > 20 {
		return errs.Invalidf(at, "at most 20 windows")
	}
	for i, w := range ws {
		if _, err := w.compile(fmt.Sprintf("%s[%d].", at, i)); err != nil {
			return err
		}
	}
	return nil
}

// Opening is when a window is (or next will be) open.
type Opening struct {
	Open   bool      `json:"open"`
	Opens  time.Time `json:"opens_at"`  // now when open
	Closes time.Time `json:"closes_at"` // end of the current or next opening
	Window Window    `json:"window"`
}

// NextOpening says whether one of ws is open at now and, if none is, when the earliest
// opens. With no windows, disruptive work may run at any time (Open true). Invalid
// windows are skipped (they are validated when set).
func NextOpening(ws []Window, now time.Time) Opening {
	if len(ws) == 0 {
		return Opening{Open: true, Opens: now}
	}
	var best *Opening
	for _, w := range ws {
		c, err := w.compile("")
		if err != nil {
			continue
		}
		// The latest start s with now-dur < s <= now means open now.
		s := c.sched.Next(now.Add(-c.dur))
		if !s.After(now) {
			o := Opening{Open: true, Opens: now, Closes: s.Add(c.dur), Window: w}
			if best == nil || !best.Open || o.Closes.After(best.Closes) {
				best = &o
			}
			continue
		}
		o := Opening{Opens: s, Closes: s.Add(c.dur), Window: w}
		if best == nil || (!best.Open && o.Opens.Before(best.Opens)) {
			best = &o
		}
	}
	if best == nil {
		return Opening{Open: true, Opens: now}
	}
	return *best
}

// Describe says when a window opens, e.g. "maintenance window \"0 2 * * SAT\" (4h,
// Europe/Paris) opens at 2024-06-01T02:00:00+02:00".
func (o Opening) Describe() string {
	tz := o.Window.TimeZone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.UTC
	}
	what := fmt.Sprintf("maintenance window %q (%s, %s)", o.Window.Cron, o.Window.Duration, tz)
	if o.Open {
		return what + " is open until " + o.Closes.In(loc).Format(time.RFC3339)
	}
	return what + " opens at " + o.Opens.In(loc).Format(time.RFC3339)
}
