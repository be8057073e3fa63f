// Package db is typed access to straas's domain records (topologies, components, nodes,
// leases, actions, stages, events, ...) over the store port. It decides record kinds and
// index keys, in one place, so the API, stages, conductor and checker agree.
package db

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
)

// Record kinds.
const (
	KindTopology     = "topology"
	KindTopologyName = "topology_name" // uniqueness claim on name@az
	KindComponent    = "component"
	KindNode         = "node"
	KindLease        = "lease"
	KindAction       = "action"
	KindStage        = "stage"
	KindBatch        = "batch"
	KindDepWait      = "depwait"
	KindEvent        = "event"
	KindIdempotency  = "idempotency"
)

// DB wraps a store with typed operations.
type DB struct {
	S     store.Store
	Clock clock.Clock
}

// New returns a DB over s.
func New(s store.Store, c clock.Clock) *DB {
	if c == nil {
		c = clock.Real{}
	}
	return &DB{S: s, Clock: c}
}

// Now is the DB's clock reading, truncated to microseconds for stable JSON.
func (d *DB) Now() time.Time { return d.Clock.Now().UTC().Truncate(time.Microsecond) }

var idSeq atomic.Uint64

// NewID returns a time-ordered unique id with a prefix: <prefix>-<unix ms hex><seq><random>.
func NewID(prefix string) string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%011x%04x%s", prefix, time.Now().UnixMilli(), idSeq.Add(1)&0xffff, hex.EncodeToString(b[:]))
}

func pad(n int) string { return fmt.Sprintf("%08d", n) }

// --- records of each kind ---------------------------------------------------------

// TopologyRecord encodes t with its indexes.
func TopologyRecord(t *model.Topology) (store.Record, error) {
	r, err := store.Encode(KindTopology, t.ID, t)
	r.Index = map[string]store.IndexKey{store.IdxTenant: {Part: t.Tenant, Sort: t.Name + "@" + t.AvailabilityZone}}
	return r, err
}

// NameClaimRecord reserves name@az for topology id.
func NameClaimRecord(t *model.Topology) store.Record {
	return store.Record{Kind: KindTopologyName, ID: model.Branch(t.Name, t.AvailabilityZone), Data: []byte(`{"topology_id":"` + t.ID + `"}`)}
}

// ComponentRecord encodes c with its indexes.
func ComponentRecord(c *model.Component) (store.Record, error) {
	r, err := store.Encode(KindComponent, c.ID, c)
	r.Index = map[string]store.IndexKey{store.IdxParent: {Part: c.TopologyID, Sort: pad(c.Order)}}
	return r, err
}

// NodeRecord encodes n with its indexes.
func NodeRecord(n *model.Node) (store.Record, error) {
	r, err := store.Encode(KindNode, n.ID, n)
	r.Index = map[string]store.IndexKey{
		store.IdxParent:   {Part: n.ComponentID, Sort: pad(n.Index)},
		store.IdxTopology: {Part: n.TopologyID, Sort: n.ComponentID + "/" + pad(n.Index)},
	}
	return r, err
}

// LeaseRecord encodes l; the due index orders leases by last sight for stale scans.
func LeaseRecord(l *model.Lease) (store.Record, error) {
	r, err := store.Encode(KindLease, l.NodeID, l)
	r.Index = map[string]store.IndexKey{store.IdxTopology: {Part: l.TopologyID}}
	if !l.Stale { // flagged leases leave the scan until the node reports again
		r.Index[store.IdxDue] = store.IndexKey{Part: DueLease, Sort: store.SortTime(l.LastSeen)}
	}
	return r, err
}

// ActionRecord encodes a with its indexes.
func ActionRecord(a *model.Action) (store.Record, error) {
	r, err := store.Encode(KindAction, a.ID, a)
	r.Index = map[string]store.IndexKey{store.IdxTenant: {Part: a.Tenant, Sort: store.SortTime(a.CreatedAt)}}
	if a.TopologyID != "" {
		r.Index[store.IdxTopology] = store.IndexKey{Part: a.TopologyID, Sort: store.SortTime(a.CreatedAt)}
	}
	if a.Status == model.ActionPending && a.Execution == "" {
		// An outbox: an action whose workflow was not started yet (the process died between
		// writing it and starting it) is found here and started by the checker.
		r.Index[store.IdxDue] = store.IndexKey{Part: DuePendingAction, Sort: store.SortTime(a.CreatedAt)}
	}
	return r, err
}

