// Package storetest is the conformance suite of the store port: every adapter (bolt,
// dynamodb) runs Run against itself, in the manner of testing/fstest.TestFS.
//
// The suite is adapter-neutral. Every subtest works in kinds of its own (random names),
// so a factory may hand out one shared backend (one DynamoDB table) or a fresh one per
// subtest. Get after Write and List without an index must be exact at once; queries on
// an index are polled until they match or a deadline passes, since DynamoDB's GSIs are
// eventually consistent.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/store"
)

// IndexDeadline bounds how long the suite polls an index query for a write to show.
var IndexDeadline = 15 * time.Second

// Run runs the whole contract against stores made by newStore. newStore is called once
// per subtest; it should register any cleanup (Close, table deletion) with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"GetMissing", testGetMissing},
		{"RoundTrip", testRoundTrip},
		{"Versions", testVersions},
		{"PutConditions", testPutConditions},
		{"DeleteConditions", testDeleteConditions},
		{"Atomicity", testAtomicity},
		{"PutReplacesRecord", testPutReplaces},
		{"KindsIsolated", testKindsIsolated},
		{"ListByID", testListByID},
		{"ListByIndex", testListByIndex},
		{"Paging", testPaging},
		{"PagingWhileWriting", testPagingWhileWriting},
		{"IndexMoves", testIndexMoves},
		{"Expires", testExpires},
		{"ExpiresLater", testExpiresLater},
		{"Update", testUpdate},
		{"UpdateConcurrent", testUpdateConcurrent},
		{"Validation", testValidation},
		{"LargeData", testLargeData},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			tc.fn(t, s)
		})
	}
}

// --- helpers --------------------------------------------------------------------------

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newKind returns a kind no other subtest (or earlier run on a shared backend) uses.
func newKind(t *testing.T) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "st" + hex.EncodeToString(b[:])
}

func doc(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with literal maps of strings and numbers
	}
	return b
}

func rec(kind, id string, data any) store.Record {
	return store.Record{Kind: kind, ID: id, Data: doc(data)}
}

func mustWrite(t *testing.T, s store.Store, ops ...store.Op) {
	t.Helper()
	if err := s.Write(ctxFor(t), ops...); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func mustGet(t *testing.T, s store.Store, kind, id string) store.Record {
	t.Helper()
	r, err := s.Get(ctxFor(t), kind, id)
	if err != nil {
		t.Fatalf("Get %s/%s: %v", kind, id, err)
	}
	return r
}

func wantMissing(t *testing.T, s store.Store, kind, id string) {
	t.Helper()
	r, err := s.Get(ctxFor(t), kind, id)
	if err == nil {
		t.Fatalf("Get %s/%s: got version %d, want not found", kind, id, r.Version)
	}
	if !errs.Is(err, errs.NotFound) {
		t.Fatalf("Get %s/%s: got error %v (kind %v), want kind not_found", kind, id, err, errs.KindOf(err))
	}
}

func wantVersion(t *testing.T, s store.Store, kind, id string, v int64) store.Record {
	t.Helper()
	r := mustGet(t, s, kind, id)
	if r.Version != v {
		t.Fatalf("%s/%s: got version %d, want %d", kind, id, r.Version, v)
	}
	return r
}

func wantCondition(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("Write: got nil error, want a failed condition")
	}
	if !errs.Is(err, errs.Conflict) {
		t.Fatalf("Write: got %v (kind %v), want kind conflict", err, errs.KindOf(err))
	}
	if !errors.Is(err, store.ErrCondition) {
		t.Fatalf("Write: got %v, want it to wrap store.ErrCondition", err)
	}
}

