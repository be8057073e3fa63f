package asl

import (
	"fmt"
	"strings"

	"github.com/ohler55/ojg/jp"
)

// path is a compiled JSONPath. A "$$" path reads the context object instead of the
// state's data. Definite paths (only child names and indexes) are walked directly; the
// others go through ojg's evaluator and yield an array of every match, as Step Functions
// does for InputPath/Parameters.
type path struct {
	raw      string
	ctx      bool  // starts with $$
	steps    []any // for definite paths: string (child) or int (index)
	definite bool
	expr     jp.Expr
}

func parsePath(s string) (*path, error) {
	p := &path{raw: s}
	src := s
	if strings.HasPrefix(s, "$$") {
		p.ctx = true
		src = s[1:]
	}
	if !strings.HasPrefix(src, "$") {
		return nil, fmt.Errorf("path %q must start with $", s)
	}
	x, err := jp.ParseString(src)
	if err != nil {
		return nil, fmt.Errorf("bad path %q: %v", s, err)
	}
	p.expr = x
	p.definite = true
	for i, f := range x {
		switch v := f.(type) {
		case jp.Root:
			if i != 0 {
				p.definite = false
			}
		case jp.Bracket:
		case jp.Child:
			p.steps = append(p.steps, string(v))
		case jp.Nth:
			p.steps = append(p.steps, int(v))
		default:
			p.definite = false
		}
	}
	if len(x) == 0 {
		return nil, fmt.Errorf("bad path %q: empty", s)
	}
	if _, ok := x[0].(jp.Root); !ok {
		return nil, fmt.Errorf("path %q must start with $", s)
	}
	return p, nil
}

// parseRefPath parses a reference path: a definite path that names one node.
func parseRefPath(s string) (*path, error) {
	p, err := parsePath(s)
	if err != nil {
		return nil, err
	}
	if !p.definite || p.ctx {
		return nil, fmt.Errorf("%q is not a reference path (only $, .name, ['name'] and [index] allowed)", s)
	}
	return p, nil
}

// get evaluates the path against data (or ctx for $$ paths). A definite path that
// matches nothing is an error; an indefinite one yields an array (maybe empty).
func (p *path) get(data any, ctx func() any) (any, bool) {
	if p.ctx {
		data = ctx()
	}
	if !p.definite {
		res := p.expr.Get(data)
		if res == nil {
			res = []any{}
		}
		return res, true
	}
	return walk(data, p.steps)
}

func walk(v any, steps []any) (any, bool) {
	for _, s := range steps {
		switch k := s.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil, false
			}
			if v, ok = m[k]; !ok {
				return nil, false
			}
		case int:
			a, ok := v.([]any)
			if !ok {
				return nil, false
			}
			if k < 0 {
				k += len(a)
			}
			if k < 0 || k >= len(a) {
				return nil, false
			}
			v = a[k]
		}
	}
	return v, true
}

// setRef returns data with the node at the reference path p replaced by val, creating
// missing objects on the way. It fails when the way runs through a non-object.
func setRef(data any, p *path, val any) (any, error) {
	if len(p.steps) == 0 {
		return val, nil
	}
	if data == nil {
		data = map[string]any{}
	}
	cur := data
	for i, s := range p.steps {
		last := i == len(p.steps)-1
		switch k := s.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("cannot set %s: %s is not an object", p.raw, stepsString(p.steps[:i]))
			}
			if last {
				m[k] = val
				return data, nil
			}
			next, ok := m[k]
			if !ok || next == nil {
				next = map[string]any{}
				m[k] = next
			}
			cur = next
		case int:
			a, ok := cur.([]any)
			if !ok || k < 0 || k >= len(a) {
				return nil, fmt.Errorf("cannot set %s: %s has no element %d", p.raw, stepsString(p.steps[:i]), k)
			}
			if last {
				a[k] = val
				return data, nil
			}
			cur = a[k]
		}
	}
	return data, nil
}

func stepsString(steps []any) string {
	var b strings.Builder
	b.WriteString("$")
	for _, s := range steps {
		switch k := s.(type) {
		case string:
			b.WriteString("." + k)
		case int:
			fmt.Fprintf(&b, "[%d]", k)
		}
	}
	return b.String()
}

// deepCopy copies a JSON value so that later in-place edits (ResultPath) cannot reach
// values shared with templates or other parts of the document.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = deepCopy(e)
		}
		return a
	default:
		return v
	}
}