// DueLease is the IdxDue part of leases, sorted by last sight: stale ones come first.
const DueLease = "lease"

// DuePendingAction is the IdxDue part of actions not yet started.
const DuePendingAction = "action_pending"

// StageID is the record id of a stage of a component within an action.
func StageID(actionID, componentID, stage string) string {
	return actionID + "/" + componentID + "/" + stage
}

// StageRecord encodes s.
func StageRecord(s *model.Stage) (store.Record, error) {
	r, err := store.Encode(KindStage, StageID(s.ActionID, s.ComponentID, s.Name), s)
	r.Index = map[string]store.IndexKey{store.IdxParent: {Part: s.ActionID, Sort: store.SortTime(s.StartedAt)}}
	return r, err
}

// EventRecord encodes e.
func EventRecord(e *model.Event) (store.Record, error) {
	r, err := store.Encode(KindEvent, e.ID, e)
	r.Index = map[string]store.IndexKey{}
	if e.Tenant != "" {
		r.Index[store.IdxTenant] = store.IndexKey{Part: e.Tenant, Sort: e.ID}
	}
	if e.TopologyID != "" {
		r.Index[store.IdxTopology] = store.IndexKey{Part: e.TopologyID, Sort: e.ID}
	}
	if e.ActionID != "" {
		r.Index[store.IdxParent] = store.IndexKey{Part: e.ActionID, Sort: e.ID}
	}
	return r, err
}

// --- reads ------------------------------------------------------------------------

// Topology loads a topology.
func (d *DB) Topology(ctx context.Context, id string) (model.Topology, store.Record, error) {
	t, r, err := store.Load[model.Topology](ctx, d.S, KindTopology, id)
	if errs.Is(err, errs.NotFound) {
		err = errs.NotFoundf("topology %s not found", id)
	}
	return t, r, err
}

// Component loads a component.
func (d *DB) Component(ctx context.Context, id string) (model.Component, store.Record, error) {
	c, r, err := store.Load[model.Component](ctx, d.S, KindComponent, id)
	if errs.Is(err, errs.NotFound) {
		err = errs.NotFoundf("component %s not found", id)
	}
	return c, r, err
}

// Node loads a node.
func (d *DB) Node(ctx context.Context, id string) (model.Node, store.Record, error) {
	n, r, err := store.Load[model.Node](ctx, d.S, KindNode, id)
	if errs.Is(err, errs.NotFound) {
		err = errs.NotFoundf("node %s not found", id)
	}
	return n, r, err
}

// Action loads an action.
func (d *DB) Action(ctx context.Context, id string) (model.Action, store.Record, error) {
	a, r, err := store.Load[model.Action](ctx, d.S, KindAction, id)
	if errs.Is(err, errs.NotFound) {
		err = errs.NotFoundf("action %s not found", id)
	}
	return a, r, err
}

// Components lists a topology's components in request order.
func (d *DB) Components(ctx context.Context, topologyID string) ([]model.Component, error) {
	return store.All[model.Component](ctx, d.S, KindComponent, store.Query{Index: store.IdxParent, Part: topologyID})
}

// Nodes lists a component's nodes by index.
func (d *DB) Nodes(ctx context.Context, componentID string) ([]model.Node, error) {
	return store.All[model.Node](ctx, d.S, KindNode, store.Query{Index: store.IdxParent, Part: componentID})
}

// TopologyNodes lists all nodes of a topology.
func (d *DB) TopologyNodes(ctx context.Context, topologyID string) ([]model.Node, error) {
	return store.All[model.Node](ctx, d.S, KindNode, store.Query{Index: store.IdxTopology, Part: topologyID})
}

// Lease loads a node's lease; a node that never reported has none (NotFound).
func (d *DB) Lease(ctx context.Context, nodeID string) (model.Lease, error) {
	l, _, err := store.Load[model.Lease](ctx, d.S, KindLease, nodeID)
	return l, err
}