// listAll pages through q, checking page sizes, markers and strict order.
func listAll(t *testing.T, s store.Store, kind string, q store.Query) []store.Record {
	t.Helper()
	out, err := tryListAll(ctxFor(t), s, kind, q)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func tryListAll(ctx context.Context, s store.Store, kind string, q store.Query) ([]store.Record, error) {
	var out []store.Record
	for page := 0; ; page++ {
		if page > 10000 {
			return nil, fmt.Errorf("List %s %+v: more than 10000 pages; marker never ends", kind, q)
		}
		recs, next, err := s.List(ctx, kind, q)
		if err != nil {
			return nil, fmt.Errorf("List %s %+v: %w", kind, q, err)
		}
		limit := q.Limit
		if limit == 0 {
			limit = 100
		}
		if len(recs) > limit {
			return nil, fmt.Errorf("List %s %+v: page of %d records, over the limit %d", kind, q, len(recs), limit)
		}
		for _, r := range recs {
			if r.Kind != kind {
				return nil, fmt.Errorf("List %s: got a record of kind %q", kind, r.Kind)
			}
		}
		out = append(out, recs...)
		if next == "" {
			break
		}
		if next == q.After {
			return nil, fmt.Errorf("List %s %+v: marker did not advance", kind, q)
		}
		q.After = next
	}
	if err := checkOrder(out, q.Index); err != nil {
		return nil, fmt.Errorf("List %s %+v: %w", kind, q, err)
	}
	return out, nil
}

// checkOrder verifies strict order by ID, or by (Sort, ID) on an index: strictness also
// rules out duplicates across pages.
func checkOrder(recs []store.Record, index string) error {
	for i := 1; i < len(recs); i++ {
		a, b := recs[i-1], recs[i]
		var less bool
		if index == "" {
			less = a.ID < b.ID
		} else {
			as, bs := a.Index[index].Sort, b.Index[index].Sort
			less = as < bs || (as == bs && a.ID < b.ID)
		}
		if !less {
			return fmt.Errorf("records out of order or repeated at %d: %q then %q", i, a.ID, b.ID)
		}
	}
	return nil
}

func ids(recs []store.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// eventuallyIDs polls q until it lists exactly want (in order), for index queries.
func eventuallyIDs(t *testing.T, s store.Store, kind string, q store.Query, want []string) []store.Record {
	t.Helper()
	ctx := ctxFor(t)
	deadline := time.Now().Add(IndexDeadline)
	for {
		recs, err := tryListAll(ctx, s, kind, q)
		if err != nil {
			t.Fatal(err)
		}
		got := ids(recs)
		if slices.Equal(got, want) || len(got) == 0 && len(want) == 0 {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("List %s %+v: got %q, want %q (waited %v)", kind, q, got, want, IndexDeadline)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func wantIDs(t *testing.T, s store.Store, kind string, q store.Query, want ...string) []store.Record {
	t.Helper()
	if q.Index != "" {
		return eventuallyIDs(t, s, kind, q, want)
	}
	recs := listAll(t, s, kind, q)
	if got := ids(recs); !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("List %s %+v: got %q, want %q", kind, q, got, want)
	}
	return recs
}

func sameIndex(a, b map[string]store.IndexKey) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// --- subtests -------------------------------------------------------------------------

func testGetMissing(t *testing.T, s store.Store) {
	kind, other := newKind(t), newKind(t)
	wantMissing(t, s, kind, "nope")
	mustWrite(t, s, store.Put(rec(other, "x", map[string]int{"n": 1}), store.Any))
	wantMissing(t, s, kind, "x")
}

func testRoundTrip(t *testing.T, s store.Store) {
	kind := newKind(t)
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	full := store.Record{
		Kind:    kind,
		ID:      "full",
		Version: 99, // ignored: the store sets versions
		Index: map[string]store.IndexKey{
			store.IdxTenant:   {Part: "tenant-1", Sort: "b"},
			store.IdxParent:   {Part: "parent-1"},
			store.IdxTopology: {Part: "topo-1", Sort: "2"},
			store.IdxDue:      {Part: "lease", Sort: store.SortTime(exp)},
		},
		Data:    doc(map[string]any{"name": "full", "n": 7, "nested": map[string]string{"k": "v"}}),
		Expires: exp,
	}
	plain := rec(kind, "plain", map[string]string{"a": "b"})
	mustWrite(t, s, store.Put(full, store.Any), store.Put(plain, store.Absent))

	tests := []struct {
		in store.Record
	}{{full}, {plain}}
	for _, tc := range tests {
		got := mustGet(t, s, kind, tc.in.ID)
		if got.Kind != kind || got.ID != tc.in.ID {
			t.Errorf("Get %s: got %s/%s", tc.in.ID, got.Kind, got.ID)
		}
		if got.Version != 1 {
			t.Errorf("Get %s: got version %d, want 1", tc.in.ID, got.Version)
		}
		if !bytes.Equal(got.Data, tc.in.Data) {
			t.Errorf("Get %s: got data %s, want %s", tc.in.ID, got.Data, tc.in.Data)
		}
		if !sameIndex(got.Index, tc.in.Index) {
			t.Errorf("Get %s: got index %v, want %v", tc.in.ID, got.Index, tc.in.Index)
		}
		if !got.Expires.Equal(tc.in.Expires) {
			t.Errorf("Get %s: got expires %v, want %v", tc.in.ID, got.Expires, tc.in.Expires)
		}
	}
	// List returns the same content as Get.
	recs := wantIDs(t, s, kind, store.Query{}, "full", "plain")
	if !bytes.Equal(recs[0].Data, full.Data) || recs[0].Version != 1 || !sameIndex(recs[0].Index, full.Index) ||
		!recs[0].Expires.Equal(exp) {
		t.Errorf("List: got %+v, want the record as written", recs[0])
	}
	recs = wantIDs(t, s, kind, store.Query{Index: store.IdxTopology, Part: "topo-1"}, "full")
	if !bytes.Equal(recs[0].Data, full.Data) || recs[0].Version != 1 {
		t.Errorf("List by index: got %+v, want the record as written", recs[0])
	}
}

func testVersions(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	kind := newKind(t)
	r := rec(kind, "v", map[string]int{"n": 0})
	steps := []struct {
		name string
		op   func(v int64) store.Op
	}{
		{"create Absent", func(int64) store.Op { return store.Put(r, store.Absent) }},
		{"Put Any", func(int64) store.Op { return store.Put(r, store.Any) }},
		{"Put Any again", func(int64) store.Op { return store.Put(r, store.Any) }},
		{"Put Present", func(int64) store.Op { return store.Put(r, store.Present) }},
		{"Put AtVersion", func(v int64) store.Op { rr := r; rr.Version = v; return store.Put(rr, store.AtVersion) }},
	}
	for i, st := range steps {
		if err := s.Write(ctx, st.op(int64(i))); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		wantVersion(t, s, kind, "v", int64(i+1))
	}
	got, err := store.Update(ctx, s, kind, "v", func(r *store.Record) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != int64(len(steps)+1) {
		t.Fatalf("Update: returned version %d, want %d", got.Version, len(steps)+1)
	}
	wantVersion(t, s, kind, "v", int64(len(steps)+1))
	// Delete and create again: a new record starts at 1.
	mustWrite(t, s, store.Del(kind, "v", store.Any, 0))
	mustWrite(t, s, store.Put(r, store.Absent))
	wantVersion(t, s, kind, "v", 1)
}

func testPutConditions(t *testing.T, s store.Store) {
	tests := []struct {
		name    string
		exists  bool
		cond    store.Cond
		version int64 // for AtVersion; the existing record is at version 2
		ok      bool
	}{
		{"Any/missing", false, store.Any, 0, true},
		{"Any/existing", true, store.Any, 0, true},
		{"Absent/missing", false, store.Absent, 0, true},
		{"Absent/existing", true, store.Absent, 0, false},
		{"Present/missing", false, store.Present, 0, false},
		{"Present/existing", true, store.Present, 0, true},
		{"AtVersion/right", true, store.AtVersion, 2, true},
		{"AtVersion/older", true, store.AtVersion, 1, false},
		{"AtVersion/newer", true, store.AtVersion, 3, false},
		{"AtVersion/zero", true, store.AtVersion, 0, false},
		{"AtVersion/missing", false, store.AtVersion, 1, false},
		{"AtVersion/missing zero", false, store.AtVersion, 0, false},
	}
	ctx := ctxFor(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind := newKind(t)
			idx := map[string]store.IndexKey{store.IdxTenant: {Part: "p", Sort: "old"}}
			if tc.exists {
				old := rec(kind, "r", map[string]string{"v": "old"})
				old.Index = idx
				mustWrite(t, s, store.Put(old, store.Absent))
				mustWrite(t, s, store.Put(old, store.Any)) // now at version 2
			}
			nr := rec(kind, "r", map[string]string{"v": "new"})
			nr.Version = tc.version
			nr.Index = map[string]store.IndexKey{store.IdxTenant: {Part: "p", Sort: "new"}}
			err := s.Write(ctx, store.Put(nr, tc.cond))
			switch {
			case tc.ok && err != nil:
				t.Fatalf("Write: %v, want success", err)
			case tc.ok:
				want := int64(1)
				if tc.exists {
					want = 3
				}
				got := wantVersion(t, s, kind, "r", want)
				if !bytes.Equal(got.Data, nr.Data) {
					t.Fatalf("got data %s, want %s", got.Data, nr.Data)
				}
				wantIDs(t, s, kind, store.Query{Index: store.IdxTenant, Part: "p", From: "new"}, "r")
			default:
				wantCondition(t, err)
				if !tc.exists {
					wantMissing(t, s, kind, "r")
					return
				}
				got := wantVersion(t, s, kind, "r", 2)
				if !strings.Contains(string(got.Data), "old") {
					t.Fatalf("failed write changed data to %s", got.Data)
				}
				if got.Index[store.IdxTenant].Sort != "old" {
					t.Fatalf("failed write changed index to %v", got.Index)
				}
			}
		})
	}
}

func testDeleteConditions(t *testing.T, s store.Store) {
	tests := []struct {
		name    string
		exists  bool
		cond    store.Cond
		version int64 // the existing record is at version 2
		ok      bool
	}{
		{"Any/existing", true, store.Any, 0, true},
		{"Any/missing", false, store.Any, 0, true},
		{"Present/existing", true, store.Present, 0, true},
		{"Present/missing", false, store.Present, 0, false},
		{"AtVersion/right", true, store.AtVersion, 2, true},
		{"AtVersion/wrong", true, store.AtVersion, 1, false},
		{"AtVersion/missing", false, store.AtVersion, 1, false},
	}
	ctx := ctxFor(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kind := newKind(t)
			if tc.exists {
				r := rec(kind, "d", map[string]int{"n": 1})
				r.Index = map[string]store.IndexKey{store.IdxParent: {Part: "p"}}
				mustWrite(t, s, store.Put(r, store.Any))
				mustWrite(t, s, store.Put(r, store.Any))
			}
			err := s.Write(ctx, store.Del(kind, "d", tc.cond, tc.version))
			if !tc.ok {
				wantCondition(t, err)
				if tc.exists {
					wantVersion(t, s, kind, "d", 2)
					wantIDs(t, s, kind, store.Query{Index: store.IdxParent, Part: "p"}, "d")
				} else {
					wantMissing(t, s, kind, "d")
				}
				return
			}
			if err != nil {
				t.Fatalf("Write: %v, want success", err)
			}
			wantMissing(t, s, kind, "d")
			wantIDs(t, s, kind, store.Query{})
			wantIDs(t, s, kind, store.Query{Index: store.IdxParent, Part: "p"})
		})
	}
}

func testAtomicity(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	kind, kind2 := newKind(t), newKind(t)
	exists := rec(kind, "exists", map[string]string{"v": "orig"})
	exists.Index = map[string]store.IndexKey{store.IdxTenant: {Part: "p", Sort: "e"}}
	mustWrite(t, s, store.Put(exists, store.Absent))

	many := func(n int, last store.Op) []store.Op {
		var ops []store.Op
		for i := 0; i < n; i++ {
			r := rec(kind, fmt.Sprintf("many-%02d", i), map[string]int{"i": i})
			r.Index = map[string]store.IndexKey{store.IdxTenant: {Part: "p", Sort: "m"}}
			ops = append(ops, store.Put(r, store.Absent))
		}
		return append(ops, last)
	}
	changed := exists
	changed.Data = doc(map[string]string{"v": "changed"})
	changed.Index = map[string]store.IndexKey{store.IdxTenant: {Part: "p", Sort: "z"}}
	failing := []struct {
		name string
		ops  []store.Op
	}{
		{"new then Absent on existing", []store.Op{
			store.Put(rec(kind, "new", map[string]int{}), store.Absent),
			store.Put(exists, store.Absent)}},
		{"change then Present on missing delete", []store.Op{
			store.Put(changed, store.Any),
			store.Del(kind, "missing", store.Present, 0)}},
		{"delete then AtVersion on missing", []store.Op{
			store.Del(kind, "exists", store.Any, 0),
			store.Put(rec(kind, "other", map[string]int{}), store.AtVersion)}},
		{"other kind then wrong version", []store.Op{
			store.Put(rec(kind2, "x", map[string]int{}), store.Any),
			store.Del(kind, "exists", store.AtVersion, 7)}},
		{"24 creates then a failure", many(24, store.Put(exists, store.Absent))},
	}
	for _, tc := range failing {
		wantCondition(t, s.Write(ctx, tc.ops...))
		got := wantVersion(t, s, kind, "exists", 1)
		if !strings.Contains(string(got.Data), "orig") || got.Index[store.IdxTenant].Sort != "e" {
			t.Fatalf("%s: failed write changed the record to %s %v", tc.name, got.Data, got.Index)
		}
		wantIDs(t, s, kind, store.Query{}, "exists")
		wantIDs(t, s, kind2, store.Query{})
	}
	wantIDs(t, s, kind, store.Query{Index: store.IdxTenant, Part: "p"}, "exists")

	// Success across kinds, mixing conditions: everything lands together.
	changed.Version = 1
	mustWrite(t, s,
		store.Put(rec(kind, "a", map[string]int{"n": 1}), store.Absent),
		store.Put(rec(kind2, "a", map[string]int{"n": 2}), store.Absent),
		store.Put(changed, store.AtVersion),
		store.Del(kind, "never", store.Any, 0),
	)
	wantVersion(t, s, kind, "a", 1)
	wantVersion(t, s, kind2, "a", 1)
	if got := wantVersion(t, s, kind, "exists", 2); !strings.Contains(string(got.Data), "changed") {
		t.Fatalf("exists: got data %s after a successful write", got.Data)
	}
	// 25 ops in one write all land.
	mustWrite(t, s, many(24, store.Del(kind, "a", store.Present, 0))...)
	want := []string{"exists"}
	for i := 0; i < 24; i++ {
		want = append(want, fmt.Sprintf("many-%02d", i))
	}
	wantIDs(t, s, kind, store.Query{}, want...)
}

func testPutReplaces(t *testing.T, s store.Store) {
	kind := newKind(t)
	r := rec(kind, "r", map[string]string{"v": "a", "only": "a"})
	r.Index = map[string]store.IndexKey{
		store.IdxTenant: {Part: "t", Sort: "1"},
		store.IdxParent: {Part: "p", Sort: "1"},
	}
	r.Expires = time.Now().Add(time.Hour)
	mustWrite(t, s, store.Put(r, store.Absent))
	wantIDs(t, s, kind, store.Query{Index: store.IdxParent, Part: "p"}, "r")

	r2 := rec(kind, "r", map[string]string{"v": "b"})
	r2.Index = map[string]store.IndexKey{store.IdxTenant: {Part: "t", Sort: "2"}}
	mustWrite(t, s, store.Put(r2, store.Present))
	got := wantVersion(t, s, kind, "r", 2)
	if !bytes.Equal(got.Data, r2.Data) {
		t.Errorf("got data %s, want %s", got.Data, r2.Data)
	}
	if !sameIndex(got.Index, r2.Index) {
		t.Errorf("got index %v, want %v", got.Index, r2.Index)
	}
	if !got.Expires.IsZero() {
		t.Errorf("got expires %v, want none", got.Expires)
	}
	wantIDs(t, s, kind, store.Query{Index: store.IdxParent, Part: "p"})
	wantIDs(t, s, kind, store.Query{Index: store.IdxTenant, Part: "t", From: "2"}, "r")
}

func testKindsIsolated(t *testing.T, s store.Store) {
	a, b := newKind(t), newKind(t)
	ra, rb := rec(a, "same", map[string]string{"k": "a"}), rec(b, "same", map[string]string{"k": "b"})
	ra.Index = map[string]store.IndexKey{store.IdxTopology: {Part: "t", Sort: "1"}}
	rb.Index = map[string]store.IndexKey{store.IdxTopology: {Part: "t", Sort: "1"}}
	mustWrite(t, s, store.Put(ra, store.Absent))
	mustWrite(t, s, store.Put(rb, store.Absent)) // Absent holds: a different kind
	if got := mustGet(t, s, a, "same"); !bytes.Equal(got.Data, ra.Data) {
		t.Fatalf("%s/same: got %s", a, got.Data)
	}
	if got := mustGet(t, s, b, "same"); !bytes.Equal(got.Data, rb.Data) {
		t.Fatalf("%s/same: got %s", b, got.Data)
	}
	recs := wantIDs(t, s, a, store.Query{Index: store.IdxTopology, Part: "t"}, "same")
	if !bytes.Equal(recs[0].Data, ra.Data) {
		t.Fatalf("index of %s lists %s", a, recs[0].Data)
	}
	mustWrite(t, s, store.Del(a, "same", store.Present, 0))
	wantMissing(t, s, a, "same")
	wantVersion(t, s, b, "same", 1)
	wantIDs(t, s, b, store.Query{}, "same")
	wantIDs(t, s, a, store.Query{Index: store.IdxTopology, Part: "t"})
	wantIDs(t, s, b, store.Query{Index: store.IdxTopology, Part: "t"}, "same")
}

func testListByID(t *testing.T, s store.Store) {
	kind, other := newKind(t), newKind(t)
	for _, id := range []string{"j", "c", "a", "B", "e", "a-1", "d", "h", "f", "g", "i", "b", "c0"} {
		mustWrite(t, s, store.Put(rec(kind, id, map[string]string{"id": id}), store.Absent))
	}
	mustWrite(t, s, store.Put(rec(other, "c", map[string]string{}), store.Absent))
	all := []string{"B", "a", "a-1", "b", "c", "c0", "d", "e", "f", "g", "h", "i", "j"}
	tests := []struct {
		q    store.Query
		want []string
	}{
		{store.Query{}, all},
		{store.Query{Limit: 3}, all},
		{store.Query{Limit: 1}, all},
		{store.Query{From: "c"}, all[4:]},
		{store.Query{To: "c"}, all[:4]},
		{store.Query{From: "a-", To: "d"}, []string{"a-1", "b", "c", "c0"}},
		{store.Query{From: "c", To: "c0"}, []string{"c"}},
		{store.Query{From: "c", To: "c0", Limit: 1}, []string{"c"}},
		{store.Query{From: "c", To: "c"}, nil},
		{store.Query{From: "zz"}, nil},
		{store.Query{To: "A"}, nil},
		{store.Query{From: "b", To: "h", Limit: 2}, []string{"b", "c", "c0", "d", "e", "f", "g"}},
	}
	for _, tc := range tests {
		wantIDs(t, s, kind, tc.q, tc.want...)
	}
}

func testListByIndex(t *testing.T, s store.Store) {
	for i, idx := range store.Indexes {
		t.Run(idx, func(t *testing.T) {
			kind := newKind(t)
			otherIdx := store.Indexes[(i+1)%len(store.Indexes)]
			put := func(id string, index map[string]store.IndexKey) {
				r := rec(kind, id, map[string]string{"id": id})
				r.Index = index
				mustWrite(t, s, store.Put(r, store.Absent))
			}
			put("r1", map[string]store.IndexKey{idx: {Part: "p1", Sort: "2"}})
			put("r2", map[string]store.IndexKey{idx: {Part: "p1", Sort: "1"}})
			put("r3", map[string]store.IndexKey{idx: {Part: "p1", Sort: "2"}, otherIdx: {Part: "p1", Sort: "0"}})
			put("r4", map[string]store.IndexKey{idx: {Part: "p1"}})
			put("r5", map[string]store.IndexKey{idx: {Part: "p2", Sort: "1"}})
			put("r6", map[string]store.IndexKey{otherIdx: {Part: "p1", Sort: "1"}})
			put("r7", map[string]store.IndexKey{idx: {Part: "p1x", Sort: "0"}})
			put("r8", map[string]store.IndexKey{idx: {Part: "p1", Sort: "10"}})
			put("r0", map[string]store.IndexKey{idx: {Part: "p1", Sort: "2"}})
			put("r9", nil)
			all := []string{"r4", "r2", "r8", "r0", "r1", "r3"}
			tests := []struct {
				q    store.Query
				want []string
			}{
				{store.Query{Part: "p1"}, all},
				{store.Query{Part: "p1", Limit: 1}, all},
				{store.Query{Part: "p1", Limit: 4}, all},
				{store.Query{Part: "p1", From: "1"}, all[1:]},
				{store.Query{Part: "p1", From: "10"}, all[2:]},
				{store.Query{Part: "p1", To: "10"}, all[:2]},
				{store.Query{Part: "p1", From: "1", To: "2"}, []string{"r2", "r8"}},
				{store.Query{Part: "p1", From: "2", To: "3", Limit: 2}, []string{"r0", "r1", "r3"}},
				{store.Query{Part: "p1", From: "3"}, nil},
				{store.Query{Part: "p2"}, []string{"r5"}},
				{store.Query{Part: "p1x"}, []string{"r7"}},
				{store.Query{Part: "p"}, nil},
				{store.Query{Part: "nobody"}, nil},
			}
			for _, tc := range tests {
				tc.q.Index = idx
				recs := wantIDs(t, s, kind, tc.q, tc.want...)
				for _, r := range recs {
					if !strings.Contains(string(r.Data), r.ID) {
						t.Fatalf("List: record %s carries data %s", r.ID, r.Data)
					}
				}
			}
			wantIDs(t, s, kind, store.Query{Index: otherIdx, Part: "p1"}, "r3", "r6")
		})
	}
}

func testPaging(t *testing.T, s store.Store) {
	kind := newKind(t)
	const n = 25
	var byID, bySort []string
	for i := 0; i < n; i++ {
		r := rec(kind, fmt.Sprintf("p%02d", i), map[string]int{"i": i})
		// Sort order is the reverse of ID order, so a page walked by ID would fail.
		r.Index = map[string]store.IndexKey{store.IdxTenant: {Part: "t", Sort: fmt.Sprintf("%02d", n-i)}}
		mustWrite(t, s, store.Put(r, store.Absent))
		byID = append(byID, r.ID)
		bySort = append([]string{r.ID}, bySort...)
	}
	for _, limit := range []int{0, 1, 4, 24, 25, 26, 1000} {
		wantIDs(t, s, kind, store.Query{Limit: limit}, byID...)
		wantIDs(t, s, kind, store.Query{Index: store.IdxTenant, Part: "t", Limit: limit}, bySort...)
	}
	wantIDs(t, s, kind, store.Query{From: "p05", To: "p15", Limit: 3}, byID[5:15]...)
	wantIDs(t, s, kind, store.Query{Index: store.IdxTenant, Part: "t", From: "05", To: "15", Limit: 3}, bySort[4:14]...)
}

func testPagingWhileWriting(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	kind := newKind(t)
	var orig []string
	for i := 0; i < 40; i += 2 {
		id := fmt.Sprintf("r%02d", i)
		orig = append(orig, id)
		mustWrite(t, s, store.Put(rec(kind, id, map[string]int{"i": i}), store.Absent))
	}
	q := store.Query{Limit: 5}
	var got []store.Record
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatal("List: marker never ends")
		}
		recs, next, err := s.List(ctx, kind, q)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, recs...)
		if page == 0 {
			if len(recs) == 0 || next == "" {
				t.Fatalf("first page: got %d records and marker %q, want some and a marker", len(recs), next)
			}
			// Between pages: one record before the marker, some after it, one
			// deleted ahead and one rewritten ahead.
			mustWrite(t, s, store.Put(rec(kind, "r01", map[string]int{}), store.Absent))
			mustWrite(t, s, store.Put(rec(kind, "r21", map[string]int{}), store.Absent))
			mustWrite(t, s, store.Put(rec(kind, "r99", map[string]int{}), store.Absent))
			mustWrite(t, s, store.Del(kind, "r30", store.Present, 0))
			mustWrite(t, s, store.Put(rec(kind, "r32", map[string]string{"v": "rewritten"}), store.Present))
		}
		if next == "" {
			break
		}
		q.After = next
	}
	if err := checkOrder(got, ""); err != nil {
		t.Fatal(err)
	}
	seen := map[string]store.Record{}
	for _, r := range got {
		seen[r.ID] = r
	}
	for _, id := range orig {
		if _, ok := seen[id]; !ok && id != "r30" {
			t.Errorf("paging lost %s (got %q)", id, ids(got))
		}
	}
	for _, id := range []string{"r21", "r99"} {
		if _, ok := seen[id]; !ok {
			t.Errorf("paging missed %s written ahead of the marker (got %q)", id, ids(got))
		}
	}
	if _, ok := seen["r30"]; ok {
		t.Errorf("paging returned r30, deleted ahead of the marker")
	}
	if r := seen["r32"]; r.Version != 2 || !strings.Contains(string(r.Data), "rewritten") {
		t.Errorf("r32: got version %d data %s, want the rewritten record", r.Version, r.Data)
	}
}

