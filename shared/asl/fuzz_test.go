package asl

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/straas/straas/shared/asl/asltest"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/workflow"
)

// Fuzz targets of the interpreter's input handling: definitions (Load), execution
// inputs, and paths and intrinsic expressions inside definitions. No input may panic,
// hang an execution, or fail in a way other than the documented ones (errs.Invalid
// from Load and Start; a FAILED execution at run time).
//
//	go test -run '^$' -fuzz FuzzLoad -fuzztime 15s ./shared/asl
//	go test -run '^$' -fuzz FuzzExecutionInput -fuzztime 15s ./shared/asl
//	go test -run '^$' -fuzz FuzzPathsAndIntrinsics -fuzztime 15s ./shared/asl
//
// The seed corpora are in testdata/fuzz/<target>.

// fuzzMachine touches every kind of input handling the project's state machines use:
// InputPath, Parameters with paths and intrinsics, a Task's ResultSelector and
// ResultPath, Choice rules of each family, Map over a path with an ItemSelector,
// Retry and Catch, OutputPath.
const fuzzMachine = `{
  "StartAt": "Shape",
  "States": {
    "Shape": {"Type": "Pass", "InputPath": "$", "Parameters": {
        "in.$": "$", "items.$": "$.items", "n.$": "$.n", "s.$": "$.s",
        "fmt.$": "States.Format('{}-{}', $.s, $.n)",
        "arr.$": "States.Array($.n, $.s)", "json.$": "States.JsonToString($)"},
      "ResultPath": "$.shaped", "Next": "Pick"},
    "Pick": {"Type": "Choice", "Choices": [
        {"Variable": "$.n", "IsNumeric": true, "Next": "Numeric"},
        {"Variable": "$.s", "StringMatches": "a*", "Next": "Call"},
        {"And": [{"Variable": "$.b", "IsPresent": true}, {"Variable": "$.b", "BooleanEquals": true}], "Next": "Call"},
        {"Variable": "$.t", "TimestampLessThan": "2030-01-01T00:00:00Z", "Next": "Call"}
      ], "Default": "Iterate"},
    "Numeric": {"Type": "Choice", "Choices": [
        {"Variable": "$.n", "NumericGreaterThan": 3, "Next": "Call"},
        {"Not": {"Variable": "$.n", "NumericEquals": 0}, "Next": "Iterate"}
      ], "Default": "Call"},
    "Iterate": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 4,
      "ItemSelector": {"item.$": "$$.Map.Item.Value", "i.$": "$$.Map.Item.Index"},
      "ItemProcessor": {"StartAt": "Each", "States": {"Each": {"Type": "Task", "Resource": "arn:fuzz:Echo", "End": true}}},
      "ResultPath": "$.mapped", "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Call"}], "Next": "Call"},
    "Call": {"Type": "Task", "Resource": "arn:fuzz:Echo", "Parameters": {"v.$": "$"},
      "ResultSelector": {"echo.$": "$.v"}, "ResultPath": "$.out",
      "Retry": [{"ErrorEquals": ["FuzzFlaky"], "MaxAttempts": 0, "IntervalSeconds": 1}],
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Done"}], "Next": "Done"},
    "Done": {"Type": "Succeed", "OutputPath": "$.out"}
  }
}`

// FuzzFlaky is the error an input containing "flaky" makes the task fail with (retried).
type FuzzFlaky struct{}

func (*FuzzFlaky) Error() string { return "flaky, as asked" }
func (*FuzzFlaky) StatesError()  {}

// fuzzEngine runs one interpreter for a whole fuzzing run; each input is an execution.
type fuzzEngine struct {
	eng    *Engine
	cancel context.CancelFunc
	seq    atomic.Int64
}

func newFuzzEngine(f *testing.F, machines map[string]*Machine) *fuzzEngine {
	f.Helper()
	echo := func(_ context.Context, in json.RawMessage) (json.RawMessage, error) {
		if strings.Contains(string(in), `"flaky"`) {
			return nil, &FuzzFlaky{}
		}
		return in, nil
	}
	eng, err := New(Config{Store: asltest.NewMemStore(), Machines: machines,
		Functions: map[string]workflow.Func{"arn:fuzz:Echo": echo}, Logger: quietLogger()})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = eng.Run(ctx) }()
	fe := &fuzzEngine{eng: eng, cancel: cancel}
	f.Cleanup(func() { cancel(); <-done })
	return fe
}

// run starts machine on input and waits for its end.
func (fe *fuzzEngine) run(t *testing.T, machine string, input []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := fe.eng.Start(ctx, machine, fmt.Sprintf("fuzz-%d", fe.seq.Add(1)), input)
	if err != nil {
		if !errs.Is(err, errs.Invalid) && !errs.Is(err, errs.TooLarge) {
			t.Fatalf("Start: %v (kind %s), want an Invalid error", err, errs.KindOf(err))
		}
		return
	}
	x, err := fe.eng.Wait(ctx, id)
	if err != nil {
		t.Fatalf("execution did not end: %v", err)
	}
	switch x.Status {
	case workflow.Succeeded:
		if !json.Valid(x.Output) {
			t.Fatalf("succeeded with output that is not JSON: %q", x.Output)
		}
	case workflow.Failed:
		if x.Error == "" {
			t.Fatal("failed without an error name")
		}
	default:
		t.Fatalf("ended %s", x.Status)
	}
}

