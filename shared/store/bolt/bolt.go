// Package bolt is the embedded adapter of the store port: one bbolt file, written through
// a group committer (concurrent Writes share one transaction and one fsync), read by
// concurrent bbolt read transactions.
//
// Layout: one bucket per kind ("r/<kind>") maps ID to the record value; bucket "i" holds
// one empty-valued key per index entry, kind|index|part|sort|id (escaped, see codec.go),
// so an index query is one cursor range; bucket "x" holds expiry|kind|id for every
// expiring record, so the sweep reads only what is due. Expired records are invisible at
// once and removed by a sweep that rides along with a later write.
package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"

	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/bolt/groupcommit"
)

var _ store.Store = (*Store)(nil)

// Limits, close to DynamoDB's so that what the embedded store accepts the AWS one does.
const (
	MaxKeyLen    = 1024      // bytes of a kind, an id, an index part or sort
	MaxDataLen   = 400 << 10 // bytes of Record.Data
	DefaultLimit = 100       // List page size when Query.Limit is 0
	MaxLimit     = 1000      // larger Query.Limit values are cut to this
	sweepBatch   = 1000      // expired records removed per sweep transaction
)

var (
	bucketIndex  = []byte("i")
	bucketExpiry = []byte("x")
	bucketMeta   = []byte("meta")
)

func kindBucket(kind string) []byte { return []byte("r/" + kind) }

// Store is the bbolt adapter. It is safe for concurrent use.
type Store struct {
	db         *bbolt.DB
	gc         *groupcommit.Committer
	clock      clock.Clock
	sweepEvery time.Duration
	nextSweep  atomic.Int64 // unix nanoseconds
	closed     atomic.Bool
	closeOnce  sync.Once
	closeErr   error
}

type config struct {
	clock      clock.Clock
	sweepEvery time.Duration
	mmapSize   int
	timeout    time.Duration
}

// Option configures Open.
type Option func(*config)

// WithClock sets the clock that decides expiry (default: the wall clock).
func WithClock(c clock.Clock) Option { return func(o *config) { o.clock = c } }

// WithSweepEvery sets how often a write also removes expired records (default one
// minute; 0 disables automatic sweeps, Sweep still works).
func WithSweepEvery(d time.Duration) Option { return func(o *config) { o.sweepEvery = d } }

// WithInitialMmapSize sets the initial memory map (default 1 GiB of address space, not
// memory): while the file fits, growing it never makes writers wait for readers.
func WithInitialMmapSize(n int) Option { return func(o *config) { o.mmapSize = n } }

// WithLockTimeout bounds the wait for another process's lock on the file (default 5s).
func WithLockTimeout(d time.Duration) Option { return func(o *config) { o.timeout = d } }

// Open opens (creating if needed) the store file at path.
func Open(path string, opts ...Option) (*Store, error) {
	cfg := config{clock: clock.Real{}, sweepEvery: time.Minute, mmapSize: 1 << 30, timeout: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:         cfg.timeout,
		NoFreelistSync:  true, // the freelist is rebuilt on open: one write less per commit
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: cfg.mmapSize,
		NoStatistics:    true,
	})
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, "open store "+path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketIndex, bucketExpiry, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		m := tx.Bucket(bucketMeta)
		switch v := m.Get([]byte("layout")); {
		case v == nil:
			return m.Put([]byte("layout"), []byte("1"))
		case string(v) != "1":
			return fmt.Errorf("unknown layout %q", v)
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db, gc: groupcommit.New(db), clock: cfg.clock, sweepEvery: cfg.sweepEvery}
	s.nextSweep.Store(s.clock.Now().Add(cfg.sweepEvery).UnixNano())
	return s, nil
}

// Close commits pending writes and closes the file.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.gc.Close()
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// Stats reports how many Writes (and sweeps) were committed in how many transactions.
type Stats = groupcommit.Stats

// Stats returns the group-commit counters.
func (s *Store) Stats() Stats { return s.gc.Stats() }

func (s *Store) now() int64 { return s.clock.Now().UnixNano() }

