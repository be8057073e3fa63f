package asl

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/workflow"
)

// testFuncs are the task functions the execution tests call.
func testFuncs() map[string]workflow.Func {
	var flaky sync.Map // key -> *atomic.Int32
	return map[string]workflow.Func{
		"arn:test:function:Echo": fn(func(in map[string]any) (any, error) { return in, nil }),
		"arn:test:function:Add": fn(func(in map[string]any) (any, error) {
			a, _ := in["a"].(float64)
			b, _ := in["b"].(float64)
			return map[string]any{"sum": a + b}, nil
		}),
		"arn:test:function:Double": fn(func(in map[string]any) (any, error) {
			n, _ := in["n"].(float64)
			return map[string]any{"n": 2 * n}, nil
		}),
		"arn:test:function:Flaky": fn(func(in map[string]any) (any, error) {
			key, _ := in["key"].(string)
			c, _ := flaky.LoadOrStore(key, new(atomic.Int32))
			fails, _ := in["fails"].(float64)
			if n := c.(*atomic.Int32).Add(1); n <= int32(fails) {
				return nil, errs.Transientf("attempt %d failed", n)
			}
			return map[string]any{"attempts": float64(c.(*atomic.Int32).Load())}, nil
		}),
		"arn:test:function:Gone": fn(func(in map[string]any) (any, error) {
			return nil, &NodeGone{Msg: "node n1 is gone"}
		}),
		"arn:test:function:Plain": fn(func(in map[string]any) (any, error) {
			return nil, fmt.Errorf("wrapped: %w", errPlain)
		}),
		"arn:test:function:FailOdd": fn(func(in map[string]any) (any, error) {
			if n, _ := in["n"].(float64); int(n)%2 == 1 {
				return nil, &NodeGone{Msg: fmt.Sprintf("item %v is odd", n)}
			}
			return in, nil
		}),
	}
}

type execCase struct {
	name   string
	def    string
	input  string
	status string
	output string // JSON; for SUCCEEDED
	errN   string // for FAILED
	cause  string // substring-free exact cause, when non-empty
}

