package dynamo

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/store"
)

func TestIndexKeysOrderBySortThenID(t *testing.T) {
	// Pairs in (Sort, ID) order must encode in string order.
	ordered := []struct{ sort, id string }{
		{"", "a"}, {"", "b"}, {"1", "z"}, {"1", "zz"}, {"10", "a"}, {"1a", "a"}, {"2", "a"},
	}
	for i := 1; i < len(ordered); i++ {
		a := indexSK(ordered[i-1].sort, ordered[i-1].id)
		b := indexSK(ordered[i].sort, ordered[i].id)
		if !(a < b) {
			t.Errorf("%q then %q: encoded %q >= %q", ordered[i-1], ordered[i], a, b)
		}
	}
}

func TestIndexPKIsOneToOne(t *testing.T) {
	tests := []struct{ k1, p1, k2, p2 string }{
		{"a#b", "c", "a", "b#c"},
		{"a%23b", "c", "a#b", "c"},
		{"a", "", "a#", ""},
	}
	for _, tc := range tests {
		if indexPK(tc.k1, tc.p1) == indexPK(tc.k2, tc.p2) {
			t.Errorf("(%q,%q) and (%q,%q) encode alike: %q", tc.k1, tc.p1, tc.k2, tc.p2, indexPK(tc.k1, tc.p1))
		}
	}
}

// The update expression SETs or REMOVEs every attribute, so a Put replaces the item.
func TestUpdateCoversEveryAttribute(t *testing.T) {
	r := store.Record{Kind: "k", ID: "i", Data: []byte(`{}`), Index: map[string]store.IndexKey{store.IdxTenant: {Part: "p"}}}
	e := newExpr()
	upd := e.update(store.Put(r, store.Any), false)
	want := []string{attrVersion, attrData, attrExpires, attrTTL}
	for _, idx := range store.Indexes {
		want = append(want, indexPKAttr(idx), indexSKAttr(idx))
	}
	for _, a := range want {
		p := e.n(a)
		if !strings.Contains(upd, p+" = ") && !strings.Contains(upd, p+",") && !strings.HasSuffix(upd, p) {
			t.Errorf("update %q leaves %s untouched", upd, a)
		}
	}
	if !strings.Contains(upd, "REMOVE") {
		t.Errorf("update %q removes nothing, though the record has no expiry", upd)
	}
}

func TestConditionUsesOnlyItsPlaceholders(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, c := range []store.Cond{store.Any, store.Absent, store.Present, store.AtVersion} {
		for _, del := range []bool{false, true} {
			e := newExpr()
			op := store.Op{Delete: del, Cond: c, Record: store.Record{Kind: "k", ID: "i", Version: 3}}
			cond := e.condition(op, now, false)
			for p := range e.values {
				if !strings.Contains(cond, p) {
					t.Errorf("cond %v delete %v: value %s unused in %q (DynamoDB rejects that)", c, del, p, cond)
				}
			}
			if c == store.Any && del && cond != "" {
				t.Errorf("unconditional delete got condition %q", cond)
			}
		}
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	exp := time.Unix(2000, 500).UTC()
	in := store.Record{
		Kind: "k#x", ID: "id", Version: 4, Data: []byte(`{"a":1}`), Expires: exp,
		Index: map[string]store.IndexKey{store.IdxDue: {Part: "lease", Sort: "s"}, store.IdxParent: {Part: "p#q"}},
	}
	item := map[string]types.AttributeValue{
		attrPK: str(in.Kind), attrSK: str(in.ID), attrVersion: num(4),
		attrData: &types.AttributeValueMemberB{Value: in.Data}, attrExpires: num(exp.UnixNano()), attrTTL: num(ttlSeconds(exp)),
	}
	for name, k := range in.Index {
		item[indexPKAttr(name)] = str(indexPK(in.Kind, k.Part))
		item[indexSKAttr(name)] = str(indexSK(k.Sort, in.ID))
	}
	tests := []struct {
		now     time.Time
		visible bool
	}{{exp.Add(-time.Nanosecond), true}, {exp, false}, {exp.Add(time.Hour), false}}
	for _, tc := range tests {
		got, ok, err := decode(item, tc.now)
		if err != nil {
			t.Fatal(err)
		}
		if ok != tc.visible {
			t.Fatalf("at %v: visible %v, want %v", tc.now, ok, tc.visible)
		}
		if ok && (!reflect.DeepEqual(got.Index, in.Index) || !bytes.Equal(got.Data, in.Data) || !got.Expires.Equal(exp) || got.Version != 4) {
			t.Fatalf("got %+v, want %+v", got, in)
		}
	}
	if ttlSeconds(exp) != 2001 || ttlSeconds(time.Unix(2000, 0)) != 2000 {
		t.Fatalf("ttl must round up to whole seconds: %d %d", ttlSeconds(exp), ttlSeconds(time.Unix(2000, 0)))
	}
}

func TestMarker(t *testing.T) {
	k := map[string]types.AttributeValue{attrPK: str("kind"), attrSK: str("id-9")}
	m := encodeMarker(k)
	got, err := decodeMarker(m, []string{attrPK, attrSK}, attrPK, "kind")
	if err != nil || !reflect.DeepEqual(got, k) {
		t.Fatalf("round trip: got %v, %v", got, err)
	}
	bad := []struct {
		name, marker, pk string
		names            []string
	}{
		{"not base64", "%%%", "kind", []string{attrPK, attrSK}},
		{"not json", "bm9wZQ", "kind", []string{attrPK, attrSK}}, // base64url of "nope"
		{"other kind", m, "other", []string{attrPK, attrSK}},
		{"other query shape", m, "kind", []string{attrPK, attrSK, "tenant_pk", "tenant_sk"}},
	}
	for _, tc := range bad {
		if _, err := decodeMarker(tc.marker, tc.names, attrPK, tc.pk); !errs.Is(err, errs.Invalid) {
			t.Errorf("%s: got %v, want invalid", tc.name, err)
		}
	}
}

func TestClassifyCancel(t *testing.T) {
	ops := []store.Op{
		store.Put(store.Record{Kind: "k", ID: "a"}, store.Any),
		store.Put(store.Record{Kind: "k", ID: "b"}, store.Absent),
	}
	reason := func(codes ...string) []types.CancellationReason {
		out := make([]types.CancellationReason, len(codes))
		for i, c := range codes {
			out[i] = types.CancellationReason{Code: &c}
		}
		return out
	}
	tests := []struct {
		name      string
		reasons   []types.CancellationReason
		retry     bool
		failed    int
		flipFirst bool
	}{
		{"precondition", reason("None", "ConditionalCheckFailed"), false, 1, false},
		{"expired leftover under Any", reason("ConditionalCheckFailed", "None"), true, -1, true},
		{"conflict", reason("None", "TransactionConflict"), true, -1, false},
		{"no reasons", nil, false, 1, false},
	}
	for _, tc := range tests {
		reset := make([]bool, len(ops))
		retry, failed := classifyCancel(ops, tc.reasons, reset)
		if retry != tc.retry || failed != tc.failed || reset[0] != tc.flipFirst {
			t.Errorf("%s: got retry %v failed %d reset %v", tc.name, retry, failed, reset)
		}
	}
}
