package checker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/straas/straas/shared/alert"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy/records"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/workflow"
)

// Alerts are raised once per episode, durably: an alert record per key is written when
// the condition appears and cleared when it goes, so that neither a restart of straas
// nor a stateless checker (a Lambda per tick) sends the same alert twice, and a
// publisher that failed is retried on the next tick. Conditions: a node silent (stale),
// an action failed, an action stuck, a component degraded, a component spread over too
// few fault domains.

// Cadences and thresholds of the periodic checks.
const (
	ActionScanEvery = 15 * time.Second // failed and stuck actions
	DriftEvery      = 10 * time.Second // one round of drift checks
	DriftBatch      = 10               // topologies per round
	StuckAfter      = 30 * time.Minute // an action running longer (not waiting for a window) is stuck
)

// Alert key prefixes.
const (
	alertStale    = "stale/"
	alertFailed   = "action_failed/"
	alertStuck    = "action_stuck/"
	alertDegraded = "degraded/"
	alertSpread   = "spread/"
)

// raise records an alert and publishes it, once per episode: a key already open is not
// sent again; a cleared one is raised again (a new episode).
func (c *Checker) raise(ctx context.Context, a alert.Alert, subject, tenant string) error {
	return c.raiseAlert(ctx, a, subject, tenant, false)
}

// raiseOnce records and publishes an alert whose key is never raised again (a failed
// action: one notice, not an episode).
func (c *Checker) raiseOnce(ctx context.Context, a alert.Alert, subject, tenant string) error {
	return c.raiseAlert(ctx, a, subject, tenant, true)
}

func (c *Checker) raiseAlert(ctx context.Context, a alert.Alert, subject, tenant string, once bool) error {
	now := c.DB.Now()
	if a.At.IsZero() {
		a.At = now
	}
	rec := records.Alert{Key: a.Key, Title: a.Title, Message: a.Message, Level: a.Level, Subject: subject, Topology: a.Topology,
		Tenant: tenant, RaisedAt: now}
	r, err := records.AlertRecord(&rec)
	if err != nil {
		return err
	}
	err = c.DB.S.Write(ctx, store.Put(r, store.Absent))
	if errs.Is(err, errs.Conflict) && once {
		return nil
	}
	if errs.Is(err, errs.Conflict) {
		reopened := false
		if _, err := store.Update(ctx, c.DB.S, records.KindAlert, a.Key, func(sr *store.Record) error {
			var old records.Alert
			if err := store.Decode(*sr, &old); err != nil {
				return err
			}
			if old.ClearedAt == nil {
				return errOpen // open already: nothing to send
			}
			reopened = true
			nr, err := records.AlertRecord(&rec)
			nr.Version = sr.Version
			*sr = nr
			return err
		}); err != nil && !errors.Is(err, errOpen) {
			return err
		}
		if !reopened {
			return nil
		}
	} else if err != nil {
		return err
	}
	sent, err := c.send(ctx, rec, a)
	if err != nil {
		return err
	}
	if once && sent {
		return c.clearAlert(ctx, a.Key) // sent: out of the open list, kept until it expires
	}
	return nil
}

var errOpen = errors.New("alert open")

// send publishes an alert and marks it sent; a failed publication is retried by the
// next tick (the record stays unsent).
func (c *Checker) send(ctx context.Context, rec records.Alert, a alert.Alert) (bool, error) {
	if c.Alerts != nil {
		if err := c.Alerts.Publish(ctx, a); err != nil {
			c.Log.Warn("publish alert (will retry)", "key", a.Key, "err", err)
			return false, nil
		}
	}
	_, err := store.Update(ctx, c.DB.S, records.KindAlert, rec.Key, func(sr *store.Record) error {
		var x records.Alert
		if err := store.Decode(*sr, &x); err != nil {
			return err
		}
		x.Sent = true
		nr, err := records.AlertRecord(&x)
		nr.Version = sr.Version
		*sr = nr
		return err
	})
	if errs.Is(err, errs.NotFound) {
		return true, nil
	}
	return err == nil, err
}

// clearAlert ends an alert's episode (its record is kept a while, then expires).
func (c *Checker) clearAlert(ctx context.Context, key string) error {
	now := c.DB.Now()
	_, err := store.Update(ctx, c.DB.S, records.KindAlert, key, func(sr *store.Record) error {
		var x records.Alert
		if err := store.Decode(*sr, &x); err != nil {
			return err
		}
		if x.ClearedAt != nil {
			return errOpen
		}
		x.ClearedAt = &now
		nr, err := records.AlertRecord(&x)
		nr.Version = sr.Version
		*sr = nr
		return err
	})
	if errs.Is(err, errs.NotFound) || errors.Is(err, errOpen) {
		return nil
	}
	return err
}