var execCases = []execCase{
	{
		name:   "pass_result_resultpath_outputpath",
		def:    `{"StartAt":"P","States":{"P":{"Type":"Pass","Result":{"x":1},"ResultPath":"$.r","OutputPath":"$.r","End":true}}}`,
		input:  `{"a":1}`,
		status: workflow.Succeeded, output: `{"x":1}`,
	},
	{
		name: "pass_parameters_context_and_intrinsics",
		def: `{"StartAt":"P","States":{"P":{"Type":"Pass","Parameters":{
			"name.$":"$$.Execution.Name","state.$":"$$.State.Name","machine.$":"$$.StateMachine.Name",
			"in.$":"$$.Execution.Input.a","msg.$":"States.Format('a={} b={}', $.a, $.b)",
			"arr.$":"States.Array($.a, 'x', States.ArrayLength($.list))","static":{"k":[1,2]}},"End":true}}}`,
		input:  `{"a":1,"b":"two","list":[1,2,3]}`,
		status: workflow.Succeeded,
		output: `{"name":"run1","state":"P","machine":"m","in":1,"msg":"a=1 b=two","arr":[1,"x",3],"static":{"k":[1,2]}}`,
	},
	{
		name: "input_path_and_null_paths",
		def: `{"StartAt":"A","States":{
			"A":{"Type":"Pass","InputPath":"$.inner","ResultPath":"$.copy","Next":"B"},
			"B":{"Type":"Pass","Result":"ignored","ResultPath":null,"Next":"C"},
			"C":{"Type":"Pass","InputPath":null,"ResultPath":"$.empty","Next":"D"},
			"D":{"Type":"Pass","OutputPath":null,"End":true}}}`,
		input:  `{"inner":{"v":1}}`,
		status: workflow.Succeeded, output: `{}`,
	},
	{
		name: "choice_operators_and_default",
		def: `{"StartAt":"C","States":{
			"C":{"Type":"Choice","Choices":[
				{"Variable":"$.missing","IsPresent":true,"Next":"Bad"},
				{"And":[{"Variable":"$.n","NumericGreaterThan":1},{"Variable":"$.n","NumericLessThanEqualsPath":"$.max"},
					{"Not":{"Variable":"$.s","StringMatches":"foo*bar"}},{"Variable":"$.t","TimestampGreaterThan":"2020-01-01T00:00:00Z"}],"Next":"Good"}
			],"Default":"Bad"},
			"Good":{"Type":"Pass","Result":"good","End":true},
			"Bad":{"Type":"Pass","Result":"bad","End":true}}}`,
		input:  `{"n":5,"max":5,"s":"foo-baz","t":"2021-06-01T12:00:00Z"}`,
		status: workflow.Succeeded, output: `"good"`,
	},
	{
		name:   "choice_no_match_fails",
		def:    `{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Variable":"$.n","NumericEquals":1,"Next":"D"}]},"D":{"Type":"Succeed"}}}`,
		input:  `{"n":2}`,
		status: workflow.Failed, errN: ErrNoChoiceMatched,
	},
	{
		name:   "choice_missing_variable_is_runtime_error",
		def:    `{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Variable":"$.nope","NumericEquals":1,"Next":"D"}],"Default":"D"},"D":{"Type":"Succeed"}}}`,
		input:  `{}`,
		status: workflow.Failed, errN: ErrRuntime,
	},
	{
		name: "wait_seconds_path_and_timestamp",
		def: `{"StartAt":"W1","States":{
			"W1":{"Type":"Wait","SecondsPath":"$.secs","Next":"W2"},
			"W2":{"Type":"Wait","Timestamp":"2026-01-02T03:04:20Z","Next":"W3"},
			"W3":{"Type":"Wait","Seconds":0,"End":true}}}`,
		input:  `{"secs":3}`,
		status: workflow.Succeeded, output: `{"secs":3}`,
	},
	{
		name: "task_function_and_result_selector",
		def: `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:test:function:Add",
			"Parameters":{"a.$":"$.x","b":2},"ResultSelector":{"total.$":"$.sum"},"ResultPath":"$.res","End":true}}}`,
		input:  `{"x":40}`,
		status: workflow.Succeeded, output: `{"x":40,"res":{"total":42}}`,
	},
	{
		name: "lambda_invoke_result_shape",
		def: `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke",
			"Parameters":{"FunctionName":"arn:test:function:Double","Payload":{"n.$":"$.n"}},"End":true}}}`,
		input:  `{"n":21}`,
		status: workflow.Succeeded, output: `{"ExecutedVersion":"$LATEST","Payload":{"n":42},"StatusCode":200}`,
	},
	{
		name: "retry_transient_then_succeed",
		def: `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:test:function:Flaky",
			"Retry":[{"ErrorEquals":["NodeGone"],"MaxAttempts":5},{"ErrorEquals":["Transient"],"IntervalSeconds":1,"MaxAttempts":3,"BackoffRate":2}],
			"ResultPath":"$.r","End":true}}}`,
		input:  `{"key":"retry1","fails":2}`,
		status: workflow.Succeeded, output: `{"key":"retry1","fails":2,"r":{"attempts":3}}`,
	},
	{
		name: "retry_exhausted_then_catch",
		def: `{"StartAt":"T","States":{
			"T":{"Type":"Task","Resource":"arn:test:function:Flaky",
				"Retry":[{"ErrorEquals":["States.TaskFailed"],"IntervalSeconds":1,"MaxAttempts":2,"JitterStrategy":"FULL","MaxDelaySeconds":1}],
				"Catch":[{"ErrorEquals":["States.ALL"],"ResultPath":"$.err","Next":"Handled"}],"Next":"Bad"},
			"Bad":{"Type":"Fail","Error":"Unexpected"},
			"Handled":{"Type":"Pass","End":true}}}`,
		input:  `{"key":"retry2","fails":10}`,
		status: workflow.Succeeded, output: `{"key":"retry2","fails":10,"err":{"Error":"Transient","Cause":"attempt 3 failed"}}`,
	},
	{
		name: "catch_named_error_by_type_name",
		def: `{"StartAt":"T","States":{
			"T":{"Type":"Task","Resource":"arn:test:function:Gone",
				"Catch":[{"ErrorEquals":["Other"],"Next":"Bad"},{"ErrorEquals":["NodeGone"],"ResultPath":"$.e","Next":"Handled"}],"End":true},
			"Bad":{"Type":"Fail"},
			"Handled":{"Type":"Pass","OutputPath":"$.e","End":true}}}`,
		input:  `{}`,
		status: workflow.Succeeded, output: `{"Error":"NodeGone","Cause":"node n1 is gone"}`,
	},
	{
		name:   "uncaught_plain_error_is_TaskFailed",
		def:    `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:test:function:Plain","End":true}}}`,
		input:  `{}`,
		status: workflow.Failed, errN: "TaskFailed", cause: "wrapped: plain failure",
	},
	{
		name: "runtime_error_not_caught_by_all",
		def: `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"arn:test:function:Echo","InputPath":"$.nope",
			"Catch":[{"ErrorEquals":["States.ALL"],"Next":"H"}],"End":true},"H":{"Type":"Succeed"}}}`,
		input:  `{}`,
		status: workflow.Failed, errN: ErrRuntime,
	},
	{
		name:   "parameters_path_missing",
		def:    `{"StartAt":"P","States":{"P":{"Type":"Pass","Parameters":{"missing.$":"$.nope.deep"},"End":true}}}`,
		input:  `{"other":1}`,
		status: workflow.Failed, errN: ErrRuntime,
		cause: `The JSONPath '$.nope.deep' specified for the field 'missing.$' could not be found in the input '{"other":1}'`,
	},
	{
		name:   "fail_state_error_and_cause_paths",
		def:    `{"StartAt":"F","States":{"F":{"Type":"Fail","ErrorPath":"$.code","CausePath":"States.Format('node {} failed', $.node)"}}}`,
		input:  `{"code":"Broken","node":"n7"}`,
		status: workflow.Failed, errN: "Broken", cause: "node n7 failed",
	},
	{
		name: "parallel_branches",
		def: `{"StartAt":"P","States":{"P":{"Type":"Parallel","Parameters":{"n.$":"$.n"},"ResultPath":"$.both","Branches":[
			{"StartAt":"D","States":{"D":{"Type":"Task","Resource":"arn:test:function:Double","End":true}}},
			{"StartAt":"Q","States":{"Q":{"Type":"Pass","Result":"static","Next":"W"},"W":{"Type":"Wait","Seconds":2,"End":true}}}
		],"End":true}}}`,
		input:  `{"n":4}`,
		status: workflow.Succeeded, output: `{"n":4,"both":[{"n":8},"static"]}`,
	},
	{
		name: "parallel_branch_failure_caught",
		def: `{"StartAt":"P","States":{"P":{"Type":"Parallel","Branches":[
			{"StartAt":"G","States":{"G":{"Type":"Task","Resource":"arn:test:function:Gone","End":true}}},
			{"StartAt":"W","States":{"W":{"Type":"Wait","Seconds":100,"End":true}}}
		],"Catch":[{"ErrorEquals":["NodeGone"],"ResultPath":"$.err","Next":"Done"}],"End":true},"Done":{"Type":"Succeed"}}}`,
		input:  `{}`,
		status: workflow.Succeeded, output: `{"err":{"Error":"NodeGone","Cause":"node n1 is gone"}}`,
	},
	{
		name: "map_item_selector_and_concurrency",
		def: `{"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.items","MaxConcurrency":2,
			"ItemSelector":{"n.$":"$$.Map.Item.Value","i.$":"$$.Map.Item.Index","tag.$":"$.tag"},
			"ItemProcessor":{"ProcessorConfig":{"Mode":"INLINE"},"StartAt":"D","States":{
				"D":{"Type":"Task","Resource":"arn:test:function:Double","ResultPath":"$.doubled","End":true}}},
			"ResultSelector":{"all.$":"$[*].doubled.n"},"End":true}}}`,
		input:  `{"items":[1,2,3,4,5],"tag":"t"}`,
		status: workflow.Succeeded, output: `{"all":[2,4,6,8,10]}`,
	},
	{
		name: "map_legacy_iterator_parameters_empty",
		def: `{"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.none","Parameters":{"x.$":"$$.Map.Item.Value"},
			"Iterator":{"StartAt":"P","States":{"P":{"Type":"Pass","End":true}}},"ResultPath":"$.out","End":true}}}`,
		input:  `{"none":[]}`,
		status: workflow.Succeeded, output: `{"none":[],"out":[]}`,
	},
	{
		name: "map_iteration_failure_caught",
		def: `{"StartAt":"M","States":{"M":{"Type":"Map","ItemSelector":{"n.$":"$$.Map.Item.Value"},"MaxConcurrency":1,
			"ItemProcessor":{"StartAt":"F","States":{"F":{"Type":"Task","Resource":"arn:test:function:FailOdd","End":true}}},
			"Catch":[{"ErrorEquals":["States.ALL"],"Next":"Caught"}],"End":true},"Caught":{"Type":"Pass","End":true}}}`,
		input:  `[0,2,4,5,6]`,
		status: workflow.Succeeded, output: `{"Error":"NodeGone","Cause":"item 5 is odd"}`,
	},
	{
		name: "map_tolerated_failures_distributed",
		def: `{"StartAt":"M","States":{"M":{"Type":"Map","ItemSelector":{"n.$":"$$.Map.Item.Value"},"ToleratedFailureCount":1,
			"ItemProcessor":{"ProcessorConfig":{"Mode":"DISTRIBUTED","ExecutionType":"STANDARD"},"StartAt":"F","States":{"F":{"Type":"Task","Resource":"arn:test:function:FailOdd","End":true}}},
			"End":true}}}`,
		input:  `[2,3]`,
		status: workflow.Succeeded, output: `[{"n":2},{"Error":"NodeGone","Cause":"item 3 is odd"}]`,
	},
	{
		name: "nested_map_in_parallel",
		def: `{"StartAt":"P","States":{"P":{"Type":"Parallel","Branches":[
			{"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.rows","ItemProcessor":{"StartAt":"Inner","States":{
				"Inner":{"Type":"Map","ItemSelector":{"n.$":"$$.Map.Item.Value"},"ItemProcessor":{"StartAt":"D","States":{
					"D":{"Type":"Task","Resource":"arn:test:function:Double","OutputPath":"$.n","End":true}}},"End":true}}},"End":true}}}
		],"OutputPath":"$[0]","End":true}}}`,
		input:  `{"rows":[[1,2],[3],[]]}`,
		status: workflow.Succeeded, output: `[[2,4],[6],[]]`,
	},
	{
		name:   "succeed_with_output_path",
		def:    `{"StartAt":"S","States":{"S":{"Type":"Succeed","InputPath":"$.a","OutputPath":"$.b"}}}`,
		input:  `{"a":{"b":[1]}}`,
		status: workflow.Succeeded, output: `[1]`,
	},
	{
		name:   "result_path_into_nonobject_fails",
		def:    `{"StartAt":"P","States":{"P":{"Type":"Pass","Result":1,"ResultPath":"$.a.b","End":true}}}`,
		input:  `{"a":"str"}`,
		status: workflow.Failed, errN: ErrResultPathMatch,
	},
	{
		name:   "intrinsic_failure_fails_the_execution",
		def:    `{"StartAt":"P","States":{"P":{"Type":"Pass","Parameters":{"v.$":"States.ArrayGetItem($.a, 5)"},"End":true}}}`,
		input:  `{"a":[1]}`,
		status: workflow.Failed, errN: ErrIntrinsicFailure,
	},
}

