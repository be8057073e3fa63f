package bolt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/straas/straas/shared/store"
)

// A record value is laid out so the committer can stamp the version in place after the
// caller encoded everything else:
//
//	version  8 bytes big endian
//	expires  8 bytes big endian unix nanoseconds, 0 = never
//	n        uvarint count of index entries, then per entry three uvarint-length strings:
//	         index name, part, sort
//	data     the rest
const headerLen = 16

var errCorrupt = errors.New("corrupt record value")

func expiresNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	// Clamp to what UnixNano can express; 0 means "never", so an expiry at exactly the
	// epoch is moved by a nanosecond.
	switch {
	case t.Before(time.Unix(0, math.MinInt64+1)):
		return math.MinInt64 + 1
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	if n := t.UnixNano(); n != 0 {
		return n
	}
	return 1
}

// encodeValue encodes r (version 0) and returns where its index section ends.
func encodeValue(r *store.Record) ([]byte, int) {
	n := headerLen + binary.MaxVarintLen64 + len(r.Data)
	for name, k := range r.Index {
		n += 3*binary.MaxVarintLen64 + len(name) + len(k.Part) + len(k.Sort)
	}
	b := make([]byte, headerLen, n)
	binary.BigEndian.PutUint64(b[8:], uint64(expiresNano(r.Expires)))
	b = binary.AppendUvarint(b, uint64(len(r.Index)))
	// Sorted so that equal records encode equally.
	names := make([]string, 0, len(r.Index))
	for name := range r.Index {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		k := r.Index[name]
		b = appendString(b, name)
		b = appendString(b, k.Part)
		b = appendString(b, k.Sort)
	}
	end := len(b)
	return append(b, r.Data...), end
}

// indexEnd returns where the index section of v ends, without decoding it.
func indexEnd(v []byte) (int, error) {
	if len(v) < headerLen {
		return 0, errCorrupt
	}
	off := headerLen
	n, k := binary.Uvarint(v[off:])
	if k <= 0 || n > uint64(len(v)) {
		return 0, errCorrupt
	}
	off += k
	for i := uint64(0); i < 3*n; i++ {
		l, k := binary.Uvarint(v[off:])
		if k <= 0 || uint64(len(v)-off-k) < l {
			return 0, errCorrupt
		}
		off += k + int(l)
	}
	return off, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func setVersion(v []byte, version int64) { binary.BigEndian.PutUint64(v, uint64(version)) }

// header reads version and expiry without decoding the rest.
func header(v []byte) (version, expires int64, err error) {
	if len(v) < headerLen {
		return 0, 0, errCorrupt
	}
	return int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:])), nil
}

// liveAt reports whether a value with expiry exp is visible at now (unix nanoseconds).
func liveAt(exp, now int64) bool { return exp == 0 || exp > now }

type indexEntry struct{ name, part, sort string }

// decodeIndex returns the index entries of v and the offset of its data.
func decodeIndex(v []byte) ([]indexEntry, int, error) {
	off := headerLen
	n, k := binary.Uvarint(v[off:])
	if k <= 0 || n > uint64(len(v)) {
		return nil, 0, errCorrupt
	}
	off += k
	var out []indexEntry
	if n > 0 {
		out = make([]indexEntry, n)
	}
	for i := range out {
		var s [3]string
		for j := range s {
			l, k := binary.Uvarint(v[off:])
			if k <= 0 || uint64(len(v)-off-k) < l {
				return nil, 0, errCorrupt
			}
			off += k
			s[j] = string(v[off : off+int(l)])
			off += int(l)
		}
		out[i] = indexEntry{s[0], s[1], s[2]}
	}
	return out, off, nil
}

// decodeRecord copies v (valid only inside its transaction) into a Record.
func decodeRecord(kind, id string, v []byte) (store.Record, error) {
	version, exp, err := header(v)
	if err != nil {
		return store.Record{}, err
	}
	entries, off, err := decodeIndex(v)
	if err != nil {
		return store.Record{}, err
	}
	r := store.Record{Kind: kind, ID: id, Version: version, Data: bytes.Clone(v[off:])}
	if r.Data == nil {
		r.Data = []byte{}
	}
	if exp != 0 {
		r.Expires = time.Unix(0, exp).UTC()
	}
	if len(entries) > 0 {
		r.Index = make(map[string]store.IndexKey, len(entries))
		for _, e := range entries {
			r.Index[e.name] = store.IndexKey{Part: e.part, Sort: e.sort}
		}
	}
	return r, nil
}

// Keys. Strings inside composite keys are escaped so that byte order of the key is the
// order of its parts: 0x00 becomes 0x00 0xFF and each string ends with 0x00 0x01. The
// encoding is prefix-free, so "p1" and "p1x" never share a range.

func appendEsc(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			b = append(b, 0, 0xFF)
		} else {
			b = append(b, s[i])
		}
	}
	return append(b, 0, 1)
}

// readEsc decodes one escaped string from the front of b.
func readEsc(b []byte) (string, []byte, bool) {
	var out []byte
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			continue
		}
		if i+1 >= len(b) {
			return "", nil, false
		}
		switch b[i+1] {
		case 1:
			if out == nil {
				return string(b[:i]), b[i+2:], true
			}
			return string(append(out, b[:i]...)), b[i+2:], true
		case 0xFF:
			out = append(out, b[:i]...)
			out = append(out, 0)
			b = b[i+2:]
			i = -1
		default:
			return "", nil, false
		}
	}
	return "", nil, false
}

// indexPrefix is the key prefix of one index partition of a kind.
func indexPrefix(kind, index, part string) []byte {
	b := make([]byte, 0, len(kind)+len(index)+len(part)+6)
	b = appendEsc(b, kind)
	b = appendEsc(b, index)
	return appendEsc(b, part)
}

func indexKey(kind, index, part, sort, id string) []byte {
	b := indexPrefix(kind, index, part)
	b = appendEsc(b, sort)
	return appendEsc(b, id)
}

// expiryKey orders expiring records by time: 8 bytes of unix nanoseconds (offset so
// negative times sort first), then kind and id.
func expiryKey(exp int64, kind, id string) []byte {
	b := make([]byte, 8, 8+len(kind)+len(id)+4)
	binary.BigEndian.PutUint64(b, uint64(exp)^(1<<63))
	b = appendEsc(b, kind)
	return appendEsc(b, id)
}

func parseExpiryKey(k []byte) (exp int64, kind, id string, ok bool) {
	if len(k) < 8 {
		return 0, "", "", false
	}
	exp = int64(binary.BigEndian.Uint64(k) ^ (1 << 63))
	kind, rest, ok := readEsc(k[8:])
	if !ok {
		return 0, "", "", false
	}
	id, _, ok = readEsc(rest)
	return exp, kind, id, ok
}

func expiryBound(now int64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(now)^(1<<63))
	return b
}
