package asl

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// call is a compiled intrinsic function call.
type call struct {
	name string
	args []expr
	fn   intrinsicFn
	// for States.Format with a literal template: the pieces between unescaped {}
	fmtParts []string
}

type intrinsicFn func(c *call, args []any) (any, error)

// litExpr is a literal argument.
type litExpr struct {
	v any
	// for string literals: the text split at unescaped {} (States.Format templates)
	parts []string
}

func (e litExpr) eval(*evalEnv) (any, *stateError) { return e.v, nil }

type intrinsicSpec struct {
	fn         intrinsicFn
	minA, maxA int // maxA < 0: unbounded
}

var intrinsics map[string]intrinsicSpec

func init() {
	intrinsics = map[string]intrinsicSpec{
		"States.Format":         {fnFormat, 1, -1},
		"States.StringToJson":   {fnStringToJSON, 1, 1},
		"States.JsonToString":   {fnJSONToString, 1, 1},
		"States.Array":          {fnArray, 0, -1},
		"States.ArrayPartition": {fnArrayPartition, 2, 2},
		"States.ArrayContains":  {fnArrayContains, 2, 2},
		"States.ArrayRange":     {fnArrayRange, 3, 3},
		"States.ArrayGetItem":   {fnArrayGetItem, 2, 2},
		"States.ArrayLength":    {fnArrayLength, 1, 1},
		"States.ArrayUnique":    {fnArrayUnique, 1, 1},
		"States.Base64Encode":   {fnBase64Encode, 1, 1},
		"States.Base64Decode":   {fnBase64Decode, 1, 1},
		"States.Hash":           {fnHash, 2, 2},
		"States.JsonMerge":      {fnJSONMerge, 3, 3},
		"States.MathRandom":     {fnMathRandom, 2, 3},
		"States.MathAdd":        {fnMathAdd, 2, 2},
		"States.StringSplit":    {fnStringSplit, 2, 2},
		"States.UUID":           {fnUUID, 0, 0},
	}
}

func (c *call) eval(env *evalEnv) (any, *stateError) {
	args := make([]any, len(c.args))
	for i, a := range c.args {
		v, err := a.eval(env)
		if err != nil {
			if err.Name == ErrRuntime {
				return nil, fail(ErrIntrinsicFailure, "%s: argument %d: %s", c.name, i+1, err.Cause)
			}
			return nil, err
		}
		args[i] = v
	}
	v, err := c.fn(c, args)
	if err != nil {
		return nil, fail(ErrIntrinsicFailure, "%s: %v", c.name, err)
	}
	return v, nil
}

// parseIntrinsic parses a whole "States.X(...)" string.
func parseIntrinsic(s string) (*call, error) {
	p := &iparser{s: s}
	c, err := p.call()
	if err != nil {
		return nil, fmt.Errorf("intrinsic %q: %v", s, err)
	}
	p.space()
	if p.i != len(p.s) {
		return nil, fmt.Errorf("intrinsic %q: unexpected %q after the call", s, p.s[p.i:])
	}
	return c, nil
}

type iparser struct {
	s string
	i int
}

func (p *iparser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
}

func (p *iparser) call() (*call, error) {
	p.space()
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != '(' {
		p.i++
	}
	name := strings.TrimSpace(p.s[start:p.i])
	if p.i >= len(p.s) {
		return nil, fmt.Errorf("missing ( after %q", name)
	}
	spec, ok := intrinsics[name]
	if !ok {
		return nil, fmt.Errorf("unknown intrinsic function %q", name)
	}
	p.i++ // (
	c := &call{name: name, fn: spec.fn}
	p.space()
	if p.i < len(p.s) && p.s[p.i] == ')' {
		p.i++
	} else {
		for {
			a, err := p.arg()
			if err != nil {
				return nil, err
			}
			c.args = append(c.args, a)
			p.space()
			if p.i >= len(p.s) {
				return nil, fmt.Errorf("missing ) in %s", name)
			}
			if p.s[p.i] == ')' {
				p.i++
				break
			}
			if p.s[p.i] != ',' {
				return nil, fmt.Errorf("expected , or ) at %q", p.s[p.i:])
			}
			p.i++
		}
	}
	if len(c.args) < spec.minA || (spec.maxA >= 0 && len(c.args) > spec.maxA) {
		return nil, fmt.Errorf("%s takes %s, got %d", name, arity(spec), len(c.args))
	}
	if name == "States.Format" {
		if l, ok := c.args[0].(litExpr); ok {
			if _, isStr := l.v.(string); !isStr {
				return nil, fmt.Errorf("States.Format: the template must be a string")
			}
			c.fmtParts = l.parts
			if len(c.fmtParts)-1 != len(c.args)-1 {
				return nil, fmt.Errorf("States.Format: template has %d {} but %d arguments follow", len(c.fmtParts)-1, len(c.args)-1)
			}
		}
	}
	return c, nil
}