func FuzzLoad(f *testing.F) {
	for _, seed := range []string{fuzzMachine, `{}`, `{"StartAt":"A","States":{"A":{"Type":"Pass","End":true}}}`,
		`{"StartAt":"A","States":{"A":{"Type":"Map","ItemsPath":"$.x","Iterator":{"StartAt":"B","States":{"B":{"Type":"Succeed"}}},"End":true}}}`,
		`{"StartAt":"A","States":{"A":{"Type":"Choice","Choices":[{"Variable":"$.a","StringEquals":"x","Next":"A"}]}}}`,
		`{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"${Fn}","End":true}}}`, `[]`, `null`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, def []byte) {
		m, err := Load("fuzz", def, map[string]string{"Fn": "arn:fuzz:Echo"})
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("Load: %v (kind %s), want an Invalid error", err, errs.KindOf(err))
			}
			return
		}
		if m == nil {
			t.Fatal("Load returned neither a machine nor an error")
		}
	})
}

func FuzzExecutionInput(f *testing.F) {
	m, err := Load("fuzz", []byte(fuzzMachine), nil)
	if err != nil {
		f.Fatal(err)
	}
	fe := newFuzzEngine(f, map[string]*Machine{"fuzz": m})
	for _, seed := range []string{`{}`, `{"n":5,"s":"abc","items":[1,2,3]}`, `{"n":0,"items":[{"a":1},"flaky"]}`,
		`{"s":"zzz","b":true,"t":"2020-01-01T00:00:00Z"}`, `{"items":"notalist"}`, `{"n":"5"}`, `[]`, `"x"`, `null`,
		`{"n":1e308,"s":"` + strings.Repeat("a", 100) + `","items":[[[[[]]]]]}`, `{"items":[` + strings.Repeat(`{},`, 50) + `{}]}`, `{`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		fe.run(t, "fuzz", input)
	})
}

// FuzzPathsAndIntrinsics puts a fuzzed path (or intrinsic call) where definitions take
// one, and runs the machine when it loads.
func FuzzPathsAndIntrinsics(f *testing.F) {
	const tmpl = `{"StartAt":"P","States":{
	  "P":{"Type":"Pass","Parameters":{"v.$":%[1]s},"ResultPath":"$.p","Next":"C"},
	  "C":{"Type":"Choice","Choices":[{"Variable":%[1]s,"IsPresent":true,"Next":"T"}],"Default":"T"},
	  "T":{"Type":"Task","Resource":"arn:fuzz:Echo","InputPath":%[1]s,"ResultPath":"$.t","OutputPath":"$","End":true}}}`
	for _, seed := range []struct{ expr, input string }{
		{"$", `{}`}, {"$.a.b[0]", `{"a":{"b":[1]}}`}, {"$['a']", `{"a":1}`}, {"$.a[*]", `{"a":[1,2]}`},
		{"$$.Execution.Id", `{}`}, {"States.Format('{}', $.a)", `{"a":"x"}`}, {"States.ArrayPartition($.a, 2)", `{"a":[1,2,3]}`},
		{"States.StringToJson($.s)", `{"s":"{\"x\":1}"}`}, {"States.MathAdd($.n, 1)", `{"n":1}`}, {"States.Hash($.s, 'SHA-256')", `{"s":"a"}`},
		{"States.Base64Decode($.s)", `{"s":"!!"}`}, {"States.ArrayRange(1, $.n, 1)", `{"n":100000000}`}, {"$..a", `{}`}, {"$.a[-1]", `{"a":[]}`},
	} {
		f.Add(seed.expr, []byte(seed.input))
	}
	f.Fuzz(func(t *testing.T, expr string, input []byte) {
		lit, _ := json.Marshal(expr)
		def := fmt.Sprintf(tmpl, lit)
		m, err := Load("paths", []byte(def), nil)
		if err != nil {
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("Load: %v (kind %s), want an Invalid error", err, errs.KindOf(err))
			}
			return
		}
		// Machines are fixed when an engine is built: this one gets its own.
		eng, err := New(Config{Store: asltest.NewMemStore(), Machines: map[string]*Machine{"paths": m},
			Functions: map[string]workflow.Func{"arn:fuzz:Echo": func(_ context.Context, in json.RawMessage) (json.RawMessage, error) { return in, nil }},
			Logger:    quietLogger()})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = eng.Run(ctx) }()
		defer func() { cancel(); <-done }()
		(&fuzzEngine{eng: eng}).run(t, "paths", input)
	})
}