func (s *Store) view(op string, fn func(tx *bbolt.Tx) error) error {
	if s.closed.Load() {
		return errs.E(errs.Unavailable, op, "store closed")
	}
	return s.db.View(fn)
}

// Get returns the record or an errs.NotFound error.
func (s *Store) Get(ctx context.Context, kind, id string) (store.Record, error) {
	if err := ctx.Err(); err != nil {
		return store.Record{}, err
	}
	var (
		r     store.Record
		found bool
	)
	now := s.now()
	err := s.view("store get", func(tx *bbolt.Tx) error {
		b := tx.Bucket(kindBucket(kind))
		if b == nil {
			return nil
		}
		v := b.Get([]byte(id))
		if v == nil {
			return nil
		}
		_, exp, err := header(v)
		if err != nil || !liveAt(exp, now) {
			return err
		}
		r, err = decodeRecord(kind, id, v)
		found = err == nil
		return err
	})
	if err != nil {
		return store.Record{}, fmt.Errorf("store get %s/%s: %w", kind, id, err)
	}
	if !found {
		return store.Record{}, store.NotFound(kind, id)
	}
	return r, nil
}

// prepared is one op, encoded by the calling goroutine so the committer only looks up
// and puts.
type prepared struct {
	op     store.Op
	bucket []byte
	id     []byte
	value  []byte   // puts: the encoded record, version stamped at commit
	idxEnd int      // puts: end of value's index section
	index  [][]byte // puts: the record's index keys
	expiry []byte   // puts: its expiry key, nil if it never expires

	// Set by check for apply.
	visible bool
	version int64
}

type write struct {
	s   *Store
	ops []prepared
}

// Write applies all ops atomically, or none of them.
func (s *Store) Write(ctx context.Context, ops ...store.Op) error {
	if len(ops) == 0 {
		return nil
	}
	w, err := s.prepare(ops)
	if err != nil {
		return err
	}
	if err := s.gc.Do(ctx, w.check, w.apply); err != nil {
		if errors.Is(err, store.ErrCondition) {
			return err
		}
		return fmt.Errorf("store write: %w", err)
	}
	s.maybeSweep()
	return nil
}

func (s *Store) prepare(ops []store.Op) (*write, error) {
	if err := store.ValidateOps(ops); err != nil {
		return nil, errs.Wrap(errs.Invalid, "store write", err)
	}
	w := &write{s: s, ops: make([]prepared, len(ops))}
	for i, op := range ops {
		r := &op.Record
		if op.Cond > store.AtVersion {
			return nil, errs.E(errs.Invalid, "store write "+r.Kind+"/"+r.ID, fmt.Sprintf("unknown condition %d", op.Cond))
		}
		if len(r.Kind) > MaxKeyLen || len(r.ID) > MaxKeyLen {
			return nil, errs.E(errs.Invalid, "store write", fmt.Sprintf("kind or id longer than %d bytes", MaxKeyLen))
		}
		p := prepared{op: op, bucket: kindBucket(r.Kind), id: []byte(r.ID)}
		if !op.Delete {
			if len(r.Data) > MaxDataLen {
				return nil, errs.E(errs.TooLarge, "store write "+r.Kind+"/"+r.ID,
					fmt.Sprintf("data of %d bytes is over the limit of %d", len(r.Data), MaxDataLen))
			}
			for name, k := range r.Index {
				if len(k.Part) > MaxKeyLen || len(k.Sort) > MaxKeyLen {
					return nil, errs.E(errs.Invalid, "store write "+r.Kind+"/"+r.ID,
						fmt.Sprintf("index %s: part or sort longer than %d bytes", name, MaxKeyLen))
				}
				p.index = append(p.index, indexKey(r.Kind, name, k.Part, k.Sort, r.ID))
			}
			p.value, p.idxEnd = encodeValue(r)
			if exp := expiresNano(r.Expires); exp != 0 {
				p.expiry = expiryKey(exp, r.Kind, r.ID)
			}
		}
		w.ops[i] = p
	}
	return w, nil
}