func arity(s intrinsicSpec) string {
	switch {
	case s.maxA < 0:
		return fmt.Sprintf("at least %d arguments", s.minA)
	case s.minA == s.maxA:
		return fmt.Sprintf("%d arguments", s.minA)
	default:
		return fmt.Sprintf("%d to %d arguments", s.minA, s.maxA)
	}
}

func (p *iparser) arg() (expr, error) {
	p.space()
	if p.i >= len(p.s) {
		return nil, fmt.Errorf("missing argument")
	}
	switch c := p.s[p.i]; {
	case c == '\'':
		return p.str()
	case c == '$':
		return p.path()
	case strings.HasPrefix(p.s[p.i:], "States."):
		return p.call()
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		p.i++
		for p.i < len(p.s) && strings.IndexByte("0123456789.eE+-", p.s[p.i]) >= 0 {
			p.i++
		}
		f, err := strconv.ParseFloat(p.s[start:p.i], 64)
		if err != nil {
			return nil, fmt.Errorf("bad number %q", p.s[start:p.i])
		}
		return litExpr{v: f}, nil
	default:
		for _, w := range []struct {
			s string
			v any
		}{{"true", true}, {"false", false}, {"null", nil}} {
			if strings.HasPrefix(p.s[p.i:], w.s) {
				p.i += len(w.s)
				return litExpr{v: w.v}, nil
			}
		}
		return nil, fmt.Errorf("unexpected %q", p.s[p.i:])
	}
}

// str reads a quoted literal. \' \{ \} \\ escape the reserved characters; an
// unescaped {} is a States.Format placeholder.
func (p *iparser) str() (expr, error) {
	p.i++ // opening quote
	var cur, all strings.Builder
	var parts []string
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '\\':
			if p.i+1 >= len(p.s) {
				return nil, fmt.Errorf("dangling \\ in string literal")
			}
			cur.WriteByte(p.s[p.i+1])
			all.WriteByte(p.s[p.i+1])
			p.i += 2
		case c == '\'':
			p.i++
			parts = append(parts, cur.String())
			return litExpr{v: all.String(), parts: parts}, nil
		case c == '{' && p.i+1 < len(p.s) && p.s[p.i+1] == '}':
			parts = append(parts, cur.String())
			cur.Reset()
			all.WriteString("{}")
			p.i += 2
		default:
			cur.WriteByte(c)
			all.WriteByte(c)
			p.i++
		}
	}
	return nil, fmt.Errorf("unterminated string literal")
}

func (p *iparser) path() (expr, error) {
	start := p.i
	depth := 0
	var quote byte
	for p.i < len(p.s) {
		c := p.s[p.i]
		if quote != 0 {
			if c == '\\' {
				p.i++
			} else if c == quote {
				quote = 0
			}
			p.i++
			continue
		}
		switch c {
		case '\'', '"':
			quote = c
		case '[', '(':
			depth++
		case ']':
			depth--
		case ')':
			if depth == 0 {
				goto done
			}
			depth--
		case ',':
			if depth == 0 {
				goto done
			}
		}
		p.i++
	}
done:
	ps, err := parsePath(strings.TrimSpace(p.s[start:p.i]))
	if err != nil {
		return nil, err
	}
	return pathExpr{ps}, nil
}

// ---- the functions ----

func fnFormat(c *call, args []any) (any, error) {
	parts := c.fmtParts
	if parts == nil {
		t, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("the template must be a string")
		}
		parts = strings.Split(t, "{}")
	}
	if len(parts)-1 != len(args)-1 {
		return nil, fmt.Errorf("template has %d {} but %d arguments follow", len(parts)-1, len(args)-1)
	}
	var b strings.Builder
	b.WriteString(parts[0])
	for i, a := range args[1:] {
		switch v := a.(type) {
		case string:
			b.WriteString(v)
		case nil:
			b.WriteString("null")
		default:
			j, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			b.Write(j)
		}
		b.WriteString(parts[i+1])
	}
	return b.String(), nil
}

func fnStringToJSON(_ *call, args []any) (any, error) {
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("argument must be a string")
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	return v, nil
}

func fnJSONToString(_ *call, args []any) (any, error) {
	b, err := json.Marshal(args[0])
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func fnArray(_ *call, args []any) (any, error) { return append([]any{}, args...), nil }

func toInt(v any, what string) (int, error) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("%s must be an integer, got %s", what, show(v))
	}
	return int(f), nil
}

func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func fnArrayPartition(_ *call, args []any) (any, error) {
	a, ok := args[0].([]any)
	if !ok {
		return nil, fmt.Errorf("first argument must be an array")
	}
	n, err := toInt(args[1], "chunk size")
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, fmt.Errorf("chunk size must be positive")
	}
	out := []any{}
	for i := 0; i < len(a); i += n {
		out = append(out, append([]any{}, a[i:min(i+n, len(a))]...))
	}
	return out, nil
}

