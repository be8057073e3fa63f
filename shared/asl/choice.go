package asl

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// rule is a compiled Choice rule (top level carries Next).
type rule struct {
	next     string
	op       string
	variable *path
	// comparand: a literal or, for ...Path operators, a path
	str     string
	num     float64
	boolean bool
	ts      time.Time
	ref     *path
	sub     []*rule // And, Or, Not
}

var comparisons = map[string]string{ // operator -> literal kind
	"StringEquals": "string", "StringLessThan": "string", "StringGreaterThan": "string",
	"StringLessThanEquals": "string", "StringGreaterThanEquals": "string", "StringMatches": "string",
	"NumericEquals": "number", "NumericLessThan": "number", "NumericGreaterThan": "number",
	"NumericLessThanEquals": "number", "NumericGreaterThanEquals": "number",
	"BooleanEquals":   "bool",
	"TimestampEquals": "timestamp", "TimestampLessThan": "timestamp", "TimestampGreaterThan": "timestamp",
	"TimestampLessThanEquals": "timestamp", "TimestampGreaterThanEquals": "timestamp",
	"IsNull": "bool", "IsPresent": "bool", "IsNumeric": "bool", "IsString": "bool",
	"IsBoolean": "bool", "IsTimestamp": "bool",
}

func init() {
	for op, kind := range comparisons {
		if !strings.HasPrefix(op, "Is") && op != "StringMatches" {
			comparisons[op+"Path"] = "path:" + kind
		}
	}
}

func compileRule(v any, field string, top bool) (*rule, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: a choice rule must be an object", field)
	}
	r := &rule{}
	var ops []string
	for k, fv := range m {
		switch k {
		case "Next":
			if !top {
				return nil, fmt.Errorf("%s.Next: only top-level choice rules have Next", field)
			}
			s, ok := fv.(string)
			if !ok || s == "" {
				return nil, fmt.Errorf("%s.Next: must be a state name", field)
			}
			r.next = s
		case "Comment":
		case "Variable":
			s, ok := fv.(string)
			if !ok {
				return nil, fmt.Errorf("%s.Variable: must be a path", field)
			}
			p, err := parsePath(s)
			if err != nil {
				return nil, fmt.Errorf("%s.Variable: %v", field, err)
			}
			r.variable = p
		case "And", "Or":
			a, ok := fv.([]any)
			if !ok || len(a) == 0 {
				return nil, fmt.Errorf("%s.%s: must be a non-empty array of rules", field, k)
			}
			for i, e := range a {
				s, err := compileRule(e, fmt.Sprintf("%s.%s[%d]", field, k, i), false)
				if err != nil {
					return nil, err
				}
				r.sub = append(r.sub, s)
			}
			ops = append(ops, k)
		case "Not":
			s, err := compileRule(fv, field+".Not", false)
			if err != nil {
				return nil, err
			}
			r.sub = []*rule{s}
			ops = append(ops, k)
		default:
			kind, ok := comparisons[k]
			if !ok {
				return nil, fmt.Errorf("%s: unknown field %q", field, k)
			}
			ops = append(ops, k)
			f := field + "." + k
			switch kind {
			case "string":
				s, ok := fv.(string)
				if !ok {
					return nil, fmt.Errorf("%s: must be a string", f)
				}
				r.str = s
			case "number":
				n, ok := fv.(float64)
				if !ok {
					return nil, fmt.Errorf("%s: must be a number", f)
				}
				r.num = n
			case "bool":
				b, ok := fv.(bool)
				if !ok {
					return nil, fmt.Errorf("%s: must be true or false", f)
				}
				r.boolean = b
			case "timestamp":
				s, ok := fv.(string)
				t, err := parseTimestamp(s)
				if !ok || err != nil {
					return nil, fmt.Errorf("%s: must be an RFC 3339 timestamp", f)
				}
				r.ts = t
			default: // path:...
				s, ok := fv.(string)
				if !ok {
					return nil, fmt.Errorf("%s: must be a path", f)
				}
				p, err := parsePath(s)
				if err != nil {
					return nil, fmt.Errorf("%s: %v", f, err)
				}
				r.ref = p
			}
		}
	}
	sort.Strings(ops)
	if len(ops) != 1 {
		return nil, fmt.Errorf("%s: a rule needs exactly one operator, found %d %v", field, len(ops), ops)
	}
	r.op = ops[0]
	switch r.op {
	case "And", "Or", "Not":
		if r.variable != nil {
			return nil, fmt.Errorf("%s: %s takes no Variable", field, r.op)
		}
	default:
		if r.variable == nil {
			return nil, fmt.Errorf("%s: %s needs a Variable", field, r.op)
		}
	}
	if top && r.next == "" {
		return nil, fmt.Errorf("%s: missing Next", field)
	}
	return r, nil
}

func parseTimestamp(s string) (time.Time, error) {
	return time.Parse(time.RFC3339Nano, s)
}

