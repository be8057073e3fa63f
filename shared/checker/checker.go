// Package checker runs the periodic checks (DESIGN §2 checker): overdue command batches,
// silent nodes, actions whose workflow never started; it raises alerts, de-duplicated.
package checker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/straas/straas/shared/alert"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/jobs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
)

// Checker holds what the checks need.
type Checker struct {
	DB       *db.DB
	Batches  *batch.Service
	Launcher *jobs.Launcher
	Alerts   alert.Publisher
	Log      *slog.Logger
	Clock    clock.Clock
	// StaleAfter: a node silent this long is UNREACHABLE. It must exceed the
	// conductor's lease renewal period plus a couple of heartbeat intervals.
	StaleAfter time.Duration
	Interval   time.Duration // between ticks in Run (default 1 s)
}

// Run ticks until ctx ends.
func (c *Checker) Run(ctx context.Context) error {
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.Clock.After(c.Interval):
		}
		if err := c.Tick(ctx); err != nil && ctx.Err() == nil {
			c.Log.Warn("checker tick", "err", err)
		}
	}
}

// Report is what one tick did.
type Report struct {
	Batches  int          `json:"batches"`
	Stale    int          `json:"stale"`
	Launched int          `json:"launched"`
	Policy   PolicyReport `json:"policy"`
}

// Tick runs every check once.
func (c *Checker) Tick(ctx context.Context) (err error) {
	_, err = c.TickReport(ctx)
	return err
}

// TickReport runs every check once and says what it did.
func (c *Checker) TickReport(ctx context.Context) (Report, error) {
	var r Report
	var err error
	if r.Batches, err = c.Batches.Sweep(ctx); err != nil {
		return r, fmt.Errorf("sweep batches: %w", err)
	}
	if r.Stale, err = c.stale(ctx); err != nil {
		return r, fmt.Errorf("stale nodes: %w", err)
	}
	if r.Launched, err = c.Launcher.Recover(ctx, 5*time.Second); err != nil {
		return r, fmt.Errorf("pending actions: %w", err)
	}
	if r.Policy, err = c.policyTick(ctx); err != nil {
		return r, fmt.Errorf("policies: %w", err)
	}
	return r, nil
}

// stale flags nodes whose last heartbeat is older than StaleAfter.
func (c *Checker) stale(ctx context.Context) (int, error) {
	if c.StaleAfter == 0 {
		c.StaleAfter = 30 * time.Second
	}
	now := c.DB.Now()
	recs, _, err := c.DB.S.List(ctx, db.KindLease, store.Query{Index: store.IdxDue, Part: db.DueLease, To: store.SortTime(now.Add(-c.StaleAfter)), Limit: 500})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		var l model.Lease
		if err := store.Decode(r, &l); err != nil {
			return n, err
		}
		l.Stale = true
		nr, err := db.LeaseRecord(&l)
		if err != nil {
			return n, err
		}
		nr.Version = r.Version
		// Conditional: a heartbeat that lands meanwhile wins.
		if err := c.DB.S.Write(ctx, store.Put(nr, store.AtVersion)); err != nil {
			if errs.Is(err, errs.Conflict) {
				continue
			}
			return n, err
		}
		var prev string
		node, err := c.DB.UpdateNode(ctx, l.NodeID, func(x *model.Node) error {
			prev = x.Status
			switch x.Status {
			case model.NodeActive, model.NodeConfigured, model.NodeInstalled, model.NodeVMBooted, model.NodeRestartRequired:
				x.PrevStatus, x.Status = x.Status, model.NodeUnreachable
				x.Error = fmt.Sprintf("no heartbeat since %s", l.LastSeen.Format(time.RFC3339))
			}
			return nil
		})
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		n++
		msg := fmt.Sprintf("node %s silent since %s (was %s)", node.Name, l.LastSeen.Format(time.RFC3339), prev)
		_ = c.DB.Emit(ctx, model.Event{Type: "node.unreachable", Level: model.LevelWarning, TopologyID: node.TopologyID,
			ComponentID: node.ComponentID, NodeID: node.ID, Tenant: node.Tenant, Message: msg})
		c.raiseStale(ctx, node, msg, now)
	}
	return n, nil
}
