package bolt

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// Sweep removes up to 1000 expired records (with their index entries) and reports how
// many it removed. Writes call it on their own every sweep interval; expired records
// are invisible either way.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	var n int
	err := s.gc.Do(ctx, nil, func(tx *bbolt.Tx) error {
		var err error
		n, err = s.sweep(tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store sweep: %w", err)
	}
	return n, nil
}

// maybeSweep queues a sweep with the next batch when one is due.
func (s *Store) maybeSweep() {
	if s.sweepEvery <= 0 {
		return
	}
	now := s.clock.Now()
	due := s.nextSweep.Load()
	if now.UnixNano() < due || !s.nextSweep.CompareAndSwap(due, now.Add(s.sweepEvery).UnixNano()) {
		return
	}
	_ = s.gc.Submit(nil, func(tx *bbolt.Tx) error {
		_, err := s.sweep(tx)
		return err
	})
}

func (s *Store) sweep(tx *bbolt.Tx) (int, error) {
	now := s.now()
	xb, idx := tx.Bucket(bucketExpiry), tx.Bucket(bucketIndex)
	bound := expiryBound(now + 1) // due: expiry <= now
	var due [][]byte
	c := xb.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k, bound) < 0 && len(due) < sweepBatch; k, _ = c.Next() {
		due = append(due, bytes.Clone(k))
	}
	n := 0
	for _, k := range due {
		exp, kind, id, ok := parseExpiryKey(k)
		if !ok {
			return n, errCorrupt
		}
		if b := tx.Bucket(kindBucket(kind)); b != nil {
			if v := b.Get([]byte(id)); v != nil {
				if _, vexp, err := header(v); err == nil && vexp == exp {
					entries, _, err := decodeIndex(v)
					if err != nil {
						return n, err
					}
					for _, e := range entries {
						if err := idx.Delete(indexKey(kind, e.name, e.part, e.sort, id)); err != nil {
							return n, err
						}
					}
					if err := b.Delete([]byte(id)); err != nil {
						return n, err
					}
					n++
				}
			}
		}
		if err := xb.Delete(k); err != nil {
			return n, err
		}
	}
	return n, nil
}
