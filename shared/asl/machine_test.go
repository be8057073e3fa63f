package asl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/straas/straas/shared/errs"
)

func TestLoadSubstitution(t *testing.T) {
	def := `{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"${SpawnFunctionArn}","End":true}}}`
	m, err := Load("m", []byte(def), map[string]string{"SpawnFunctionArn": "arn:straas:function:Spawn"})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.root.states["T"].resource; got != "arn:straas:function:Spawn" {
		t.Errorf("resource %q, want the substituted ARN", got)
	}
	_, err = Load("m", []byte(def), map[string]string{"Other": "x"})
	if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), "${SpawnFunctionArn}") {
		t.Errorf("unresolved substitution: got %v, want an Invalid error naming ${SpawnFunctionArn}", err)
	}
}

func TestLoadRejects(t *testing.T) {
	cases := []struct {
		name, def, field string
	}{
		{"not json", `{`, ""},
		{"no StartAt", `{"States":{"A":{"Type":"Succeed"}}}`, "StartAt"},
		{"unknown top field", `{"StartAt":"A","Statez":1,"States":{"A":{"Type":"Succeed"}}}`, "Statez"},
		{"StartAt unknown", `{"StartAt":"B","States":{"A":{"Type":"Succeed"}}}`, "StartAt"},
		{"unknown type", `{"StartAt":"A","States":{"A":{"Type":"Sleep","End":true}}}`, "States.A.Type"},
		{"unknown field", `{"StartAt":"A","States":{"A":{"Type":"Pass","Resulte":1,"End":true}}}`, "States.A.Resulte"},
		{"field of other type", `{"StartAt":"A","States":{"A":{"Type":"Pass","Resource":"x","End":true}}}`, "States.A.Resource"},
		{"no Next or End", `{"StartAt":"A","States":{"A":{"Type":"Pass"}}}`, "States.A"},
		{"both Next and End", `{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"A","End":true}}}`, "States.A"},
		{"Next unknown", `{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"Z"}}}`, "States.A.Next"},
		{"bad InputPath", `{"StartAt":"A","States":{"A":{"Type":"Pass","InputPath":"a.b","End":true}}}`, "States.A.InputPath"},
		{"ResultPath not a reference path", `{"StartAt":"A","States":{"A":{"Type":"Pass","ResultPath":"$.a[*]","End":true}}}`, "States.A.ResultPath"},
		{"bad parameters path", `{"StartAt":"A","States":{"A":{"Type":"Pass","Parameters":{"x.$":"nope"},"End":true}}}`, "States.A.Parameters"},
		{"bad intrinsic", `{"StartAt":"A","States":{"A":{"Type":"Pass","Parameters":{"x.$":"States.Nope(1)"},"End":true}}}`, "States.A.Parameters"},
		{"format arity", `{"StartAt":"A","States":{"A":{"Type":"Pass","Parameters":{"x.$":"States.Format('{} {}', $.a)"},"End":true}}}`, "States.A.Parameters"},
		{"retry without ErrorEquals", `{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"f","Retry":[{"MaxAttempts":1}],"End":true}}}`, "States.A.Retry[0].ErrorEquals"},
		{"retry bad backoff", `{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"f","Retry":[{"ErrorEquals":["X"],"BackoffRate":0.5}],"End":true}}}`, "States.A.Retry[0].BackoffRate"},
		{"retry bad jitter", `{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"f","Retry":[{"ErrorEquals":["X"],"JitterStrategy":"SOME"}],"End":true}}}`, "States.A.Retry[0].JitterStrategy"},
		{"ALL not last", `{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"f","Catch":[{"ErrorEquals":["States.ALL"],"Next":"A"},{"ErrorEquals":["X"],"Next":"A"}],"End":true}}}`, "States.A.Catch[0]"},
		{"ALL not alone", `{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"f","Retry":[{"ErrorEquals":["States.ALL","X"]}],"End":true}}}`, "States.A.Retry[0].ErrorEquals"},
		{"catch Next unknown", `{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"f","Catch":[{"ErrorEquals":["X"],"Next":"Q"}],"End":true}}}`, "States.A.Catch[0].Next"},
		{"retry on Pass", `{"StartAt":"A","States":{"A":{"Type":"Pass","Retry":[{"ErrorEquals":["X"]}],"End":true}}}`, "States.A.Retry"},
		{"unsupported integration", `{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"arn:aws:states:::sns:publish","End":true}}}`, "States.A.Resource"},
		{"sqs without QueueUrl", `{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage","Parameters":{"MessageBody":"x"},"End":true}}}`, "States.A.Parameters.QueueUrl"},
		{"sqs without MessageBody", `{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage.waitForTaskToken","Parameters":{"QueueUrl":"q"},"End":true}}}`, "States.A.Parameters.MessageBody"},
		{"sqs QueueUrl ends in /", `{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage","Parameters":{"QueueUrl":"https://q/","MessageBody":"x"},"End":true}}}`, "States.A.Parameters.QueueUrl"},
		{"invoke without FunctionName", `{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke","Parameters":{},"End":true}}}`, "States.A.Parameters.FunctionName"},
		{"heartbeat over timeout", `{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"f","TimeoutSeconds":5,"HeartbeatSeconds":5,"End":true}}}`, "States.A.HeartbeatSeconds"},
		{"choice without Next", `{"StartAt":"A","States":{"A":{"Type":"Choice","Choices":[{"Variable":"$.a","IsNull":true}]}}}`, "States.A.Choices[0]"},
		{"choice two operators", `{"StartAt":"A","States":{"A":{"Type":"Choice","Choices":[{"Variable":"$.a","IsNull":true,"IsString":true,"Next":"A"}]}}}`, "States.A.Choices[0]"},
		{"choice unknown operator", `{"StartAt":"A","States":{"A":{"Type":"Choice","Choices":[{"Variable":"$.a","StringIs":"x","Next":"A"}]}}}`, "States.A.Choices[0]"},
		{"choice bad timestamp", `{"StartAt":"A","States":{"A":{"Type":"Choice","Choices":[{"Variable":"$.a","TimestampEquals":"yesterday","Next":"A"}]}}}`, "States.A.Choices[0]"},
		{"choice Default unknown", `{"StartAt":"A","States":{"A":{"Type":"Choice","Choices":[{"Variable":"$.a","IsNull":true,"Next":"A"}],"Default":"Z"}}}`, "States.A.Default"},
		{"wait two fields", `{"StartAt":"A","States":{"A":{"Type":"Wait","Seconds":1,"SecondsPath":"$.s","End":true}}}`, "States.A"},
		{"wait bad timestamp", `{"StartAt":"A","States":{"A":{"Type":"Wait","Timestamp":"soon","End":true}}}`, "States.A.Timestamp"},
		{"fail Error and ErrorPath", `{"StartAt":"A","States":{"A":{"Type":"Fail","Error":"x","ErrorPath":"$.e"}}}`, "States.A.ErrorPath"},
		{"branch next unknown", `{"StartAt":"A","States":{"A":{"Type":"Parallel","Branches":[{"StartAt":"B","States":{"B":{"Type":"Pass","Next":"A"}}}],"End":true}}}`, "States.A.Branches[0].States.B.Next"},
		{"map without processor", `{"StartAt":"A","States":{"A":{"Type":"Map","End":true}}}`, "States.A.ItemProcessor"},
		{"map bad mode", `{"StartAt":"A","States":{"A":{"Type":"Map","ItemProcessor":{"ProcessorConfig":{"Mode":"FAST"},"StartAt":"B","States":{"B":{"Type":"Succeed"}}},"End":true}}}`, "States.A.ItemProcessor.ProcessorConfig.Mode"},
		{"map item reader", `{"StartAt":"A","States":{"A":{"Type":"Map","ItemReader":{},"ItemProcessor":{"StartAt":"B","States":{"B":{"Type":"Succeed"}}},"End":true}}}`, "States.A.ItemReader"},
		{"map inner unknown field", `{"StartAt":"A","States":{"A":{"Type":"Map","ItemProcessor":{"StartAt":"B","States":{"B":{"Type":"Succeed","Next":"B"}}},"End":true}}}`, "States.A.ItemProcessor.States.B.Next"},
		{"jsonata", `{"QueryLanguage":"JSONata","StartAt":"A","States":{"A":{"Type":"Succeed"}}}`, "QueryLanguage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("m", []byte(tc.def), nil)
			if err == nil {
				t.Fatal("loaded; want an error")
			}
			if !errs.Is(err, errs.Invalid) {
				t.Errorf("kind %v, want Invalid: %v", errs.KindOf(err), err)
			}
			if got := errs.FieldOf(err); got != tc.field {
				t.Errorf("field %q, want %q (%v)", got, tc.field, err)
			}
		})
	}
}

