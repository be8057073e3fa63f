package asl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/straas/straas/shared/errs"
)

// Service integrations the interpreter implements; any other Resource names a function.
const (
	ResLambdaInvoke     = "arn:aws:states:::lambda:invoke"
	ResLambdaInvokeWait = "arn:aws:states:::lambda:invoke.waitForTaskToken"
	ResStartExecSync    = "arn:aws:states:::states:startExecution.sync:2"
	// The SQS integrations send Parameters.MessageBody (an object as JSON, a string as
	// it is) through Config.Queue to the queue named by the last "/"-separated part of
	// Parameters.QueueUrl (an SQS queue URL ends in the queue's name). sendMessage's result
	// is {"MessageId", "MD5OfMessageBody"}, as SQS answers.
	ResSQSSend     = "arn:aws:states:::sqs:sendMessage"
	ResSQSSendWait = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
)

type resKind uint8

const (
	resFunc resKind = iota + 1
	resInvoke
	resInvokeWait
	resStartSync
	resSQS
	resSQSWait
)

// Machine is a loaded, validated state machine definition.
type Machine struct {
	name    string
	def     []byte
	root    *scope
	timeout int // seconds; 0 = none
}

// Name is the state machine's name, as given to Load.
func (m *Machine) Name() string { return m.name }

// Definition is the definition after substitution.
func (m *Machine) Definition() []byte { return m.def }

type scope struct {
	startAt string
	states  map[string]*state
	field   string // where it sits in the definition, for messages
}

type optPath struct {
	null bool  // the field was JSON null
	p    *path // nil: "$"
}

type state struct {
	name  string
	typ   string
	field string // "States.<name>" (with the enclosing branch's prefix)
	next  string
	end   bool

	inputPath, outputPath optPath
	resultPath            optPath // reference path
	parameters            tmpl
	resultSelector        tmpl
	usesCtx               bool // Parameters/ItemSelector read $$
	result                any
	hasResult             bool
	retry                 []*retrier
	catch                 []*catcher

	// Task
	resource      string
	res           resKind
	timeout       int
	timeoutPath   *path
	heartbeat     int
	heartbeatPath *path
	funcName      string // static Parameters.FunctionName of lambda:invoke (StateMachineArn of startExecution)

	// Choice
	choices []*rule
	dflt    string

	// Wait
	seconds       int
	hasSeconds    bool
	secondsPath   *path
	timestamp     time.Time
	hasTimestamp  bool
	timestampPath *path

	// Parallel
	branches []*scope

	// Map
	itemsPath    *path
	itemSelector tmpl
	processor    *scope
	maxConc      int
	maxConcPath  *path
	distributed  bool
	tolCount     int
	tolPct       float64
	hasTolerance bool

	// Fail
	errName, cause       string
	errExpr, causeExpr   expr
	hasErrStr, hasCauseS bool
}

type retrier struct {
	errors      []string
	interval    float64
	maxAttempts int
	backoff     float64
	maxDelay    float64
	jitter      bool
}

type catcher struct {
	errors     []string
	next       string
	resultPath optPath
}