// Stages lists an action's stages in start order.
func (d *DB) Stages(ctx context.Context, actionID string) ([]model.Stage, error) {
	return store.All[model.Stage](ctx, d.S, KindStage, store.Query{Index: store.IdxParent, Part: actionID})
}

// --- writes -----------------------------------------------------------------------

// update applies fn to the record kind/id decoded as a T, re-encodes it with enc (which
// sets its indexes) and writes it back under optimistic concurrency.
func update[T any](ctx context.Context, d *DB, kind, id string, enc func(*T) (store.Record, error), fn func(*T) error) (T, error) {
	var out T
	_, err := store.Update(ctx, d.S, kind, id, func(r *store.Record) error {
		var v T
		if err := store.Decode(*r, &v); err != nil {
			return err
		}
		if err := fn(&v); err != nil {
			return err
		}
		nr, err := enc(&v)
		if err != nil {
			return err
		}
		nr.Version = r.Version
		*r = nr
		out = v
		return nil
	})
	return out, err
}

// UpdateTopology applies fn to a topology under optimistic concurrency.
func (d *DB) UpdateTopology(ctx context.Context, id string, fn func(*model.Topology) error) (model.Topology, error) {
	return update(ctx, d, KindTopology, id, TopologyRecord, func(t *model.Topology) error {
		if err := fn(t); err != nil {
			return err
		}
		t.UpdatedAt = d.Now()
		return nil
	})
}

// UpdateComponent applies fn to a component under optimistic concurrency.
func (d *DB) UpdateComponent(ctx context.Context, id string, fn func(*model.Component) error) (model.Component, error) {
	return update(ctx, d, KindComponent, id, ComponentRecord, func(c *model.Component) error {
		if err := fn(c); err != nil {
			return err
		}
		c.UpdatedAt = d.Now()
		return nil
	})
}

// UpdateNode applies fn to a node under optimistic concurrency.
func (d *DB) UpdateNode(ctx context.Context, id string, fn func(*model.Node) error) (model.Node, error) {
	return update(ctx, d, KindNode, id, NodeRecord, func(n *model.Node) error {
		if err := fn(n); err != nil {
			return err
		}
		n.UpdatedAt = d.Now()
		return nil
	})
}

// UpdateAction applies fn to an action under optimistic concurrency.
func (d *DB) UpdateAction(ctx context.Context, id string, fn func(*model.Action) error) (model.Action, error) {
	return update(ctx, d, KindAction, id, ActionRecord, fn)
}

// PutNode writes a node unconditionally.
func (d *DB) PutNode(ctx context.Context, n *model.Node) error {
	r, err := NodeRecord(n)
	if err != nil {
		return err
	}
	return d.S.Write(ctx, store.Put(r, store.Any))
}

// PutStage writes a stage record.
func (d *DB) PutStage(ctx context.Context, s *model.Stage) error {
	r, err := StageRecord(s)
	if err != nil {
		return err
	}
	return d.S.Write(ctx, store.Put(r, store.Any))
}

// UpdateStage applies fn to a stage record, creating it when absent.
func (d *DB) UpdateStage(ctx context.Context, actionID, componentID, stage string, fn func(*model.Stage)) (model.Stage, error) {
	id := StageID(actionID, componentID, stage)
	for attempt := 0; ; attempt++ {
		out, err := update(ctx, d, KindStage, id, StageRecord, func(s *model.Stage) error { fn(s); return nil })
		if errs.Is(err, errs.NotFound) && attempt == 0 {
			s := model.Stage{ActionID: actionID, ComponentID: componentID, Name: stage, StartedAt: d.Now(), Status: "RUNNING"}
			fn(&s)
			r, err := StageRecord(&s)
			if err != nil {
				return s, err
			}
			if err := d.S.Write(ctx, store.Put(r, store.Absent)); err == nil {
				return s, nil
			} else if !errs.Is(err, errs.Conflict) {
				return s, err
			}
			continue // someone created it meanwhile: update theirs
		}
		return out, err
	}
}
