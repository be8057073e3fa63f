// Package asltest has test doubles for the asl interpreter: an in-memory store.Store
// for pure-logic tests and a wrapper that "kills the process" at a chosen write.
package asltest

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/straas/straas/shared/store"
)

// MemStore is an in-memory store.Store. Expired records are invisible (wall clock).
type MemStore struct {
	mu   sync.Mutex
	recs map[string]map[string]store.Record
}

var _ store.Store = (*MemStore)(nil)

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{recs: map[string]map[string]store.Record{}} }

func clone(r store.Record) store.Record {
	r.Data = append([]byte(nil), r.Data...)
	if r.Index != nil {
		ix := make(map[string]store.IndexKey, len(r.Index))
		for k, v := range r.Index {
			ix[k] = v
		}
		r.Index = ix
	}
	return r
}

func (m *MemStore) Get(ctx context.Context, kind, id string) (store.Record, error) {
	if err := ctx.Err(); err != nil {
		return store.Record{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[kind][id]
	if !ok || expired(r) {
		return store.Record{}, store.NotFound(kind, id)
	}
	return clone(r), nil
}

func (m *MemStore) Write(ctx context.Context, ops ...store.Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := store.ValidateOps(ops); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, op := range ops {
		r := op.Record
		cur, exists := m.recs[r.Kind][r.ID]
		exists = exists && !expired(cur)
		ok := true
		switch op.Cond {
		case store.Absent:
			ok = !exists
		case store.Present:
			ok = exists
		case store.AtVersion:
			ok = exists && cur.Version == r.Version
		}
		if !ok {
			return store.ConditionFailed(r.Kind, r.ID)
		}
	}
	for _, op := range ops {
		r := op.Record
		if m.recs[r.Kind] == nil {
			m.recs[r.Kind] = map[string]store.Record{}
		}
		if op.Delete {
			delete(m.recs[r.Kind], r.ID)
			continue
		}
		cur, exists := m.recs[r.Kind][r.ID]
		exists = exists && !expired(cur)
		nr := clone(r)
		nr.Version = 1
		if exists {
			nr.Version = cur.Version + 1
		}
		m.recs[r.Kind][r.ID] = nr
	}
	return nil
}

func (m *MemStore) List(ctx context.Context, kind string, q store.Query) ([]store.Record, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if err := store.ValidateQuery(kind, q); err != nil {
		return nil, "", err
	}
	m.mu.Lock()
	type item struct {
		key string
		r   store.Record
	}
	var items []item
	for id, r := range m.recs[kind] {
		if expired(r) {
			continue
		}
		sortKey := id
		if q.Index != "" {
			k, ok := r.Index[q.Index]
			if !ok || k.Part != q.Part {
				continue
			}
			sortKey = k.Sort
		}
		if (q.From != "" && sortKey < q.From) || (q.To != "" && sortKey >= q.To) {
			continue
		}
		items = append(items, item{key: sortKey + "\x00" + id, r: clone(r)})
	}
	m.mu.Unlock()
	sort.Slice(items, func(i, j int) bool { return items[i].key < items[j].key })
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	var out []store.Record
	next := ""
	for _, it := range items {
		if q.After != "" && it.key <= q.After {
			continue
		}
		if len(out) == limit {
			next = lastKey(q, out[len(out)-1])
			break
		}
		out = append(out, it.r)
	}
	return out, next, nil
}

func lastKey(q store.Query, r store.Record) string {
	if q.Index != "" {
		return r.Index[q.Index].Sort + "\x00" + r.ID
	}
	return r.ID + "\x00" + r.ID
}

func (m *MemStore) Close() error { return nil }

func expired(r store.Record) bool { return !r.Expires.IsZero() && !time.Now().Before(r.Expires) }

// Count returns how many records of kind exist (with an id prefix, if given).
func (m *MemStore) Count(kind, prefix string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id := range m.recs[kind] {
		if strings.HasPrefix(id, prefix) {
			n++
		}
	}
	return n
}

// ErrKilled is what a Killable store returns once killed.
var ErrKilled = errors.New("asltest: process killed")

// Killable wraps a store so that a test can "kill the process" at an exact write: after
// Kill (or after the write countdown set by KillAfter runs out) no write reaches the
// store any more, as if the process had died right there.
type Killable struct {
	store.Store
	left   atomic.Int64 // writes still allowed; < 0: unlimited
	killed atomic.Bool
	writes atomic.Int64
}

// NewKillable wraps s.
func NewKillable(s store.Store) *Killable {
	k := &Killable{Store: s}
	k.left.Store(-1)
	return k
}

// KillAfter lets n more writes through, then kills.
func (k *Killable) KillAfter(n int64) { k.left.Store(n) }

// Kill stops every later write.
func (k *Killable) Kill() { k.killed.Store(true) }

// Killed reports whether the store has been killed.
func (k *Killable) Killed() bool { return k.killed.Load() }

// Writes counts the writes that went through.
func (k *Killable) Writes() int64 { return k.writes.Load() }

func (k *Killable) Write(ctx context.Context, ops ...store.Op) error {
	if k.killed.Load() {
		return ErrKilled
	}
	for {
		n := k.left.Load()
		if n < 0 {
			break
		}
		if n == 0 {
			k.killed.Store(true)
			return ErrKilled
		}
		if k.left.CompareAndSwap(n, n-1) {
			break
		}
	}
	if err := k.Store.Write(ctx, ops...); err != nil {
		return err
	}
	k.writes.Add(1)
	return nil
}

// Close does not close the wrapped store: the next "process" opens it again.
func (k *Killable) Close() error { return nil }
