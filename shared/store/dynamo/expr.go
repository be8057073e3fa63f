package dynamo

import (
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/straas/straas/shared/store"
)

// expr collects the placeholders of one request's expressions. DynamoDB rejects unused
// placeholders, so they are added only as they are used.
type expr struct {
	names  map[string]string
	values map[string]types.AttributeValue
}

func newExpr() *expr {
	return &expr{names: map[string]string{}, values: map[string]types.AttributeValue{}}
}

// n returns the placeholder of attribute name a.
func (e *expr) n(a string) string {
	p := "#" + strings.ReplaceAll(a, "-", "_")
	e.names[p] = a
	return p
}

// v returns a placeholder for value av.
func (e *expr) v(av types.AttributeValue) string {
	p := ":v" + strconv.Itoa(len(e.values))
	e.values[p] = av
	return p
}

func (e *expr) nameMap() map[string]string {
	if len(e.names) == 0 {
		return nil
	}
	return e.names
}

func (e *expr) valueMap() map[string]types.AttributeValue {
	if len(e.values) == 0 {
		return nil
	}
	return e.values
}

// live is the condition "the item is absent or has not expired at now"; with
// attribute_exists(pk) it means "a visible record exists".
func (e *expr) notExpired(now time.Time) string {
	return "(attribute_not_exists(" + e.n(attrExpires) + ") OR " + e.n(attrExpires) + " > " + e.v(num(now.UnixNano())) + ")"
}

// invisible is "no visible record": absent, or present but expired.
func (e *expr) invisible(now time.Time) string {
	return "(attribute_not_exists(" + e.n(attrPK) + ") OR " + e.n(attrExpires) + " <= " + e.v(num(now.UnixNano())) + ")"
}

// condition renders op's precondition; reset selects the second form of an Any write,
// which replaces an expired leftover as a new record (version 1).
func (e *expr) condition(op store.Op, now time.Time, reset bool) string {
	switch op.Cond {
	case store.Absent:
		return e.invisible(now)
	case store.Present:
		return "attribute_exists(" + e.n(attrPK) + ") AND " + e.notExpired(now)
	case store.AtVersion:
		return e.n(attrVersion) + " = " + e.v(num(op.Record.Version)) + " AND " + e.notExpired(now)
	}
	// Any.
	if op.Delete {
		return ""
	}
	if reset {
		return "attribute_exists(" + e.n(attrPK) + ") AND " + e.n(attrExpires) + " <= " + e.v(num(now.UnixNano()))
	}
	return e.notExpired(now)
}

// update renders the UpdateExpression writing r: every attribute of the item is SET or
// REMOVEd, so an update replaces the item as a PutItem would, while computing the version
// in place (one request, no read).
func (e *expr) update(op store.Op, reset bool) string {
	r := op.Record
	var set, remove []string
	switch {
	case op.Cond == store.Absent || reset:
		set = append(set, e.n(attrVersion)+" = "+e.v(num(1)))
	case op.Cond == store.AtVersion:
		set = append(set, e.n(attrVersion)+" = "+e.v(num(r.Version+1)))
	default:
		set = append(set, e.n(attrVersion)+" = if_not_exists("+e.n(attrVersion)+", "+e.v(num(0))+") + "+e.v(num(1)))
	}
	if len(r.Data) > 0 {
		set = append(set, e.n(attrData)+" = "+e.v(&types.AttributeValueMemberB{Value: r.Data}))
	} else {
		remove = append(remove, e.n(attrData))
	}
	if !r.Expires.IsZero() {
		set = append(set, e.n(attrExpires)+" = "+e.v(num(r.Expires.UnixNano())))
		set = append(set, e.n(attrTTL)+" = "+e.v(num(ttlSeconds(r.Expires))))
	} else {
		remove = append(remove, e.n(attrExpires), e.n(attrTTL))
	}
	for _, name := range store.Indexes {
		pk, sk := e.n(indexPKAttr(name)), e.n(indexSKAttr(name))
		if k, ok := r.Index[name]; ok {
			set = append(set, pk+" = "+e.v(str(indexPK(r.Kind, k.Part))), sk+" = "+e.v(str(indexSK(k.Sort, r.ID))))
		} else {
			remove = append(remove, pk, sk)
		}
	}
	s := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		s += " REMOVE " + strings.Join(remove, ", ")
	}
	return s
}