// check evaluates every condition against the shared transaction; it changes nothing.
func (w *write) check(tx *bbolt.Tx) error {
	now := w.s.now()
	for i := range w.ops {
		p := &w.ops[i]
		p.visible, p.version = false, 0
		if b := tx.Bucket(p.bucket); b != nil {
			if v := b.Get(p.id); v != nil {
				ver, exp, err := header(v)
				if err != nil {
					return fmt.Errorf("%s/%s: %w", p.op.Record.Kind, p.op.Record.ID, err)
				}
				p.visible, p.version = liveAt(exp, now), ver
			}
		}
		ok := true
		switch p.op.Cond {
		case store.Absent:
			ok = !p.visible
		case store.Present:
			ok = p.visible
		case store.AtVersion:
			ok = p.visible && p.version == p.op.Record.Version
		}
		if !ok {
			return store.ConditionFailed(p.op.Record.Kind, p.op.Record.ID)
		}
	}
	return nil
}

// apply performs the ops whose conditions check accepted.
func (w *write) apply(tx *bbolt.Tx) error {
	idx, xb := tx.Bucket(bucketIndex), tx.Bucket(bucketExpiry)
	for i := range w.ops {
		p := &w.ops[i]
		kind := p.op.Record.Kind
		b := tx.Bucket(p.bucket)
		if b == nil && !p.op.Delete {
			var err error
			if b, err = tx.CreateBucket(p.bucket); err != nil {
				return err
			}
		}
		// Remove the old record's index and expiry keys, except those the new record
		// has too (the common case: a checkpoint that moves no index).
		var keep uint64 // bit i: p.index[i] is in place already; bit 63: p.expiry
		if b != nil {
			if old := b.Get(p.id); old != nil {
				var err error
				if keep, err = removeKeys(idx, xb, kind, p.op.Record.ID, old, p); err != nil {
					return err
				}
			}
		}
		if p.op.Delete {
			if b != nil {
				if err := b.Delete(p.id); err != nil {
					return err
				}
			}
			continue
		}
		version := int64(1)
		if p.visible {
			version = p.version + 1
		}
		setVersion(p.value, version)
		if err := b.Put(p.id, p.value); err != nil {
			return err
		}
		for j, k := range p.index {
			if keep&(1<<j) != 0 {
				continue
			}
			if err := idx.Put(k, nil); err != nil {
				return err
			}
		}
		if p.expiry != nil && keep&(1<<63) == 0 {
			if err := xb.Put(p.expiry, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeKeys deletes the index and expiry keys of the stored value old, except those
// that p puts again: deleting and putting the same key would cost page writes for
// nothing. It returns the kept ones as a mask (bit i: p.index[i], bit 63: p.expiry) and
// leaves p unchanged, since apply may run again after a rollback.
func removeKeys(idx, xb *bbolt.Bucket, kind, id string, old []byte, p *prepared) (uint64, error) {
	var keep uint64
	_, exp, err := header(old)
	if err != nil {
		return 0, err
	}
	end, err := indexEnd(old)
	if err != nil {
		return 0, err
	}
	var entries []indexEntry
	if !p.op.Delete && bytes.Equal(old[headerLen:end], p.value[headerLen:p.idxEnd]) {
		keep = 1<<len(p.index) - 1 // the same entries (encoded sorted): all stay
	} else if entries, _, err = decodeIndex(old); err != nil {
		return 0, err
	}
next:
	for _, e := range entries {
		k := indexKey(kind, e.name, e.part, e.sort, id)
		if !p.op.Delete {
			for j, nk := range p.index {
				if j < 63 && bytes.Equal(nk, k) {
					keep |= 1 << j
					continue next
				}
			}
		}
		if err := idx.Delete(k); err != nil {
			return 0, err
		}
	}
	if exp != 0 {
		k := expiryKey(exp, kind, id)
		if !p.op.Delete && p.expiry != nil && bytes.Equal(k, p.expiry) {
			return keep | 1<<63, nil
		}
		if err := xb.Delete(k); err != nil {
			return 0, err
		}
	}
	return keep, nil
}
