package asl

import (
	"fmt"
	"sort"
	"strings"
)

// Error names the interpreter raises itself (as Step Functions names them).
const (
	ErrAll              = "States.ALL"
	ErrTaskFailed       = "States.TaskFailed"
	ErrTimeout          = "States.Timeout"
	ErrHeartbeatTimeout = "States.HeartbeatTimeout"
	ErrRuntime          = "States.Runtime"
	ErrNoChoiceMatched  = "States.NoChoiceMatched"
	ErrIntrinsicFailure = "States.IntrinsicFailure"
	ErrResultPathMatch  = "States.ResultPathMatchFailure"
	ErrParameterPath    = "States.ParameterPathFailure"
	ErrBranchFailed     = "States.BranchFailed"
	ErrToleratedFailure = "States.ExceedToleratedFailureThreshold"
	ErrDataLimit        = "States.DataLimitExceeded"
)

// stateError is a failure inside the state machine: a name for Retry/Catch and a cause.
type stateError struct {
	Name  string
	Cause string
}

func (e *stateError) Error() string { return e.Name + ": " + e.Cause }

func fail(name, format string, args ...any) *stateError {
	return &stateError{Name: name, Cause: fmt.Sprintf(format, args...)}
}

// evalEnv is what an expression can read: the data and, lazily, the context object.
type evalEnv struct {
	data any
	ctx  func() any
}

// expr is a compiled dynamic value: a path or an intrinsic function call.
type expr interface {
	eval(env *evalEnv) (any, *stateError)
}

// compileExpr compiles the value of a "key.$" field.
func compileExpr(s string) (expr, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "$") {
		p, err := parsePath(s)
		if err != nil {
			return nil, err
		}
		return pathExpr{p}, nil
	}
	if strings.HasPrefix(s, "States.") {
		return parseIntrinsic(s)
	}
	return nil, fmt.Errorf("%q is neither a path nor an intrinsic function", s)
}

type pathExpr struct{ p *path }

func (e pathExpr) eval(env *evalEnv) (any, *stateError) {
	v, ok := e.p.get(env.data, env.ctx)
	if !ok {
		return nil, fail(ErrRuntime, "the JSONPath %s could not be found in the input", e.p.raw)
	}
	return v, nil
}

// tmpl is a compiled payload template (Parameters, ResultSelector, ItemSelector).
type tmpl interface {
	eval(env *evalEnv) (any, *stateError)
}

type litT struct{ v any }

func (t litT) eval(*evalEnv) (any, *stateError) { return t.v, nil }

type objT struct {
	keys []string
	vals []tmpl
	// what each key is, for error messages
	src []string
}

func (t *objT) eval(env *evalEnv) (any, *stateError) {
	m := make(map[string]any, len(t.keys))
	for i, k := range t.keys {
		v, err := t.vals[i].eval(env)
		if err != nil {
			if x, ok := t.vals[i].(exprT); ok && err.Name == ErrRuntime {
				if p, ok := x.e.(pathExpr); ok { // worded as Step Functions words it
					in := show(env.data)
					if p.p.ctx {
						in = show(env.ctx())
					}
					if len(in) > 256 {
						in = in[:256] + "..."
					}
					err = fail(ErrRuntime, "The JSONPath '%s' specified for the field '%s' could not be found in the input '%s'", p.p.raw, t.src[i], in)
				}
			}
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

type arrT struct{ elems []tmpl }

func (t *arrT) eval(env *evalEnv) (any, *stateError) {
	a := make([]any, len(t.elems))
	for i, e := range t.elems {
		v, err := e.eval(env)
		if err != nil {
			return nil, err
		}
		a[i] = v
	}
	return a, nil
}

type exprT struct{ e expr }

func (t exprT) eval(env *evalEnv) (any, *stateError) { return t.e.eval(env) }

// compileTemplate compiles a payload template; field is where it sits, for errors.
// usesCtx reports whether anything in it reads the context object.
func compileTemplate(v any, field string, usesCtx *bool) (tmpl, error) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t := &objT{}
		seen := map[string]string{}
		for _, k := range keys {
			fv := x[k]
			name := k
			var node tmpl
			if strings.HasSuffix(k, ".$") {
				name = strings.TrimSuffix(k, ".$")
				s, ok := fv.(string)
				if !ok {
					return nil, fmt.Errorf("%s.%s: a field ending in .$ needs a string (a path or an intrinsic function)", field, k)
				}
				e, err := compileExpr(s)
				if err != nil {
					return nil, fmt.Errorf("%s.%s: %v", field, k, err)
				}
				if strings.Contains(s, "$$") {
					*usesCtx = true
				}
				node = exprT{e}
			} else {
				sub, err := compileTemplate(fv, field+"."+k, usesCtx)
				if err != nil {
					return nil, err
				}
				node = sub
			}
			if other, dup := seen[name]; dup {
				return nil, fmt.Errorf("%s: fields %q and %q both produce %q", field, other, k, name)
			}
			seen[name] = k
			t.keys = append(t.keys, name)
			t.vals = append(t.vals, node)
			t.src = append(t.src, k)
		}
		return t, nil
	case []any:
		t := &arrT{}
		static := true
		for i, e := range x {
			sub, err := compileTemplate(e, fmt.Sprintf("%s[%d]", field, i), usesCtx)
			if err != nil {
				return nil, err
			}
			if _, ok := sub.(litT); !ok {
				static = false
			}
			t.elems = append(t.elems, sub)
		}
		if static {
			return litT{x}, nil
		}
		return t, nil
	default:
		return litT{v}, nil
	}
}