// match evaluates the rule. A Variable that is absent is a States.Runtime error
// (except for IsPresent); values of the wrong type simply do not match.
func (r *rule) match(env *evalEnv) (bool, *stateError) {
	switch r.op {
	case "And":
		for _, s := range r.sub {
			ok, err := s.match(env)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case "Or":
		for _, s := range r.sub {
			ok, err := s.match(env)
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case "Not":
		ok, err := r.sub[0].match(env)
		return !ok, err
	}
	v, found := r.variable.get(env.data, env.ctx)
	if r.op == "IsPresent" {
		return found == r.boolean, nil
	}
	if !found {
		return false, fail(ErrRuntime, "invalid path %s: the choice state's condition path references an undefined value", r.variable.raw)
	}
	switch r.op {
	case "IsNull":
		return (v == nil) == r.boolean, nil
	case "IsNumeric":
		_, ok := v.(float64)
		return ok == r.boolean, nil
	case "IsString":
		_, ok := v.(string)
		return ok == r.boolean, nil
	case "IsBoolean":
		_, ok := v.(bool)
		return ok == r.boolean, nil
	case "IsTimestamp":
		s, ok := v.(string)
		if ok {
			_, err := parseTimestamp(s)
			ok = err == nil
		}
		return ok == r.boolean, nil
	case "StringMatches":
		s, ok := v.(string)
		return ok && wildcardMatch(r.str, s), nil
	}
	op := r.op
	var cmp any
	hasCmp := false
	if strings.HasSuffix(op, "Path") {
		hasCmp = true
		op = strings.TrimSuffix(op, "Path")
		c, ok := r.ref.get(env.data, env.ctx)
		if !ok {
			return false, fail(ErrRuntime, "invalid path %s: the choice state's condition path references an undefined value", r.ref.raw)
		}
		cmp = c
	}
	switch {
	case strings.HasPrefix(op, "String"):
		s, ok := v.(string)
		if hasCmp {
			r2, ok2 := cmp.(string)
			if !ok2 {
				return false, nil
			}
			return ok && compareOrd(op, strings.Compare(s, r2)), nil
		}
		return ok && compareOrd(op, strings.Compare(s, r.str)), nil
	case strings.HasPrefix(op, "Numeric"):
		n, ok := v.(float64)
		want := r.num
		if hasCmp {
			c, ok2 := cmp.(float64)
			if !ok2 {
				return false, nil
			}
			want = c
		}
		if !ok || math.IsNaN(n) {
			return false, nil
		}
		c := 0
		if n < want {
			c = -1
		} else if n > want {
			c = 1
		}
		return compareOrd(op, c), nil
	case op == "BooleanEquals":
		b, ok := v.(bool)
		want := r.boolean
		if hasCmp {
			c, ok2 := cmp.(bool)
			if !ok2 {
				return false, nil
			}
			want = c
		}
		return ok && b == want, nil
	case strings.HasPrefix(op, "Timestamp"):
		s, ok := v.(string)
		if !ok {
			return false, nil
		}
		t, err := parseTimestamp(s)
		if err != nil {
			return false, nil
		}
		want := r.ts
		if hasCmp {
			cs, ok := cmp.(string)
			if !ok {
				return false, nil
			}
			if want, err = parseTimestamp(cs); err != nil {
				return false, nil
			}
		}
		return compareOrd(op, t.Compare(want)), nil
	}
	return false, fail(ErrRuntime, "unknown operator %s", r.op)
}

func compareOrd(op string, c int) bool {
	switch {
	case strings.HasSuffix(op, "LessThanEquals"):
		return c <= 0
	case strings.HasSuffix(op, "GreaterThanEquals"):
		return c >= 0
	case strings.HasSuffix(op, "LessThan"):
		return c < 0
	case strings.HasSuffix(op, "GreaterThan"):
		return c > 0
	default: // Equals
		return c == 0
	}
}

// wildcardMatch implements StringMatches: * matches any run of characters; \* and \\
// are a literal star and backslash.
func wildcardMatch(pattern, s string) bool {
	type tok struct {
		star bool
		c    byte
	}
	var toks []tok
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c == '\\' && i+1 < len(pattern) {
			i++
			toks = append(toks, tok{c: pattern[i]})
		} else if c == '*' {
			toks = append(toks, tok{star: true})
		} else {
			toks = append(toks, tok{c: c})
		}
	}
	// Classic greedy matcher with backtracking to the last star.
	pi, si, starP, starS := 0, 0, -1, 0
	for si < len(s) {
		if pi < len(toks) && !toks[pi].star && toks[pi].c == s[si] {
			pi++
			si++
		} else if pi < len(toks) && toks[pi].star {
			starP, starS = pi, si
			pi++
		} else if starP >= 0 {
			pi = starP + 1
			starS++
			si = starS
		} else {
			return false
		}
	}
	for pi < len(toks) && toks[pi].star {
		pi++
	}
	return pi == len(toks)
}
