package sfn

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/straas/straas/shared/errs"
)

func TestSubstitute(t *testing.T) {
	defs := map[string][]byte{
		"creation": []byte(`{"StartAt":"S","States":{"S":{"Type":"Task","Resource":"${SpawnFunctionArn}","Parameters":{"q":"${Queue}","p.$":"$.x"},"End":true}}}`),
	}
	got, err := Substitute(defs, map[string]string{"SpawnFunctionArn": "arn:aws:lambda:us-east-1:1:function:spawn", "Queue": "https://q/1/s", "Unused": "x"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"StartAt":"S","States":{"S":{"Type":"Task","Resource":"arn:aws:lambda:us-east-1:1:function:spawn","Parameters":{"q":"https://q/1/s","p.$":"$.x"},"End":true}}}`
	if string(got["creation"]) != want {
		t.Fatalf("got %s", got["creation"])
	}
	if string(defs["creation"]) == want {
		t.Fatal("Substitute changed its input")
	}
	bad := []struct {
		name string
		subs map[string]string
		msg  string
	}{
		{"missing", map[string]string{"Queue": "q"}, "SpawnFunctionArn"},
		{"breaks JSON", map[string]string{"Queue": `"`, "SpawnFunctionArn": "a"}, "JSON"},
	}
	for _, tc := range bad {
		_, err := Substitute(defs, tc.subs)
		if !errs.Is(err, errs.Invalid) || !strings.Contains(err.Error(), tc.msg) || errs.FieldOf(err) != "statemachines/creation.asl.json" {
			t.Errorf("%s: got %v (field %q)", tc.name, err, errs.FieldOf(err))
		}
	}
}

func TestLoadDefinitions(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"creation.asl.json": "{}", "deletion.asl.json": "[]", "notes.json": "{}"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := LoadDefinitions(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"creation": []byte("{}"), "deletion": []byte("[]")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q", got)
	}
}

func TestNames(t *testing.T) {
	e := newEngine(nil, Options{Prefix: "straas-"})
	m := "arn:aws:states:us-east-1:123456789012:stateMachine:straas-creation"
	if got := ExecutionARN(m, "job-1"); got != "arn:aws:states:us-east-1:123456789012:execution:straas-creation:job-1" {
		t.Errorf("ExecutionARN: got %s", got)
	}
	for arn, want := range map[string]string{
		m:             "creation",
		m + ":3":      "creation", // a version
		"not-an-arn":  "not-an-arn",
		m + ":prod:x": "creation",
	} {
		if got := e.machineName(arn); got != want {
			t.Errorf("machineName(%s): got %s, want %s", arn, got, want)
		}
	}
}

func TestSameJSON(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{`{"a":1,"b":[1,2]}`, `{ "b": [1, 2], "a": 1 }`, true},
		{`{"a":1}`, `{"a":2}`, false},
		{`{"a":1}`, `not json`, false},
		{`[1,2]`, `[2,1]`, false},
	}
	for _, tc := range tests {
		if got := sameJSON([]byte(tc.a), []byte(tc.b)); got != tc.same {
			t.Errorf("%s vs %s: got %v", tc.a, tc.b, got)
		}
	}
}