func fnArrayContains(_ *call, args []any) (any, error) {
	a, ok := args[0].([]any)
	if !ok {
		return nil, fmt.Errorf("first argument must be an array")
	}
	for _, e := range a {
		if reflect.DeepEqual(e, args[1]) {
			return true, nil
		}
	}
	return false, nil
}

func fnArrayRange(_ *call, args []any) (any, error) {
	var n [3]int
	for i, w := range []string{"start", "end", "step"} {
		v, err := toInt(args[i], w)
		if err != nil {
			return nil, err
		}
		n[i] = v
	}
	start, end, step := n[0], n[1], n[2]
	if step == 0 {
		return nil, fmt.Errorf("step must not be 0")
	}
	out := []any{}
	for i := start; (step > 0 && i <= end) || (step < 0 && i >= end); i += step {
		if len(out) == 1000 {
			return nil, fmt.Errorf("the range has more than 1000 elements")
		}
		out = append(out, float64(i))
	}
	return out, nil
}

func fnArrayGetItem(_ *call, args []any) (any, error) {
	a, ok := args[0].([]any)
	if !ok {
		return nil, fmt.Errorf("first argument must be an array")
	}
	i, err := toInt(args[1], "index")
	if err != nil {
		return nil, err
	}
	if i < 0 || i >= len(a) {
		return nil, fmt.Errorf("index %d out of range [0,%d)", i, len(a))
	}
	return a[i], nil
}

func fnArrayLength(_ *call, args []any) (any, error) {
	a, ok := args[0].([]any)
	if !ok {
		return nil, fmt.Errorf("argument must be an array")
	}
	return float64(len(a)), nil
}

func fnArrayUnique(_ *call, args []any) (any, error) {
	a, ok := args[0].([]any)
	if !ok {
		return nil, fmt.Errorf("argument must be an array")
	}
	out := []any{}
	seen := map[string]bool{}
	for _, e := range a {
		k := show(e)
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out, nil
}

func fnBase64Encode(_ *call, args []any) (any, error) {
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("argument must be a string")
	}
	if len(s) > 10000 {
		return nil, fmt.Errorf("input longer than 10000 characters")
	}
	return base64.StdEncoding.EncodeToString([]byte(s)), nil
}

func fnBase64Decode(_ *call, args []any) (any, error) {
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("argument must be a string")
	}
	if len(s) > 10000 {
		return nil, fmt.Errorf("input longer than 10000 characters")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base64: %v", err)
	}
	return string(b), nil
}

func fnHash(_ *call, args []any) (any, error) {
	alg, ok := args[1].(string)
	if !ok {
		return nil, fmt.Errorf("algorithm must be a string")
	}
	var h hash.Hash
	switch alg {
	case "MD5":
		h = md5.New()
	case "SHA-1":
		h = sha1.New()
	case "SHA-256":
		h = sha256.New()
	case "SHA-384":
		h = sha512.New384()
	case "SHA-512":
		h = sha512.New()
	default:
		return nil, fmt.Errorf("unknown algorithm %q (MD5, SHA-1, SHA-256, SHA-384, SHA-512)", alg)
	}
	s, ok := args[0].(string)
	if !ok {
		b, err := json.Marshal(args[0])
		if err != nil {
			return nil, err
		}
		s = string(b)
	}
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil)), nil
}

func fnJSONMerge(_ *call, args []any) (any, error) {
	a, ok1 := args[0].(map[string]any)
	b, ok2 := args[1].(map[string]any)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("the first two arguments must be objects")
	}
	if deep, _ := args[2].(bool); deep || args[2] == nil {
		return nil, fmt.Errorf("only shallow merges are supported: the third argument must be false")
	}
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out, nil
}

func fnMathRandom(_ *call, args []any) (any, error) {
	lo, err := toInt(args[0], "start")
	if err != nil {
		return nil, err
	}
	hi, err := toInt(args[1], "end")
	if err != nil {
		return nil, err
	}
	if hi <= lo {
		return nil, fmt.Errorf("end must be greater than start")
	}
	r := rand.IntN
	if len(args) == 3 {
		seed, err := toInt(args[2], "seed")
		if err != nil {
			return nil, err
		}
		r = rand.New(rand.NewPCG(uint64(seed), 0)).IntN
	}
	return float64(lo + r(hi-lo)), nil
}

func fnMathAdd(_ *call, args []any) (any, error) {
	a, err := toInt(args[0], "first argument")
	if err != nil {
		return nil, err
	}
	b, err := toInt(args[1], "second argument")
	if err != nil {
		return nil, err
	}
	return float64(a + b), nil
}

func fnStringSplit(_ *call, args []any) (any, error) {
	s, ok1 := args[0].(string)
	d, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("both arguments must be strings")
	}
	out := []any{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(d, r) }) {
		out = append(out, f)
	}
	return out, nil
}

func fnUUID(*call, []any) (any, error) { return uuid.NewString(), nil }