func TestExecutions(t *testing.T) {
	for _, tc := range execCases {
		t.Run(tc.name, func(t *testing.T) {
			m := mustLoad(t, "m", tc.def)
			h := newHarness(t, map[string]*Machine{"m": m}, testFuncs(), hopts{})
			id := h.start("m", "run1", tc.input)
			x := h.await(id, true)
			if x.Status != tc.status {
				t.Fatalf("status %s (%s: %s), want %s", x.Status, x.Error, x.Cause, tc.status)
			}
			if tc.status == workflow.Succeeded {
				jsonEq(t, x.Output, tc.output)
			} else {
				if x.Error != tc.errN {
					t.Errorf("error %q (cause %q), want %q", x.Error, x.Cause, tc.errN)
				}
				if tc.cause != "" && x.Cause != tc.cause {
					t.Errorf("cause %q, want %q", x.Cause, tc.cause)
				}
			}
			ev, err := h.eng.Events(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "exec/"+tc.name+".json", map[string]any{
				"status": x.Status, "output": rawOrNil(x.Output), "error": x.Error, "cause": x.Cause,
				"events": ev, "eventTotal": ev.Total(),
			})
			// A finished execution leaves no threads or tokens behind.
			ms := h.st.(interface{ Count(kind, prefix string) int })
			if n := ms.Count(KindThread, ""); n != 0 {
				t.Errorf("%d thread records left", n)
			}
			if n := ms.Count(KindToken, ""); n != 0 {
				t.Errorf("%d token records left", n)
			}
		})
	}
}

