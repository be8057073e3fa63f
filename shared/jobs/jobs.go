// Package jobs submits actions: it writes an action together with the records it
// changes, atomically, then starts its workflow execution named after the action. If the
// process dies in between, the action stays PENDING in an outbox index and Recover
// starts it later (execution names make the start idempotent).
package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/workflow"
)

// Launcher starts actions' workflows.
type Launcher struct {
	DB       *db.DB
	Workflow workflow.Engine
	Log      *slog.Logger
}

// Submit writes a (PENDING) with ops in one atomic write, then starts its workflow.
// A failed condition in ops fails the whole submission with errs.Conflict.
func (l *Launcher) Submit(ctx context.Context, a *model.Action, ops ...store.Op) error {
	a.Status = model.ActionPending
	r, err := db.ActionRecord(a)
	if err != nil {
		return err
	}
	if err := l.DB.S.Write(ctx, append(ops, store.Put(r, store.Absent))...); err != nil {
		return err
	}
	// The action is durable: from here a failure to start is recovered later, not lost.
	if err := l.Launch(ctx, a); err != nil {
		l.Log.Warn("start workflow (will retry)", "action", a.ID, "machine", a.Machine, "err", err)
	}
	return nil
}

// Launch starts a's workflow (idempotent) and records the execution id.
func (l *Launcher) Launch(ctx context.Context, a *model.Action) error {
	id, err := l.Workflow.Start(ctx, a.Machine, a.ID, a.Input)
	if err != nil {
		return fmt.Errorf("start %s for action %s: %w", a.Machine, a.ID, err)
	}
	a.Execution = id
	_, err = l.DB.UpdateAction(ctx, a.ID, func(x *model.Action) error {
		x.Execution = id
		return nil
	})
	return err
}

// Recover starts every pending action older than grace. The checker calls it.
func (l *Launcher) Recover(ctx context.Context, grace time.Duration) (int, error) {
	to := store.SortTime(l.DB.Now().Add(-grace))
	recs, _, err := l.DB.S.List(ctx, db.KindAction, store.Query{Index: store.IdxDue, Part: db.DuePendingAction, To: to, Limit: 100})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		var a model.Action
		if err := store.Decode(r, &a); err != nil {
			return n, err
		}
		if err := l.Launch(ctx, &a); err != nil {
			if errs.Is(err, errs.Conflict) {
				l.Log.Error("action's execution name is taken by different input", "action", a.ID, "err", err)
			}
			continue
		}
		n++
	}
	return n, nil
}