// raiseStale is the alert of a node the stale check flagged; it also re-checks the
// node's component for degradation.
func (c *Checker) raiseStale(ctx context.Context, node model.Node, msg string, now time.Time) {
	if node.Status != model.NodeUnreachable {
		return // silent on purpose (maintenance), or not serving anyway
	}
	if err := c.raise(ctx, alert.Alert{Key: alertStale + node.ID, Level: "warning", Title: "node unreachable",
		Message: msg, Topology: node.TopologyID, At: now, Labels: map[string]string{"node": node.ID, "component": node.ComponentID}},
		node.ID, node.Tenant); err != nil {
		c.Log.Warn("raise alert", "node", node.ID, "err", err)
	}
	if _, err := c.checkDegraded(ctx, node.ComponentID); err != nil {
		c.Log.Warn("degraded check", "component", node.ComponentID, "err", err)
	}
}

// reviewAlerts clears open alerts whose condition is gone and re-sends unsent ones.
func (c *Checker) reviewAlerts(ctx context.Context) (int, error) {
	open, err := c.records().OpenAlerts(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range open {
		gone := false
		switch {
		case strings.HasPrefix(a.Key, alertStale):
			node, _, err := c.DB.Node(ctx, a.Subject)
			gone = errs.Is(err, errs.NotFound) || (err == nil && node.Status != model.NodeUnreachable)
		case strings.HasPrefix(a.Key, alertStuck):
			act, _, err := c.DB.Action(ctx, a.Subject)
			gone = errs.Is(err, errs.NotFound) || (err == nil && act.Status != model.ActionRunning && act.Status != model.ActionPending)
		case strings.HasPrefix(a.Key, alertFailed):
			gone = a.Sent // one notice (normally cleared as soon as sent)
		case strings.HasPrefix(a.Key, alertDegraded):
			// Re-judged here: components without policies are looked at only while alerted.
			deg, err := c.checkDegraded(ctx, a.Subject)
			if err != nil {
				return n, err
			}
			gone = !deg
		case strings.HasPrefix(a.Key, alertSpread):
			gone = c.spreadOK(ctx, a.Subject)
		}
		if !a.Sent && !gone {
			sent, err := c.send(ctx, a, alert.Alert{Key: a.Key, Level: a.Level, Title: a.Title, Message: a.Message, Topology: a.Topology, At: a.RaisedAt})
			if err != nil {
				return n, err
			}
			if sent {
				n++
				a.Sent = true
				gone = gone || strings.HasPrefix(a.Key, alertFailed)
			}
		}
		if gone && a.Sent {
			if err := c.clearAlert(ctx, a.Key); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// checkerState is the checker's own durable cursors.
type checkerState struct {
	ActionCursor string    `json:"action_cursor"` // the oldest action id that may still change
	LastActions  time.Time `json:"last_actions"`
	DriftCursor  string    `json:"drift_cursor"` // the last topology id checked
	LastDrift    time.Time `json:"last_drift"`
}

const kindCheckerState = "checker_state"

func (c *Checker) loadState(ctx context.Context) (checkerState, store.Record, error) {
	st, rec, err := store.Load[checkerState](ctx, c.DB.S, kindCheckerState, "policy")
	if errs.Is(err, errs.NotFound) {
		return checkerState{}, store.Record{}, nil
	}
	return st, rec, err
}

func (c *Checker) saveState(ctx context.Context, st checkerState, prev store.Record) error {
	r, err := store.Encode(kindCheckerState, "policy", st)
	if err != nil {
		return err
	}
	cond := store.Absent
	if prev.Version > 0 {
		r.Version, cond = prev.Version, store.AtVersion
	}
	err = c.DB.S.Write(ctx, store.Put(r, cond))
	if errs.Is(err, errs.Conflict) {
		return nil // another checker wrote: its cursors are as good
	}
	return err
}

// scanActions alerts on actions that failed or are stuck, from the cursor on: action
// ids are time-ordered, and the cursor stays at the oldest one that has not ended.
func (c *Checker) scanActions(ctx context.Context, st *checkerState) (int, error) {
	now := c.DB.Now()
	q := store.Query{From: st.ActionCursor, Limit: 500}
	oldest := ""
	last := ""
	raised := 0
	for pages := 0; pages < 10; pages++ {
		recs, next, err := c.DB.S.List(ctx, db.KindAction, q)
		if err != nil {
			return raised, err
		}
		for _, r := range recs {
			var a model.Action
			if err := store.Decode(r, &a); err != nil {
				return raised, err
			}
			last = a.ID
			switch a.Status {
			case model.ActionSucceeded:
				if a.Kind == "delete_topology" && a.TopologyID != "" {
					if _, _, err := c.DB.Topology(ctx, a.TopologyID); errs.Is(err, errs.NotFound) {
						if _, err := c.records().CollectTopology(ctx, a.TopologyID); err != nil {
							return raised, err
						}
					}
				}
			case model.ActionFailed:
				if err := c.raiseFailed(ctx, &a); err != nil {
					return raised, err
				}
				raised++
			case model.ActionRunning, model.ActionPending:
				if ended, err := c.orphaned(ctx, &a); err != nil {
					return raised, err
				} else if ended {
					raised++
					continue
				}
				if oldest == "" {
					oldest = a.ID
				}
				if now.Sub(a.CreatedAt) > StuckAfter && !c.waitingOnPurpose(ctx, &a) {
					msg := fmt.Sprintf("action %s (%s) has been %s since %s", a.ID, a.Kind, a.Status, a.CreatedAt.UTC().Format(time.RFC3339))
					if err := c.raise(ctx, alert.Alert{Key: alertStuck + a.ID, Level: "warning", Title: "action stuck", Message: msg,
						Topology: a.TopologyID, Labels: map[string]string{"action": a.ID, "kind": a.Kind}}, a.ID, a.Tenant); err != nil {
						return raised, err
					}
					raised++
				}
			}
		}
		if next == "" {
			break
		}
		q.After = next
	}
	switch {
	case oldest != "":
		st.ActionCursor = oldest
	case last != "":
		st.ActionCursor = last + "\x00" // everything so far has ended
	}
	return raised, nil
}

func (c *Checker) raiseFailed(ctx context.Context, a *model.Action) error {
	cause := "no cause recorded"
	if a.Error != nil {
		cause = a.Error.Error + ": " + a.Error.Cause
		if a.Error.Component != "" {
			cause = "component " + a.Error.Component + ", " + cause
		}
	}
	return c.raiseOnce(ctx, alert.Alert{Key: alertFailed + a.ID, Level: "warning", Title: "action failed",
		Message: fmt.Sprintf("action %s (%s) failed: %s", a.ID, a.Kind, cause), Topology: a.TopologyID,
		Labels: map[string]string{"action": a.ID, "kind": a.Kind}}, a.ID, a.Tenant)
}

// waitingOnPurpose: an action waiting for a maintenance window or its turn is not stuck.
func (c *Checker) waitingOnPurpose(ctx context.Context, a *model.Action) bool {
	sts, err := c.DB.Stages(ctx, a.ID)
	if err != nil {
		return false
	}
	for _, s := range sts {
		if s.Status == "RUNNING" && (strings.HasSuffix(s.Name, "wait_window") || strings.HasSuffix(s.Name, "wait_turn")) {
			return true
		}
	}
	return false
}

// orphaned closes an action whose workflow ended without closing it (a runtime error
// outside every Catch, an execution stopped from outside): FAILED, with the workflow's
// error, and an alert.
func (c *Checker) orphaned(ctx context.Context, a *model.Action) (bool, error) {
	if a.Status != model.ActionRunning || a.Execution == "" || c.Launcher == nil || c.Launcher.Workflow == nil {
		return false, nil
	}
	x, err := c.Launcher.Workflow.Describe(ctx, a.Execution)
	if err != nil || x.Status == workflow.Running || x.Status == "" {
		return false, nil // unknown to the engine (a child named, not an id), or running
	}
	closed := false
	now := c.DB.Now()
	na, err := c.DB.UpdateAction(ctx, a.ID, func(y *model.Action) error {
		if y.Status != model.ActionRunning {
			return nil
		}
		closed = true
		y.Status, y.FinishedAt = model.ActionFailed, &now
		if y.Error == nil {
			y.Error = &model.ActionError{Error: x.Error, Cause: fmt.Sprintf("the workflow ended %s without closing its action: %s", x.Status, x.Cause)}
		}
		return nil
	})
	if err != nil || !closed {
		return false, err
	}
	if err := c.policyService().Release(ctx, &na); err != nil {
		c.Log.Warn("release what an orphaned action held", "action", na.ID, "err", err)
	}
	_ = c.DB.Emit(ctx, model.Event{Type: "action.failed", Level: model.LevelError, TopologyID: na.TopologyID, ComponentID: na.ComponentID,
		NodeID: na.NodeID, ActionID: na.ID, Tenant: na.Tenant, Message: fmt.Sprintf("action %s (%s): %s", na.ID, na.Kind, na.Error.Cause)})
	return true, c.raiseFailed(ctx, &na)
}