func rawOrNil(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

func TestChildExecutions(t *testing.T) {
	parent := `{"StartAt":"Run","States":{"Run":{"Type":"Task","Resource":"arn:aws:states:::states:startExecution.sync:2",
		"Parameters":{"StateMachineArn":"%s","Input":{"n.$":"$.n"}%s},
		"ResultSelector":{"out.$":"$.Output","status.$":"$.Status","name.$":"$.Name"},
		"Catch":[{"ErrorEquals":["States.TaskFailed"],"Next":"Failed"}],"End":true},
		"Failed":{"Type":"Pass","Parameters":{"error.$":"$.Error","cause.$":"States.StringToJson($.Cause)"},"End":true}}}`
	machines := map[string]*Machine{
		"ok":    mustLoad(t, "ok", `{"StartAt":"D","States":{"D":{"Type":"Task","Resource":"arn:test:function:Double","End":true}}}`),
		"boom":  mustLoad(t, "boom", `{"StartAt":"F","States":{"F":{"Type":"Fail","Error":"Boom","Cause":"child failed"}}}`),
		"p_ok":  mustLoad(t, "p_ok", fmt.Sprintf(parent, "arn:straas:states:local:0:stateMachine:ok", `,"Name":"kid"`)),
		"p_err": mustLoad(t, "p_err", fmt.Sprintf(parent, "boom", "")),
	}
	h := newHarness(t, machines, testFuncs(), hopts{})
	x := h.await(h.start("p_ok", "p1", `{"n":5}`), false)
	jsonEq(t, x.Output, `{"out":{"n":10},"status":"SUCCEEDED","name":"kid"}`)
	child, err := h.eng.Describe(context.Background(), ExecutionARN("ok", "kid"))
	if err != nil || child.Status != workflow.Succeeded {
		t.Fatalf("child: %+v %v", child, err)
	}
	ev, _ := h.eng.Events(context.Background(), x.ID)
	golden(t, "child/p_ok.json", ev)

	x = h.await(h.start("p_err", "p2", `{"n":5}`), false)
	var out struct {
		Error string
		Cause struct{ Error, Cause, Status string }
	}
	if err := json.Unmarshal(x.Output, &out); err != nil {
		t.Fatal(err)
	}
	if out.Error != ErrTaskFailed || out.Cause.Error != "Boom" || out.Cause.Cause != "child failed" || out.Cause.Status != workflow.Failed {
		t.Errorf("failed child: %s", x.Output)
	}
	if _, err := New(Config{Store: newMem(), Machines: map[string]*Machine{"p": machines["p_ok"]}}); !errs.Is(err, errs.Invalid) {
		t.Errorf("parent without its child machine: %v, want Invalid", err)
	}
}

// A 1,000-item Map stays far below Step Functions' 25,000-event cap and its
// checkpoints stay small: no write carries more than the items themselves.
func TestLargeMap(t *testing.T) {
	def := `{"StartAt":"M","States":{"M":{"Type":"Map","ItemsPath":"$.ids","MaxConcurrency":100,
		"ItemSelector":{"n.$":"$$.Map.Item.Value"},
		"ItemProcessor":{"StartAt":"D","States":{"D":{"Type":"Task","Resource":"arn:test:function:Double","End":true}}},
		"ResultSelector":{"count.$":"States.ArrayLength($)"},"End":true}}}`
	ids := make([]int, 1000)
	for i := range ids {
		ids[i] = i
	}
	in, _ := json.Marshal(map[string]any{"ids": ids})
	ms := &measured{Store: newMem()}
	h := newHarness(t, map[string]*Machine{"m": mustLoad(t, "m", def)}, testFuncs(), hopts{st: ms})
	x := h.await(h.start("m", "big", string(in)), false)
	if x.Status != workflow.Succeeded {
		t.Fatalf("%s %s %s", x.Status, x.Error, x.Cause)
	}
	jsonEq(t, x.Output, `{"count":1000}`)
	ev, err := h.eng.Events(context.Background(), x.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ev["MapIterationSucceeded"] != 1000 || ev.Total() > 25000 {
		t.Errorf("events: %d in all, %d iterations", ev.Total(), ev["MapIterationSucceeded"])
	}
	golden(t, "exec/large_map_events.json", ev)
	t.Logf("largest write %d bytes, median %d", ms.max.Load(), ms.median())
	// The biggest write creates the 1,000 iterations; every other one is small.
	if big, typical := ms.max.Load(), ms.median(); big > 200<<10 || typical > 1<<10 {
		t.Errorf("largest write %d bytes, median %d bytes", big, typical)
	}
}

// measured records how many bytes each Write carries.
type measured struct {
	store.Store
	max   atomic.Int64
	mu    sync.Mutex
	sizes []int64
}

func (m *measured) Write(ctx context.Context, ops ...store.Op) error {
	var n int64
	for _, op := range ops {
		n += int64(len(op.Record.Data))
	}
	for {
		cur := m.max.Load()
		if n <= cur || m.max.CompareAndSwap(cur, n) {
			break
		}
	}
	m.mu.Lock()
	m.sizes = append(m.sizes, n)
	m.mu.Unlock()
	return m.Store.Write(ctx, ops...)
}

func (m *measured) median() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := slices.Clone(m.sizes)
	slices.Sort(s)
	return s[len(s)/2]
}
