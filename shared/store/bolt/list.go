package bolt

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"

	"go.etcd.io/bbolt"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/store"
)

// List returns one page of records of kind matching q, and the marker of the next page
// ("" after the last). The marker is the position of the last record returned, so
// records written between pages are seen if they sort after it.
func (s *Store) List(ctx context.Context, kind string, q store.Query) ([]store.Record, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if err := store.ValidateQuery(kind, q); err != nil {
		return nil, "", errs.Wrap(errs.Invalid, "store list", err)
	}
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = DefaultLimit
	case limit > MaxLimit:
		limit = MaxLimit
	}
	var after []byte
	if q.After != "" {
		var err error
		if after, err = base64.RawURLEncoding.DecodeString(q.After); err != nil || len(after) == 0 {
			return nil, "", errs.Invalidf("after", "not a marker of this store")
		}
	}
	var (
		out  []store.Record
		next []byte
	)
	now := s.now()
	err := s.view("store list", func(tx *bbolt.Tx) error {
		rb := tx.Bucket(kindBucket(kind))
		if rb == nil {
			return nil
		}
		var sc scan
		if q.Index == "" {
			sc = scan{c: rb.Cursor(), lo: []byte(q.From)}
			if q.To != "" {
				sc.hi = []byte(q.To)
			}
		} else {
			prefix := indexPrefix(kind, q.Index, q.Part)
			sc = scan{c: tx.Bucket(bucketIndex).Cursor(), prefix: prefix, lo: prefix}
			if q.From != "" {
				sc.lo = appendEsc(bytes.Clone(prefix), q.From)
			}
			if q.To != "" {
				sc.hi = appendEsc(bytes.Clone(prefix), q.To)
			}
		}
		if after != nil {
			after = append(bytes.Clone(sc.prefix), after...)
		}
		var err error
		out, next, err = sc.page(rb, kind, after, limit, now)
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("store list %s: %w", kind, err)
	}
	if next == nil {
		return out, "", nil
	}
	return out, base64.RawURLEncoding.EncodeToString(next), nil
}

// scan walks one key range: the kind bucket itself (prefix empty, keys are IDs), or one
// partition of the index bucket (keys are prefix|sort|id).
type scan struct {
	c      *bbolt.Cursor
	prefix []byte
	lo, hi []byte // lo inclusive; hi exclusive, nil = to the end of the prefix
}

func (sc *scan) inRange(k []byte) bool {
	return k != nil && bytes.HasPrefix(k, sc.prefix) && (sc.hi == nil || bytes.Compare(k, sc.hi) < 0)
}

// page collects up to limit live records after the key after (exclusive) and returns the
// marker (the last key without the prefix) when another live record follows.
func (sc *scan) page(rb *bbolt.Bucket, kind string, after []byte, limit int, now int64) ([]store.Record, []byte, error) {
	var k, cv []byte
	if after != nil && bytes.Compare(after, sc.lo) >= 0 {
		k, cv = sc.c.Seek(after)
		if bytes.Equal(k, after) {
			k, cv = sc.c.Next()
		}
	} else if len(sc.lo) == 0 {
		k, cv = sc.c.First()
	} else {
		k, cv = sc.c.Seek(sc.lo)
	}
	var (
		out  []store.Record
		last []byte
	)
	for ; sc.inRange(k); k, cv = sc.c.Next() {
		id, v := k, cv // scanning the kind bucket: the cursor has the value
		if sc.prefix != nil {
			_, rest, ok := readEsc(k[len(sc.prefix):])
			var sid string
			if ok {
				sid, _, ok = readEsc(rest)
			}
			if !ok {
				return nil, nil, errCorrupt
			}
			id = []byte(sid)
			v = rb.Get(id)
		}
		if v == nil {
			continue
		}
		_, exp, err := header(v)
		if err != nil {
			return nil, nil, err
		}
		if !liveAt(exp, now) {
			continue
		}
		if len(out) == limit {
			return out, bytes.Clone(last[len(sc.prefix):]), nil
		}
		r, err := decodeRecord(kind, string(id), v)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, r)
		last = k
	}
	return out, nil, nil
}