func TestNewRejectsUnknownFunction(t *testing.T) {
	m := mustLoad(t, "m", `{"StartAt":"A","States":{"A":{"Type":"Task","Resource":"arn:aws:states:::lambda:invoke.waitForTaskToken","Parameters":{"FunctionName":"arn:x:function:Nope","Payload":{}},"End":true}}}`)
	_, err := New(Config{Store: newMem(), Machines: map[string]*Machine{"m": m}})
	if !errs.Is(err, errs.Invalid) || !strings.Contains(errs.FieldOf(err), "States.A.Resource") {
		t.Errorf("got %v, want Invalid naming States.A.Resource", err)
	}
}

// A machine that sends to a queue needs Config.Queue.
func TestNewRejectsQueueTaskWithoutQueue(t *testing.T) {
	m := mustLoad(t, "m", `{"StartAt":"A","States":{"A":{"Type":"Parallel","Branches":[{"StartAt":"S","States":{
		"S":{"Type":"Task","Resource":"arn:aws:states:::sqs:sendMessage","Parameters":{"QueueUrl":"q","MessageBody":"x"},"End":true}}}],"End":true}}}`)
	_, err := New(Config{Store: newMem(), Machines: map[string]*Machine{"m": m}})
	if !errs.Is(err, errs.Invalid) || !strings.Contains(errs.FieldOf(err), "States.A.Branches[0].States.S.Resource") {
		t.Errorf("got %v, want Invalid naming the sqs task's Resource", err)
	}
}

// The project's own state machines load and validate (with placeholder ARNs).
func TestLoadProjectMachines(t *testing.T) {
	const dir = "../../statemachines"
	files, _ := filepath.Glob(filepath.Join(dir, "*.asl.json"))
	if len(files) == 0 {
		t.Fatal("no statemachines/*.asl.json found")
	}
	subst := map[string]string{}
	for _, f := range files {
		def, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range substRE.FindAllSubmatch(def, -1) {
			subst[string(m[1])] = "arn:straas:function:" + string(m[1])
		}
	}
	ms, err := LoadDir(dir, subst)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != len(files) {
		t.Errorf("loaded %d machines from %d files", len(ms), len(files))
	}
	for name, m := range ms {
		if m.Name() != name || strings.Contains(string(m.Definition()), "${") {
			t.Errorf("machine %q: name %q, definition still has ${...}", name, m.Name())
		}
	}
	if _, err := LoadDir(dir, nil); !errs.Is(err, errs.Invalid) {
		t.Errorf("without substitutions: %v, want Invalid", err)
	}
}