func testIndexMoves(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	kind := newKind(t)
	put := func(id string, cond store.Cond, index map[string]store.IndexKey) {
		r := rec(kind, id, map[string]string{"id": id})
		r.Index = index
		mustWrite(t, s, store.Put(r, cond))
	}
	t1 := store.Query{Index: store.IdxTenant, Part: "t1"}
	t2 := store.Query{Index: store.IdxTenant, Part: "t2"}
	put("a", store.Absent, map[string]store.IndexKey{store.IdxTenant: {Part: "t1", Sort: "1"}})
	put("b", store.Absent, map[string]store.IndexKey{store.IdxTenant: {Part: "t1", Sort: "2"}})
	wantIDs(t, s, kind, t1, "a", "b")
	// Rewritten with the same entries: still listed, once.
	put("a", store.Present, map[string]store.IndexKey{store.IdxTenant: {Part: "t1", Sort: "1"}})
	put("a", store.Any, map[string]store.IndexKey{store.IdxTenant: {Part: "t1", Sort: "1"}})
	wantIDs(t, s, kind, t1, "a", "b")

	put("a", store.Present, map[string]store.IndexKey{store.IdxTenant: {Part: "t1", Sort: "3"}})
	wantIDs(t, s, kind, t1, "b", "a")
	wantIDs(t, s, kind, store.Query{Index: store.IdxTenant, Part: "t1", To: "3"}, "b")

	put("a", store.Any, map[string]store.IndexKey{store.IdxTenant: {Part: "t2", Sort: "3"}})
	wantIDs(t, s, kind, t1, "b")
	wantIDs(t, s, kind, t2, "a")

	put("b", store.Present, nil)
	wantIDs(t, s, kind, t1)
	wantIDs(t, s, kind, store.Query{}, "a", "b")

	if _, err := store.Update(ctx, s, kind, "a", func(r *store.Record) error {
		r.Index = map[string]store.IndexKey{
			store.IdxTenant: {Part: "t2", Sort: "0"},
			store.IdxParent: {Part: "b"},
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, s, kind, store.Query{Index: store.IdxTenant, Part: "t2", To: "1"}, "a")
	wantIDs(t, s, kind, store.Query{Index: store.IdxParent, Part: "b"}, "a")

	mustWrite(t, s, store.Del(kind, "a", store.Present, 0))
	wantIDs(t, s, kind, t2)
	wantIDs(t, s, kind, store.Query{Index: store.IdxParent, Part: "b"})
	wantIDs(t, s, kind, store.Query{}, "b")
}

func testExpires(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	kind := newKind(t)
	past, future := time.Now().Add(-time.Minute), time.Now().Add(time.Hour)
	put := func(id string, exp time.Time) {
		r := rec(kind, id, map[string]string{"id": id})
		r.Expires = exp
		r.Index = map[string]store.IndexKey{store.IdxDue: {Part: "lease", Sort: store.SortTime(exp)}}
		mustWrite(t, s, store.Put(r, store.Any))
	}
	put("gone", past)
	put("gone2", past)
	put("live", future)
	put("forever", time.Time{})

	wantMissing(t, s, kind, "gone")
	mustGet(t, s, kind, "live")
	wantIDs(t, s, kind, store.Query{}, "forever", "live")
	wantIDs(t, s, kind, store.Query{From: "gone", To: "gonf"})
	wantIDs(t, s, kind, store.Query{Index: store.IdxDue, Part: "lease"}, "forever", "live")

	// An expired record counts as absent for conditions.
	nr := rec(kind, "gone", map[string]string{"v": "reborn"})
	for _, op := range []store.Op{
		store.Put(nr, store.Present),
		store.Put(store.Record{Kind: kind, ID: "gone", Version: 1, Data: nr.Data}, store.AtVersion),
		store.Del(kind, "gone", store.Present, 0),
		store.Del(kind, "gone", store.AtVersion, 1),
	} {
		wantCondition(t, s.Write(ctx, op))
	}
	wantMissing(t, s, kind, "gone")
	mustWrite(t, s, store.Put(nr, store.Absent))
	got := wantVersion(t, s, kind, "gone", 1)
	if !bytes.Equal(got.Data, nr.Data) || !got.Expires.IsZero() {
		t.Fatalf("recreated: got data %s expires %v", got.Data, got.Expires)
	}
	wantIDs(t, s, kind, store.Query{}, "forever", "gone", "live")

	// An unconditional write over an expired record makes it visible again (its version
	// is not pinned here: adapters may count from the old one), and delete removes it.
	mustWrite(t, s, store.Put(rec(kind, "gone2", map[string]string{"v": "again"}), store.Any))
	if got := mustGet(t, s, kind, "gone2"); got.Version < 1 || !strings.Contains(string(got.Data), "again") {
		t.Fatalf("gone2: got version %d data %s", got.Version, got.Data)
	}
	mustWrite(t, s, store.Del(kind, "gone2", store.Any, 0))
	wantMissing(t, s, kind, "gone2")

	// A later expiry on an existing record makes it invisible.
	live := mustGet(t, s, kind, "live")
	live.Expires = past
	mustWrite(t, s, store.Put(live, store.AtVersion))
	wantMissing(t, s, kind, "live")
	wantIDs(t, s, kind, store.Query{Index: store.IdxDue, Part: "lease"}, "forever")
}

func testExpiresLater(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	kind := newKind(t)
	exp := time.Now().Add(2 * time.Second)
	r := rec(kind, "soon", map[string]int{})
	r.Expires = exp
	r.Index = map[string]store.IndexKey{store.IdxDue: {Part: "x", Sort: store.SortTime(exp)}}
	mustWrite(t, s, store.Put(r, store.Absent))
	if time.Now().Before(exp.Add(-time.Second)) {
		mustGet(t, s, kind, "soon")
	}
	// Expiry is judged when reading, not when writing: poll until it is gone.
	deadline := exp.Add(IndexDeadline)
	for {
		_, err := s.Get(ctx, kind, "soon")
		if errs.Is(err, errs.NotFound) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("record still visible %v after it expired", time.Since(exp))
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if time.Now().Before(exp) {
		t.Fatalf("record vanished %v before it expired", time.Until(exp))
	}
	wantIDs(t, s, kind, store.Query{})
	wantIDs(t, s, kind, store.Query{Index: store.IdxDue, Part: "x"})
}

func testUpdate(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	kind := newKind(t)
	if _, err := store.Update(ctx, s, kind, "missing", func(*store.Record) error { return nil }); !errs.Is(err, errs.NotFound) {
		t.Fatalf("Update of a missing record: got %v, want not_found", err)
	}
	r := rec(kind, "u", map[string]int{"n": 1})
	mustWrite(t, s, store.Put(r, store.Absent))
	boom := errors.New("boom")
	if _, err := store.Update(ctx, s, kind, "u", func(r *store.Record) error {
		r.Data = doc(map[string]int{"n": 100})
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Update whose fn fails: got %v, want %v", err, boom)
	}
	if got := wantVersion(t, s, kind, "u", 1); !bytes.Equal(got.Data, r.Data) {
		t.Fatalf("a failed Update changed data to %s", got.Data)
	}
	got, err := store.Update(ctx, s, kind, "u", func(r *store.Record) error {
		r.Data = doc(map[string]int{"n": 2})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stored := wantVersion(t, s, kind, "u", 2)
	if got.Version != 2 || !bytes.Equal(got.Data, stored.Data) {
		t.Fatalf("Update returned version %d data %s; stored %d %s", got.Version, got.Data, stored.Version, stored.Data)
	}
}

func testUpdateConcurrent(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	kind := newKind(t)
	mustWrite(t, s, store.Put(rec(kind, "counter", map[string]int{"n": 0}), store.Absent))
	const workers, each = 8, 5
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				// Update gives up after a few lost races; that is its contract, so
				// retry here: what is tested is that no increment is lost or doubled.
				for {
					_, err := store.Update(ctx, s, kind, "counter", func(r *store.Record) error {
						var v struct{ N int }
						if err := store.Decode(*r, &v); err != nil {
							return err
						}
						v.N++
						r.Data = doc(map[string]int{"n": v.N})
						return nil
					})
					if err == nil {
						break
					}
					if !errors.Is(err, store.ErrCondition) || ctx.Err() != nil {
						errc <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	got := mustGet(t, s, kind, "counter")
	var v struct{ N int }
	if err := store.Decode(got, &v); err != nil {
		t.Fatal(err)
	}
	if v.N != workers*each || got.Version != workers*each+1 {
		t.Fatalf("counter: got n=%d version %d, want n=%d version %d", v.N, got.Version, workers*each, workers*each+1)
	}
}

func testValidation(t *testing.T, s store.Store) {
	ctx := ctxFor(t)
	kind := newKind(t)
	ok := rec(kind, "ok", map[string]int{})
	badIdx := rec(kind, "bad", map[string]int{})
	badIdx.Index = map[string]store.IndexKey{"no-such-index": {Part: "p"}}
	writes := []struct {
		name string
		ops  []store.Op
	}{
		{"empty kind", []store.Op{store.Put(ok, store.Any), store.Put(rec("", "x", map[string]int{}), store.Any)}},
		{"empty id", []store.Op{store.Put(ok, store.Any), store.Put(rec(kind, "", map[string]int{}), store.Any)}},
		{"empty delete", []store.Op{store.Put(ok, store.Any), store.Del(kind, "", store.Any, 0)}},
		{"twice in one write", []store.Op{store.Put(ok, store.Any), store.Del(kind, "ok", store.Any, 0)}},
		{"unknown index", []store.Op{store.Put(ok, store.Any), store.Put(badIdx, store.Any)}},
	}
	for _, tc := range writes {
		err := s.Write(ctx, tc.ops...)
		if err == nil {
			t.Fatalf("Write %s: got nil error", tc.name)
		}
		if errors.Is(err, store.ErrCondition) {
			t.Fatalf("Write %s: got a condition error %v, want a validation error", tc.name, err)
		}
		wantMissing(t, s, kind, "ok")
	}
	queries := []struct {
		name string
		kind string
		q    store.Query
	}{
		{"empty kind", "", store.Query{}},
		{"unknown index", kind, store.Query{Index: "no-such-index", Part: "p"}},
		{"index without part", kind, store.Query{Index: store.IdxTenant}},
	}
	for _, tc := range queries {
		if _, _, err := s.List(ctx, tc.kind, tc.q); err == nil {
			t.Fatalf("List %s: got nil error", tc.name)
		}
	}
}

func testLargeData(t *testing.T, s store.Store) {
	kind := newKind(t)
	var want [][]byte
	for i := 0; i < 3; i++ {
		r := rec(kind, fmt.Sprintf("big%d", i), map[string]string{"blob": strings.Repeat(string(rune('a'+i)), 100*1024)})
		r.Index = map[string]store.IndexKey{store.IdxParent: {Part: "p"}}
		mustWrite(t, s, store.Put(r, store.Absent))
		want = append(want, r.Data)
	}
	for i := range want {
		if got := mustGet(t, s, kind, fmt.Sprintf("big%d", i)); !bytes.Equal(got.Data, want[i]) {
			t.Fatalf("big%d: got %d bytes, want %d intact", i, len(got.Data), len(want[i]))
		}
	}
	for _, q := range []store.Query{{}, {Index: store.IdxParent, Part: "p"}} {
		recs := wantIDs(t, s, kind, q, "big0", "big1", "big2")
		for i, r := range recs {
			if !bytes.Equal(r.Data, want[i]) {
				t.Fatalf("List %+v: %s: got %d bytes, want %d intact", q, r.ID, len(r.Data), len(want[i]))
			}
		}
	}
}

func testConcurrent(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	kind := newKind(t)
	const writers, each = 8, 25
	var written sync.Map // id -> data, stored once its Write returned
	var wg, readers sync.WaitGroup
	errc := make(chan error, writers+4)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := fmt.Sprintf("w%d-%03d", w, i)
				r := rec(kind, id, map[string]string{"id": id})
				r.Index = map[string]store.IndexKey{store.IdxTopology: {Part: "t", Sort: fmt.Sprintf("%03d", i)}}
				if err := s.Write(ctx, store.Put(r, store.Absent)); err != nil {
					errc <- err
					return
				}
				written.Store(id, r.Data)
			}
		}()
	}
	stop := make(chan struct{})
	for rdr := 0; rdr < 4; rdr++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				// Read-your-writes across goroutines: what a finished Write stored is
				// visible to every reader.
				var ferr error
				written.Range(func(k, v any) bool {
					r, err := s.Get(ctx, kind, k.(string))
					if err != nil {
						ferr = fmt.Errorf("Get %s after its Write returned: %w", k, err)
						return false
					}
					if !bytes.Equal(r.Data, v.([]byte)) {
						ferr = fmt.Errorf("Get %s: got %s", k, r.Data)
						return false
					}
					return true
				})
				if ferr == nil {
					_, ferr = tryListAll(ctx, s, kind, store.Query{Limit: 7})
				}
				if ferr != nil {
					errc <- ferr
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	recs := listAll(t, s, kind, store.Query{})
	if len(recs) != writers*each {
		t.Fatalf("List: got %d records, want %d", len(recs), writers*each)
	}
	var want []string
	for i := 0; i < each; i++ {
		for w := 0; w < writers; w++ {
			want = append(want, fmt.Sprintf("w%d-%03d", w, i))
		}
	}
	slices.SortFunc(want, func(a, b string) int {
		// Index order: Sort (the %03d suffix) then ID.
		if c := strings.Compare(a[len(a)-3:], b[len(b)-3:]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	wantIDs(t, s, kind, store.Query{Index: store.IdxTopology, Part: "t", Limit: 50}, want...)
}