var allowed = map[string][]string{
	"Pass":     {"Next", "End", "InputPath", "OutputPath", "Parameters", "ResultPath", "Result"},
	"Task":     {"Next", "End", "InputPath", "OutputPath", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch", "Resource", "TimeoutSeconds", "TimeoutSecondsPath", "HeartbeatSeconds", "HeartbeatSecondsPath", "Credentials"},
	"Choice":   {"InputPath", "OutputPath", "Choices", "Default"},
	"Wait":     {"Next", "End", "InputPath", "OutputPath", "Seconds", "SecondsPath", "Timestamp", "TimestampPath"},
	"Succeed":  {"InputPath", "OutputPath"},
	"Fail":     {"Error", "ErrorPath", "Cause", "CausePath"},
	"Parallel": {"Next", "End", "InputPath", "OutputPath", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch", "Branches"},
	"Map":      {"Next", "End", "InputPath", "OutputPath", "Parameters", "ItemsPath", "ItemSelector", "ItemProcessor", "Iterator", "MaxConcurrency", "MaxConcurrencyPath", "ResultSelector", "ResultPath", "Retry", "Catch", "ToleratedFailureCount", "ToleratedFailurePercentage", "Label", "ItemReader", "ItemBatcher", "ResultWriter"},
}

var substRE = regexp.MustCompile(`\$\{([^}]*)\}`)

// Load substitutes ${Key} with subst[Key] (as SAM's DefinitionSubstitutions do) and
// parses and validates the definition. Errors are errs.Invalid and name the state and
// field at fault.
func Load(name string, def []byte, subst map[string]string) (*Machine, error) {
	op := "asl: load state machine " + name
	var missing []string
	out := substRE.ReplaceAllFunc(def, func(m []byte) []byte {
		key := string(m[2 : len(m)-1])
		v, ok := subst[key]
		if !ok {
			missing = append(missing, "${"+key+"}")
			return m
		}
		return []byte(v)
	})
	if len(missing) > 0 {
		return nil, &errs.Error{Kind: errs.Invalid, Op: op, Msg: "unresolved substitutions " + strings.Join(missing, ", ")}
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, &errs.Error{Kind: errs.Invalid, Op: op, Msg: "definition is not JSON", Err: err}
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, &errs.Error{Kind: errs.Invalid, Op: op, Msg: "definition must be a JSON object"}
	}
	m := &Machine{name: name, def: out}
	c := &compiler{}
	for k, v := range top {
		switch k {
		case "StartAt", "States", "Comment", "Version":
		case "TimeoutSeconds":
			n, err := intField(v)
			if err != nil || n <= 0 {
				c.errf("TimeoutSeconds", "must be a positive integer")
			}
			m.timeout = n
		case "QueryLanguage":
			if v != "JSONPath" {
				c.errf("QueryLanguage", "only JSONPath is supported")
			}
		default:
			c.errf(k, "unknown field")
		}
	}
	if c.err == nil {
		m.root = c.scope(top, "")
	}
	if c.err != nil {
		var f *fieldErr
		f = c.err
		return nil, &errs.Error{Kind: errs.Invalid, Op: op, Field: f.field, Msg: f.msg}
	}
	return m, nil
}

type fieldErr struct{ field, msg string }

type compiler struct{ err *fieldErr }

func (c *compiler) errf(field, format string, args ...any) {
	if c.err == nil {
		c.err = &fieldErr{field: field, msg: fmt.Sprintf(format, args...)}
	}
}

func join(prefix, f string) string {
	if prefix == "" {
		return f
	}
	return prefix + "." + f
}

func intField(v any) (int, error) {
	f, ok := v.(float64)
	if !ok || f != math.Trunc(f) || f < 0 || f > 99999999 {
		return 0, fmt.Errorf("not a non-negative integer")
	}
	return int(f), nil
}

func (c *compiler) scope(obj map[string]any, prefix string) *scope {
	sc := &scope{states: map[string]*state{}, field: prefix}
	start, ok := obj["StartAt"].(string)
	if !ok || start == "" {
		c.errf(join(prefix, "StartAt"), "missing or not a string")
		return sc
	}
	sc.startAt = start
	states, ok := obj["States"].(map[string]any)
	if !ok || len(states) == 0 {
		c.errf(join(prefix, "States"), "missing or empty")
		return sc
	}
	names := make([]string, 0, len(states))
	for n := range states {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		field := join(prefix, "States."+n)
		if len(n) > 80 {
			c.errf(field, "state names are at most 80 characters")
		}
		so, ok := states[n].(map[string]any)
		if !ok {
			c.errf(field, "must be an object")
			continue
		}
		sc.states[n] = c.state(n, so, field)
	}
	if c.err != nil {
		return sc
	}
	if _, ok := sc.states[start]; !ok {
		c.errf(join(prefix, "StartAt"), "names unknown state %q", start)
	}
	// Every transition target must be a state of this scope.
	for _, n := range names {
		s := sc.states[n]
		check := func(f, target string) {
			if target == "" {
				return
			}
			if _, ok := sc.states[target]; !ok {
				c.errf(s.field+"."+f, "names unknown state %q", target)
			}
		}
		check("Next", s.next)
		check("Default", s.dflt)
		for i, r := range s.choices {
			check(fmt.Sprintf("Choices[%d].Next", i), r.next)
		}
		for i, ct := range s.catch {
			check(fmt.Sprintf("Catch[%d].Next", i), ct.next)
		}
	}
	return sc
}

func (c *compiler) state(name string, obj map[string]any, field string) *state {
	s := &state{name: name, field: field}
	typ, _ := obj["Type"].(string)
	fields, ok := allowed[typ]
	if !ok {
		c.errf(field+".Type", "unknown state type %q", obj["Type"])
		return s
	}
	s.typ = typ
	ok2 := map[string]bool{"Type": true, "Comment": true}
	for _, f := range fields {
		ok2[f] = true
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !ok2[k] {
			c.errf(field+"."+k, "unknown field for a %s state", typ)
			return s
		}
	}
	str := func(k string) (string, bool) {
		v, present := obj[k]
		if !present {
			return "", false
		}
		sv, ok := v.(string)
		if !ok {
			c.errf(field+"."+k, "must be a string")
		}
		return sv, ok
	}
	// Next / End
	switch typ {
	case "Choice", "Succeed", "Fail":
	default:
		next, hasNext := str("Next")
		end, hasEnd := obj["End"]
		switch {
		case hasNext && hasEnd:
			c.errf(field, "has both Next and End")
		case hasEnd:
			if end != true {
				c.errf(field+".End", "must be true")
			}
			s.end = true
		case hasNext:
			if next == "" {
				c.errf(field+".Next", "must name a state")
			}
			s.next = next
		default:
			c.errf(field, "needs Next or End")
		}
	}
	s.inputPath = c.optPath(obj, "InputPath", field, false)
	s.outputPath = c.optPath(obj, "OutputPath", field, false)
	s.resultPath = c.optPath(obj, "ResultPath", field, true)
	if v, ok := obj["Parameters"]; ok && typ != "Map" {
		s.parameters = c.template(v, field+".Parameters", &s.usesCtx)
	}
	if v, ok := obj["ResultSelector"]; ok {
		var dummy bool
		s.resultSelector = c.template(v, field+".ResultSelector", &dummy)
	}
	if v, ok := obj["Result"]; ok {
		s.result, s.hasResult = v, true
	}
	s.retry = c.retriers(obj["Retry"], field+".Retry")
	s.catch = c.catchers(obj["Catch"], field+".Catch")

	switch typ {
	case "Task":
		c.task(s, obj, field)
	case "Choice":
		a, ok := obj["Choices"].([]any)
		if !ok || len(a) == 0 {
			c.errf(field+".Choices", "must be a non-empty array")
			return s
		}
		for i, e := range a {
			r, err := compileRule(e, fmt.Sprintf("%s.Choices[%d]", field, i), true)
			if err != nil {
				c.errf(fmt.Sprintf("%s.Choices[%d]", field, i), "%v", err)
				return s
			}
			s.choices = append(s.choices, r)
		}
		if d, ok := str("Default"); ok {
			s.dflt = d
		}
	case "Wait":
		n := 0
		if v, ok := obj["Seconds"]; ok {
			sec, err := intField(v)
			if err != nil {
				c.errf(field+".Seconds", "%v", err)
			}
			s.seconds, s.hasSeconds = sec, true
			n++
		}
		if v, ok := str("SecondsPath"); ok {
			s.secondsPath = c.path(v, field+".SecondsPath")
			n++
		}
		if v, ok := str("Timestamp"); ok {
			t, err := parseTimestamp(v)
			if err != nil {
				c.errf(field+".Timestamp", "must be an RFC 3339 timestamp")
			}
			s.timestamp, s.hasTimestamp = t, true
			n++
		}
		if v, ok := str("TimestampPath"); ok {
			s.timestampPath = c.path(v, field+".TimestampPath")
			n++
		}
		if n != 1 {
			c.errf(field, "a Wait state needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath")
		}
	case "Fail":
		if v, ok := str("Error"); ok {
			s.errName, s.hasErrStr = v, true
		}
		if v, ok := str("Cause"); ok {
			s.cause, s.hasCauseS = v, true
		}
		if v, ok := str("ErrorPath"); ok {
			if s.hasErrStr {
				c.errf(field+".ErrorPath", "cannot be used with Error")
			}
			s.errExpr = c.expr(v, field+".ErrorPath")
		}
		if v, ok := str("CausePath"); ok {
			if s.hasCauseS {
				c.errf(field+".CausePath", "cannot be used with Cause")
			}
			s.causeExpr = c.expr(v, field+".CausePath")
		}
	case "Parallel":
		a, ok := obj["Branches"].([]any)
		if !ok || len(a) == 0 {
			c.errf(field+".Branches", "must be a non-empty array")
			return s
		}
		for i, b := range a {
			bf := fmt.Sprintf("%s.Branches[%d]", field, i)
			bo, ok := b.(map[string]any)
			if !ok {
				c.errf(bf, "must be an object")
				return s
			}
			for k := range bo {
				if k != "StartAt" && k != "States" && k != "Comment" {
					c.errf(bf+"."+k, "unknown field")
				}
			}
			s.branches = append(s.branches, c.scope(bo, bf))
		}
	case "Map":
		c.mapState(s, obj, field)
	}
	if len(s.retry) > 0 || len(s.catch) > 0 {
		switch typ {
		case "Task", "Parallel", "Map":
		default:
			c.errf(field, "only Task, Parallel and Map states take Retry and Catch")
		}
	}
	return s
}

func (c *compiler) optPath(obj map[string]any, k, field string, ref bool) optPath {
	v, ok := obj[k]
	if !ok {
		return optPath{}
	}
	if v == nil {
		return optPath{null: true}
	}
	s, ok := v.(string)
	if !ok {
		c.errf(field+"."+k, "must be a path or null")
		return optPath{}
	}
	var p *path
	var err error
	if ref {
		p, err = parseRefPath(s)
	} else {
		p, err = parsePath(s)
	}
	if err != nil {
		c.errf(field+"."+k, "%v", err)
		return optPath{}
	}
	if p.definite && len(p.steps) == 0 && !p.ctx {
		return optPath{} // "$"
	}
	return optPath{p: p}
}

func (c *compiler) path(s, field string) *path {
	p, err := parsePath(s)
	if err != nil {
		c.errf(field, "%v", err)
	}
	return p
}

func (c *compiler) expr(s, field string) expr {
	e, err := compileExpr(s)
	if err != nil {
		c.errf(field, "%v", err)
	}
	return e
}

func (c *compiler) template(v any, field string, usesCtx *bool) tmpl {
	if _, ok := v.(map[string]any); !ok {
		c.errf(field, "must be an object")
		return nil
	}
	t, err := compileTemplate(v, field, usesCtx)
	if err != nil {
		c.errf(field, "%v", err)
	}
	return t
}

func (c *compiler) errorList(v any, field string) []string {
	a, ok := v.([]any)
	if !ok || len(a) == 0 {
		c.errf(field, "must be a non-empty array of error names")
		return nil
	}
	var out []string
	for i, e := range a {
		s, ok := e.(string)
		if !ok || s == "" {
			c.errf(fmt.Sprintf("%s[%d]", field, i), "must be an error name")
			return nil
		}
		if s == ErrAll && len(a) != 1 {
			c.errf(field, "States.ALL must appear alone")
		}
		out = append(out, s)
	}
	return out
}

// errorHandlers compiles Retry or Catch: an array of objects, each with ErrorEquals, where
// one matching States.ALL must come last. each compiles one object at field f.
func errorHandlers[T any](c *compiler, v any, field, what string, each func(o map[string]any, f string) (T, []string)) []T {
	if v == nil {
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		c.errf(field, "must be an array")
		return nil
	}
	var out []T
	for i, e := range a {
		f := fmt.Sprintf("%s[%d]", field, i)
		o, ok := e.(map[string]any)
		if !ok {
			c.errf(f, "must be an object")
			return nil
		}
		h, names := each(o, f)
		if names == nil {
			c.errf(f+".ErrorEquals", "required")
		}
		if containsStr(names, ErrAll) && i != len(a)-1 {
			c.errf(f, "a %s with States.ALL must be the last", what)
		}
		out = append(out, h)
	}
	return out
}

func (c *compiler) retriers(v any, field string) []*retrier {
	return errorHandlers(c, v, field, "retrier", func(o map[string]any, f string) (*retrier, []string) {
		r := &retrier{interval: 1, maxAttempts: 3, backoff: 2}
		for k, fv := range o {
			switch k {
			case "ErrorEquals":
				r.errors = c.errorList(fv, f+".ErrorEquals")
			case "IntervalSeconds":
				n, err := intField(fv)
				if err != nil || n < 1 {
					c.errf(f+"."+k, "must be a positive integer")
				}
				r.interval = float64(n)
			case "MaxAttempts":
				n, err := intField(fv)
				if err != nil {
					c.errf(f+"."+k, "%v", err)
				}
				r.maxAttempts = n
			case "BackoffRate":
				n, ok := fv.(float64)
				if !ok || n < 1 {
					c.errf(f+"."+k, "must be a number >= 1.0")
				}
				r.backoff = n
			case "MaxDelaySeconds":
				n, err := intField(fv)
				if err != nil || n < 1 {
					c.errf(f+"."+k, "must be a positive integer")
				}
				r.maxDelay = float64(n)
			case "JitterStrategy":
				switch fv {
				case "FULL":
					r.jitter = true
				case "NONE":
				default:
					c.errf(f+"."+k, "must be FULL or NONE")
				}
			case "Comment":
			default:
				c.errf(f+"."+k, "unknown field")
			}
		}
		return r, r.errors
	})
}

func (c *compiler) catchers(v any, field string) []*catcher {
	return errorHandlers(c, v, field, "catcher", func(o map[string]any, f string) (*catcher, []string) {
		ct := &catcher{}
		for k, fv := range o {
			switch k {
			case "ErrorEquals":
				ct.errors = c.errorList(fv, f+".ErrorEquals")
			case "Next":
				s, ok := fv.(string)
				if !ok || s == "" {
					c.errf(f+".Next", "must name a state")
				}
				ct.next = s
			case "ResultPath":
			case "Comment":
			default:
				c.errf(f+"."+k, "unknown field")
			}
		}
		ct.resultPath = c.optPath(o, "ResultPath", f, true)
		if ct.next == "" {
			c.errf(f+".Next", "required")
		}
		return ct, ct.errors
	})
}

func containsStr(a []string, s string) bool {
	for _, e := range a {
		if e == s {
			return true
		}
	}
	return false
}

func (c *compiler) task(s *state, obj map[string]any, field string) {
	res, ok := obj["Resource"].(string)
	if !ok || res == "" {
		c.errf(field+".Resource", "required")
		return
	}
	s.resource = res
	switch {
	case res == ResLambdaInvoke || res == ResLambdaInvokeWait:
		s.res = resInvoke
		if res == ResLambdaInvokeWait {
			s.res = resInvokeWait
		}
		p, _ := obj["Parameters"].(map[string]any)
		fn, hasFn := p["FunctionName"].(string)
		_, hasDyn := p["FunctionName.$"]
		if !hasFn && !hasDyn {
			c.errf(field+".Parameters.FunctionName", "required for %s", res)
		}
		s.funcName = fn
	case res == ResStartExecSync:
		s.res = resStartSync
		p, _ := obj["Parameters"].(map[string]any)
		arn, has := p["StateMachineArn"].(string)
		_, hasDyn := p["StateMachineArn.$"]
		if !has && !hasDyn {
			c.errf(field+".Parameters.StateMachineArn", "required for %s", res)
		}
		s.funcName = arn // the child machine, checked by New
	case res == ResSQSSend || res == ResSQSSendWait:
		s.res = resSQS
		if res == ResSQSSendWait {
			s.res = resSQSWait
		}
		p, _ := obj["Parameters"].(map[string]any)
		for _, k := range []string{"QueueUrl", "MessageBody"} {
			_, has := p[k]
			_, hasDyn := p[k+".$"]
			if !has && !hasDyn {
				c.errf(field+".Parameters."+k, "required for %s", res)
			}
		}
		if u, ok := p["QueueUrl"]; ok {
			if us, isStr := u.(string); !isStr || queueName(us) == "" {
				c.errf(field+".Parameters.QueueUrl", "must be a queue URL or name")
			}
		}
	case strings.HasPrefix(res, "arn:aws:states:::"):
		c.errf(field+".Resource", "unsupported service integration %q", res)
	default:
		s.res = resFunc
	}
	if v, ok := obj["TimeoutSeconds"]; ok {
		n, err := intField(v)
		if err != nil || n < 1 {
			c.errf(field+".TimeoutSeconds", "must be a positive integer")
		}
		s.timeout = n
	}
	if v, ok := obj["TimeoutSecondsPath"].(string); ok {
		if s.timeout > 0 {
			c.errf(field+".TimeoutSecondsPath", "cannot be used with TimeoutSeconds")
		}
		s.timeoutPath = c.path(v, field+".TimeoutSecondsPath")
	}
	if v, ok := obj["HeartbeatSeconds"]; ok {
		n, err := intField(v)
		if err != nil || n < 1 {
			c.errf(field+".HeartbeatSeconds", "must be a positive integer")
		}
		s.heartbeat = n
		if s.timeout > 0 && n >= s.timeout {
			c.errf(field+".HeartbeatSeconds", "must be smaller than TimeoutSeconds")
		}
	}
	if v, ok := obj["HeartbeatSecondsPath"].(string); ok {
		if s.heartbeat > 0 {
			c.errf(field+".HeartbeatSecondsPath", "cannot be used with HeartbeatSeconds")
		}
		s.heartbeatPath = c.path(v, field+".HeartbeatSecondsPath")
	}
}

func (c *compiler) mapState(s *state, obj map[string]any, field string) {
	for _, k := range []string{"ItemReader", "ItemBatcher", "ResultWriter"} {
		if _, ok := obj[k]; ok {
			c.errf(field+"."+k, "not supported by the embedded interpreter")
		}
	}
	if v, ok := obj["ItemsPath"].(string); ok {
		s.itemsPath = c.path(v, field+".ItemsPath")
	} else if _, ok := obj["ItemsPath"]; ok {
		c.errf(field+".ItemsPath", "must be a path")
	}
	sel, hasSel := obj["ItemSelector"]
	par, hasPar := obj["Parameters"]
	switch {
	case hasSel && hasPar:
		c.errf(field, "has both ItemSelector and Parameters")
	case hasSel:
		s.itemSelector = c.template(sel, field+".ItemSelector", &s.usesCtx)
	case hasPar:
		s.itemSelector = c.template(par, field+".Parameters", &s.usesCtx)
	}
	proc, hasProc := obj["ItemProcessor"].(map[string]any)
	iter, hasIter := obj["Iterator"].(map[string]any)
	pf := field + ".ItemProcessor"
	switch {
	case hasProc && hasIter:
		c.errf(field, "has both ItemProcessor and Iterator")
		return
	case hasIter:
		proc, pf = iter, field+".Iterator"
	case !hasProc:
		c.errf(field+".ItemProcessor", "required")
		return
	}
	for k, v := range proc {
		switch k {
		case "StartAt", "States", "Comment":
		case "ProcessorConfig":
			pc, ok := v.(map[string]any)
			if !ok {
				c.errf(pf+".ProcessorConfig", "must be an object")
				return
			}
			for ck, cv := range pc {
				switch ck {
				case "Mode":
					switch cv {
					case "INLINE":
					case "DISTRIBUTED":
						s.distributed = true
					default:
						c.errf(pf+".ProcessorConfig.Mode", "must be INLINE or DISTRIBUTED")
					}
				case "ExecutionType":
					if cv != "STANDARD" && cv != "EXPRESS" {
						c.errf(pf+".ProcessorConfig.ExecutionType", "must be STANDARD or EXPRESS")
					}
				default:
					c.errf(pf+".ProcessorConfig."+ck, "unknown field")
				}
			}
		default:
			c.errf(pf+"."+k, "unknown field")
		}
	}
	s.processor = c.scope(proc, pf)
	if v, ok := obj["MaxConcurrency"]; ok {
		n, err := intField(v)
		if err != nil {
			c.errf(field+".MaxConcurrency", "%v", err)
		}
		s.maxConc = n
	}
	if v, ok := obj["MaxConcurrencyPath"].(string); ok {
		s.maxConcPath = c.path(v, field+".MaxConcurrencyPath")
	}
	if v, ok := obj["ToleratedFailureCount"]; ok {
		n, err := intField(v)
		if err != nil {
			c.errf(field+".ToleratedFailureCount", "%v", err)
		}
		s.tolCount, s.hasTolerance = n, true
	}
	if v, ok := obj["ToleratedFailurePercentage"]; ok {
		n, ok := v.(float64)
		if !ok || n < 0 || n > 100 {
			c.errf(field+".ToleratedFailurePercentage", "must be a number from 0 to 100")
		}
		s.tolPct, s.hasTolerance = n, true
	}
}

// walkStates calls fn for every state of m, nested branches and processors included.
func (m *Machine) walkStates(fn func(*state)) {
	var rec func(sc *scope)
	rec = func(sc *scope) {
		names := make([]string, 0, len(sc.states))
		for n := range sc.states {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			s := sc.states[n]
			fn(s)
			for _, b := range s.branches {
				rec(b)
			}
			if s.processor != nil {
				rec(s.processor)
			}
		}
	}
	rec(m.root)
}

// waitsForToken reports whether the task completes through a task token: a callback
// task, or a child execution whose end completes the token.
func (s *state) waitsForToken() bool {
	return s.typ == "Task" && (s.callback() || s.res == resStartSync)
}

// callback reports whether the task hands its token to someone else (.waitForTaskToken)
// and then waits for it: its timeout covers the wait, not only the call.
func (s *state) callback() bool {
	return s.typ == "Task" && (s.res == resInvokeWait || s.res == resSQSWait)
}

// usesQueue reports whether a state of m sends to a queue.
func (m *Machine) usesQueue() (field string, ok bool) {
	m.walkStates(func(s *state) {
		if !ok && s.typ == "Task" && (s.res == resSQS || s.res == resSQSWait) {
			field, ok = s.field, true
		}
	})
	return field, ok
}

// queueName is the queue an SQS QueueUrl names: its last "/"-separated part.
func queueName(url string) string {
	return url[strings.LastIndexByte(url, '/')+1:]
}

// machineName accepts a state machine's ARN (MachineARN) or its plain name.
func machineName(arn string) string {
	if i := strings.LastIndex(arn, ":stateMachine:"); i >= 0 {
		return arn[i+len(":stateMachine:"):]
	}
	return arn
}

// LoadDir loads every <name>.asl.json file of dir as state machine <name>, with the
// same substitutions for all.
func LoadDir(dir string, subst map[string]string) (map[string]*Machine, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.asl.json"))
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, "asl: load "+dir, err)
	}
	out := make(map[string]*Machine, len(files))
	for _, f := range files {
		def, err := os.ReadFile(f)
		if err != nil {
			return nil, errs.Wrap(errs.NotFound, "asl: load "+f, err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".asl.json")
		m, err := Load(name, def, subst)
		if err != nil {
			return nil, err
		}
		out[name] = m
	}
	return out, nil
}
