// Package store is the port to straas's durable state: JSON records with optimistic
// versions, atomic multi-record writes and a few secondary indexes. Adapters: bolt
// (embedded, bbolt file) and dynamodb (single table). Both pass storetest.Run.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/straas/straas/shared/errs"
)

// Index names a record may be placed in. Adapters know exactly these (DynamoDB maps each
// to a GSI), so a new index is a schema change: add it here and in both adapters.
const (
	IdxTenant   = "tenant"   // Part: tenant (project) id
	IdxParent   = "parent"   // Part: owning record's id (topology of a component, component of a node, ...)
	IdxTopology = "topology" // Part: topology id (nodes, events, actions of a topology)
	IdxDue      = "due"      // Part: a queue name such as "lease"; Sort: a time (SortTime) at which something falls due
)

// Indexes lists every index name adapters must support.
var Indexes = []string{IdxTenant, IdxParent, IdxTopology, IdxDue}

// IndexKey places a record in an index: found by exact Part, ordered by Sort then ID.
type IndexKey struct {
	Part string `json:"part"`
	Sort string `json:"sort,omitempty"`
}

// Record is one stored item.
type Record struct {
	Kind    string              // the record type, e.g. "topology"; a namespace for ID
	ID      string              // unique within Kind
	Version int64               // set by the store: 1 on create, +1 on every write
	Index   map[string]IndexKey // index name -> key; names from Indexes
	Data    []byte              // the JSON document
	Expires time.Time           // zero: never; once past, the record is invisible and removed eventually
}

// Cond is the precondition of a write.
type Cond uint8

const (
	Any       Cond = iota // unconditional
	Absent                // the record must not exist (create)
	Present               // the record must exist
	AtVersion             // the record must exist with exactly Record.Version
)

// Op is one part of an atomic Write.
type Op struct {
	Delete bool
	Record Record // for Delete only Kind, ID and (with AtVersion) Version are used
	Cond   Cond
}

// Put returns an op writing r under cond.
func Put(r Record, cond Cond) Op { return Op{Record: r, Cond: cond} }

// Del returns an op deleting kind/id under cond (version is used with AtVersion).
func Del(kind, id string, cond Cond, version int64) Op {
	return Op{Delete: true, Record: Record{Kind: kind, ID: id, Version: version}, Cond: cond}
}

// Query selects records of one kind.
type Query struct {
	Index string // "" lists all records of the kind ordered by ID
	Part  string // required with Index
	From  string // inclusive lower bound on Sort (on ID without Index); "" = unbounded
	To    string // exclusive upper bound on Sort (on ID without Index); "" = unbounded
	Limit int    // 0 = adapter default (100); adapters may return fewer and a marker
	After string // opaque marker returned by the previous page
}

// Store is the port. Implementations are safe for concurrent use.
type Store interface {
	// Get returns the record or an errs.NotFound error.
	Get(ctx context.Context, kind, id string) (Record, error)
	// Write applies all ops atomically, or none of them: a failed condition is an
	// errs.Conflict error wrapping ErrCondition.
	Write(ctx context.Context, ops ...Op) error
	// List returns one page of records matching q and a marker for the next page ("" at the end).
	List(ctx context.Context, kind string, q Query) ([]Record, string, error)
	Close() error
}

// ErrCondition is wrapped by the error of a Write whose precondition failed.
var ErrCondition = errors.New("write condition failed")

// ConditionFailed returns the error adapters report for a failed precondition.
func ConditionFailed(kind, id string) error {
	return &errs.Error{Kind: errs.Conflict, Op: "write " + kind + "/" + id, Err: ErrCondition}
}

// NotFound returns the error adapters report for a missing record.
func NotFound(kind, id string) error {
	return &errs.Error{Kind: errs.NotFound, Msg: kind + " " + id + " not found"}
}

// ValidateOps checks what every adapter requires of ops before touching storage.
func ValidateOps(ops []Op) error {
	seen := make(map[[2]string]bool, len(ops))
	for _, op := range ops {
		r := op.Record
		if r.Kind == "" || r.ID == "" {
			return fmt.Errorf("store write: empty kind or id (%q/%q)", r.Kind, r.ID)
		}
		k := [2]string{r.Kind, r.ID}
		if seen[k] {
			return fmt.Errorf("store write: %s/%s appears twice in one write", r.Kind, r.ID)
		}
		seen[k] = true
		for name := range r.Index {
			if !knownIndex(name) {
				return fmt.Errorf("store write %s/%s: unknown index %q", r.Kind, r.ID, name)
			}
		}
	}
	return nil
}

func knownIndex(name string) bool {
	for _, n := range Indexes {
		if n == name {
			return true
		}
	}
	return false
}

// ValidateQuery checks a query before it reaches an adapter.
func ValidateQuery(kind string, q Query) error {
	if kind == "" {
		return errors.New("store list: empty kind")
	}
	if q.Index != "" && !knownIndex(q.Index) {
		return fmt.Errorf("store list %s: unknown index %q", kind, q.Index)
	}
	if q.Index != "" && q.Part == "" {
		return fmt.Errorf("store list %s: index %q needs a part", kind, q.Index)
	}
	return nil
}

// SortTime renders t so that string order is time order (for IndexKey.Sort).
func SortTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z") }

// Update reads kind/id, lets fn change it, and writes it back if nobody wrote in between,
// retrying a few times on a race. fn may be called more than once. It returns the
// record as written (with its new Version).
func Update(ctx context.Context, s Store, kind, id string, fn func(r *Record) error) (Record, error) {
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		r, err := s.Get(ctx, kind, id)
		if err != nil {
			return Record{}, err
		}
		if err := fn(&r); err != nil {
			return Record{}, err
		}
		err = s.Write(ctx, Put(r, AtVersion))
		if err == nil {
			r.Version++
			return r, nil
		}
		if !errors.Is(err, ErrCondition) {
			return Record{}, err
		}
		lastErr = err
		// Back off a little, with jitter, so racing writers spread out.
		d := time.Duration(rand.IntN(1<<min(attempt, 8))) * 100 * time.Microsecond
		select {
		case <-ctx.Done():
			return Record{}, ctx.Err()
		case <-time.After(d):
		}
	}
	return Record{}, fmt.Errorf("update %s/%s: too many concurrent writers: %w", kind, id, lastErr)
}

// Decode unmarshals r.Data into v.
func Decode(r Record, v any) error {
	if err := json.Unmarshal(r.Data, v); err != nil {
		return fmt.Errorf("decode %s/%s: %w", r.Kind, r.ID, err)
	}
	return nil
}

// Encode marshals v into a record of kind/id.
func Encode(kind, id string, v any) (Record, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Record{}, fmt.Errorf("encode %s/%s: %w", kind, id, err)
	}
	return Record{Kind: kind, ID: id, Data: b}, nil
}

// Load gets kind/id and decodes it into a T.
func Load[T any](ctx context.Context, s Store, kind, id string) (T, Record, error) {
	var v T
	r, err := s.Get(ctx, kind, id)
	if err != nil {
		return v, r, err
	}
	err = Decode(r, &v)
	return v, r, err
}

// All pages through a query, decoding every record into a T.
func All[T any](ctx context.Context, s Store, kind string, q Query) ([]T, error) {
	var out []T
	for {
		recs, next, err := s.List(ctx, kind, q)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			var v T
			if err := Decode(r, &v); err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		if next == "" {
			return out, nil
		}
		q.After = next
	}
}
