package dynamo

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/store"
)

// Attribute names of the single table (docs/aws-single-table.md).
const (
	attrPK      = "pk"  // S: record kind
	attrSK      = "sk"  // S: record id
	attrVersion = "v"   // N: store.Record.Version
	attrData    = "d"   // B: store.Record.Data
	attrExpires = "exp" // N: Expires in Unix nanoseconds: what reads filter on
	attrTTL     = "ttl" // N: Expires in Unix seconds, rounded up: DynamoDB's TTL attribute
)

// sortSep joins an index's Sort and the record ID in the index sort key. It sorts below
// every other character, so keys order by Sort, then ID.
const sortSep = "\x00"

// GSIName is the name of the global secondary index that serves store index name.
func GSIName(index string) string { return "by_" + index }

func indexPKAttr(index string) string { return index + "_pk" }
func indexSKAttr(index string) string { return index + "_sk" }

// indexPK is the partition key of a record of kind in an index: queries are per kind, so
// the kind is part of it. Escaping '%' and '#' in the kind keeps the encoding one-to-one.
func indexPK(kind, part string) string { return escapeKind(kind) + "#" + part }

func indexSK(sort, id string) string { return sort + sortSep + id }

func escapeKind(kind string) string {
	if !strings.ContainsAny(kind, "%#") {
		return kind
	}
	return strings.NewReplacer("%", "%25", "#", "%23").Replace(kind)
}

func str(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func num(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// key is the primary key of kind/id.
func key(kind, id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(kind), attrSK: str(id)}
}

// ttlSeconds rounds up, so DynamoDB never deletes an item before it has expired.
func ttlSeconds(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}

// expired reports whether an item whose exp attribute holds expNanos is invisible at now.
func expired(expNanos int64, now time.Time) bool {
	return expNanos != 0 && now.UnixNano() >= expNanos
}

// itemSize estimates the stored size of r, as DynamoDB counts it (names + values).
func itemSize(r store.Record) int {
	n := len(attrPK) + len(r.Kind) + len(attrSK) + len(r.ID) + len(attrVersion) + 21 +
		len(attrData) + len(r.Data) + len(attrExpires) + 21 + len(attrTTL) + 21
	for name, k := range r.Index {
		n += len(indexPKAttr(name)) + len(indexPK(r.Kind, k.Part)) + len(indexSKAttr(name)) + len(indexSK(k.Sort, r.ID))
	}
	return n
}

// MaxItemSize is DynamoDB's limit on one item; larger records are errs.TooLarge.
const MaxItemSize = 400 * 1024

// decode turns an item into a record; ok is false when the item has expired at now.
func decode(item map[string]types.AttributeValue, now time.Time) (store.Record, bool, error) {
	var r store.Record
	getS := func(name string) (string, bool) {
		v, ok := item[name].(*types.AttributeValueMemberS)
		if !ok {
			return "", false
		}
		return v.Value, true
	}
	getN := func(name string) (int64, bool, error) {
		v, ok := item[name].(*types.AttributeValueMemberN)
		if !ok {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v.Value, 10, 64)
		return n, true, err
	}
	var ok bool
	if r.Kind, ok = getS(attrPK); !ok {
		return r, false, errs.E(errs.Other, "decode item", "no kind")
	}
	if r.ID, ok = getS(attrSK); !ok {
		return r, false, errs.E(errs.Other, "decode item", "no id")
	}
	ver, _, err := getN(attrVersion)
	if err != nil {
		return r, false, errs.Wrap(errs.Other, "decode "+r.Kind+"/"+r.ID+" version", err)
	}
	r.Version = ver
	exp, hasExp, err := getN(attrExpires)
	if err != nil {
		return r, false, errs.Wrap(errs.Other, "decode "+r.Kind+"/"+r.ID+" expiry", err)
	}
	if hasExp {
		if expired(exp, now) {
			return r, false, nil
		}
		r.Expires = time.Unix(0, exp).UTC()
	}
	if d, ok := item[attrData].(*types.AttributeValueMemberB); ok {
		r.Data = d.Value
	}
	for _, name := range store.Indexes {
		pk, ok1 := getS(indexPKAttr(name))
		sk, ok2 := getS(indexSKAttr(name))
		if !ok1 || !ok2 {
			continue
		}
		prefix := escapeKind(r.Kind) + "#"
		suffix := sortSep + r.ID
		if !strings.HasPrefix(pk, prefix) || !strings.HasSuffix(sk, suffix) {
			return r, false, errs.E(errs.Other, "decode "+r.Kind+"/"+r.ID, "malformed index "+name)
		}
		if r.Index == nil {
			r.Index = make(map[string]store.IndexKey, len(store.Indexes))
		}
		r.Index[name] = store.IndexKey{Part: pk[len(prefix):], Sort: sk[:len(sk)-len(suffix)]}
	}
	return r, true, nil
}

// A marker is the key of the last record of a page: base64 (URL alphabet) of a JSON
// object of its key attributes, which are all strings. It is opaque to callers.

func encodeMarker(k map[string]types.AttributeValue) string {
	m := make(map[string]string, len(k))
	for name, v := range k {
		if s, ok := v.(*types.AttributeValueMemberS); ok {
			m[name] = s.Value
		}
	}
	b, _ := json.Marshal(m) // a map of strings always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeMarker checks that the marker belongs to the query: it has exactly the key
// attributes names and its partition attribute pkName holds pk.
func decodeMarker(marker string, names []string, pkName, pk string) (map[string]types.AttributeValue, error) {
	bad := func(why string) error {
		return &errs.Error{Kind: errs.Invalid, Op: "store list", Field: "after", Msg: "bad marker: " + why}
	}
	b, err := base64.RawURLEncoding.DecodeString(marker)
	if err != nil {
		return nil, bad("not base64")
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, bad("not a key")
	}
	if len(m) != len(names) {
		return nil, bad("not from this query")
	}
	out := make(map[string]types.AttributeValue, len(m))
	for _, n := range names {
		v, ok := m[n]
		if !ok || v == "" {
			return nil, bad("not from this query")
		}
		out[n] = str(v)
	}
	if m[pkName] != pk {
		return nil, bad("not from this query")
	}
	return out, nil
}

// clampLimit applies the port's default and a ceiling that keeps a page within one
// DynamoDB response (1 MB) for typical records.
func clampLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	}
	return n
}

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)
