package db

import (
	"context"
	"time"

	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
)

// EventRetention is how long events are kept.
const EventRetention = 90 * 24 * time.Hour

// Emit appends an event to the timeline. Events are best effort for callers that must
// not fail because of them; the error is returned for those that care.
func (d *DB) Emit(ctx context.Context, e model.Event) error {
	if e.At.IsZero() {
		e.At = d.Now()
	}
	if e.ID == "" {
		e.ID = store.SortTime(e.At) + "-" + NewID("ev")[3:]
	}
	if e.Level == "" {
		e.Level = model.LevelInfo
	}
	r, err := EventRecord(&e)
	if err != nil {
		return err
	}
	r.Expires = e.At.Add(EventRetention)
	return d.S.Write(ctx, store.Put(r, store.Absent))
}

// EventFilter selects events.
type EventFilter struct {
	Tenant      string // required unless TopologyID or ActionID is set
	TopologyID  string
	ComponentID string
	NodeID      string
	ActionID    string
	Level       string
	Type        string
	Since       time.Time
	Until       time.Time
	Limit       int
	Marker      string
}

// Events lists events, newest last, with a marker for the next page.
func (d *DB) Events(ctx context.Context, f EventFilter) ([]model.Event, string, error) {
	q := store.Query{Limit: f.Limit, After: f.Marker}
	switch {
	case f.ActionID != "":
		q.Index, q.Part = store.IdxParent, f.ActionID
	case f.TopologyID != "":
		q.Index, q.Part = store.IdxTopology, f.TopologyID
	default:
		q.Index, q.Part = store.IdxTenant, f.Tenant
	}
	if !f.Since.IsZero() {
		q.From = store.SortTime(f.Since)
	}
	if !f.Until.IsZero() {
		q.To = store.SortTime(f.Until)
	}
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 100
	}
	limit := q.Limit
	var out []model.Event
	for {
		// Ask only for what is still missing, so that the store's marker stays exact
		// even when filters thin pages out.
		q.Limit = limit - len(out)
		recs, next, err := d.S.List(ctx, KindEvent, q)
		if err != nil {
			return nil, "", err
		}
		for _, r := range recs {
			var e model.Event
			if err := store.Decode(r, &e); err != nil {
				return nil, "", err
			}
			if (f.ComponentID != "" && e.ComponentID != f.ComponentID) || (f.NodeID != "" && e.NodeID != f.NodeID) ||
				(f.Level != "" && e.Level != f.Level) || (f.Type != "" && e.Type != f.Type) ||
				(f.TopologyID != "" && e.TopologyID != f.TopologyID) || (f.Tenant != "" && e.Tenant != f.Tenant) {
				continue
			}
			out = append(out, e)
		}
		if next == "" || len(out) >= limit {
			return out, next, nil
		}
		q.After = next
	}
}
