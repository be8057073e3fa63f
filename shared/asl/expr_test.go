package asl

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/straas/straas/shared/asl/asltest"
	"github.com/straas/straas/shared/store"
)

func newMem() store.Store { return asltest.NewMemStore() }

func parseJSON(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad JSON %q: %v", s, err)
	}
	return v
}

func TestIntrinsics(t *testing.T) {
	input := `{"a":1,"s":"x,y;z","arr":[1,2,2,3,1],"obj":{"k":"v"},"o2":{"k":"w","n":1},"q":"it's","b64":"aGVsbG8="}`
	cases := []struct {
		expr, want, errName string
	}{
		{`States.Format('hi {}, {}!', $.q, $.a)`, `"hi it's, 1!"`, ""},
		{`States.Format('esc \{\} \' \\ {}', $.obj)`, `"esc {} ' \\ {\"k\":\"v\"}"`, ""},
		{`States.Format('{}', null)`, `"null"`, ""},
		{`States.StringToJson('{"n":[1,2]}')`, `{"n":[1,2]}`, ""},
		{`States.JsonToString($.obj)`, `"{\"k\":\"v\"}"`, ""},
		{`States.Array()`, `[]`, ""},
		{`States.Array(1, 'two', true, null, $.obj)`, `[1,"two",true,null,{"k":"v"}]`, ""},
		{`States.ArrayPartition($.arr, 2)`, `[[1,2],[2,3],[1]]`, ""},
		{`States.ArrayPartition($.arr, 0)`, ``, ErrIntrinsicFailure},
		{`States.ArrayContains($.arr, 3)`, `true`, ""},
		{`States.ArrayContains($.arr, 9)`, `false`, ""},
		{`States.ArrayRange(1, 9, 2)`, `[1,3,5,7,9]`, ""},
		{`States.ArrayRange(5, 1, -2)`, `[5,3,1]`, ""},
		{`States.ArrayRange(0, 2000, 1)`, ``, ErrIntrinsicFailure},
		{`States.ArrayGetItem($.arr, 3)`, `3`, ""},
		{`States.ArrayGetItem($.arr, 5)`, ``, ErrIntrinsicFailure},
		{`States.ArrayLength($.arr)`, `5`, ""},
		{`States.ArrayUnique($.arr)`, `[1,2,3]`, ""},
		{`States.Base64Encode('hello')`, `"aGVsbG8="`, ""},
		{`States.Base64Decode($.b64)`, `"hello"`, ""},
		{`States.Base64Decode('!!')`, ``, ErrIntrinsicFailure},
		{`States.Hash('input data', 'SHA-1')`, `"aaff4a450a104cd177d28d18d74485e8cae074b7"`, ""},
		{`States.Hash('abc', 'MD5')`, `"900150983cd24fb0d6963f7d28e17f72"`, ""},
		{`States.Hash('abc', 'SHA-256')`, `"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"`, ""},
		{`States.Hash('abc', 'CRC')`, ``, ErrIntrinsicFailure},
		{`States.JsonMerge($.obj, $.o2, false)`, `{"k":"w","n":1}`, ""},
		{`States.JsonMerge($.obj, $.o2, true)`, ``, ErrIntrinsicFailure},
		{`States.MathAdd($.a, -3)`, `-2`, ""},
		{`States.MathAdd(1.5, 1)`, ``, ErrIntrinsicFailure},
		{`States.MathRandom(7, 8)`, `7`, ""},
		{`States.MathRandom(1, 100, 42)`, ``, ""},
		{`States.StringSplit($.s, ',;')`, `["x","y","z"]`, ""},
		{`States.StringSplit(States.Format('{}-{}', 'a', 'b'), '-')`, `["a","b"]`, ""},
		{`States.ArrayLength(States.Array($.arr[0], $['arr'][1]))`, `2`, ""},
		{`States.ArrayLength($.nope)`, ``, ErrIntrinsicFailure},
	}
	in := parseJSON(t, input)
	for _, tc := range cases {
		t.Run(tc.expr, func(t *testing.T) {
			c, err := parseIntrinsic(tc.expr)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			got, se := c.eval(&evalEnv{data: in, ctx: func() any { return nil }})
			if tc.errName != "" {
				if se == nil || se.Name != tc.errName {
					t.Fatalf("got %v, %v; want error %s", got, se, tc.errName)
				}
				return
			}
			if se != nil {
				t.Fatalf("error %v", se)
			}
			if tc.want == "" { // random: just check the range
				n, ok := got.(float64)
				if !ok || n < 1 || n >= 100 {
					t.Fatalf("got %v, want a number in [1,100)", got)
				}
				return
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(parseJSON(t, tc.want))
			if string(gb) != string(wb) {
				t.Errorf("got %s, want %s", gb, wb)
			}
		})
	}
	// UUIDs are version 4 and differ.
	c, _ := parseIntrinsic("States.UUID()")
	a, _ := c.eval(&evalEnv{})
	b, _ := c.eval(&evalEnv{})
	if s, _ := a.(string); len(s) != 36 || s[14] != '4' || a == b {
		t.Errorf("UUIDs %v %v: want two different v4 UUIDs", a, b)
	}
}

func TestIntrinsicParseErrors(t *testing.T) {
	for _, s := range []string{
		`States.Format('unterminated)`, `States.Array(1,`, `States.Array(1) trailing`, `States.ArrayLength()`,
		`States.UUID(1)`, `States.Format($.a, 1, 2)x`, `States.Array(@)`,
	} {
		if _, err := parseIntrinsic(s); err == nil {
			t.Errorf("%s: parsed; want an error", s)
		}
	}
}

func TestChoiceRules(t *testing.T) {
	input := `{"s":"abc","n":3,"f":2.5,"b":true,"t":"2024-05-01T10:00:00Z","t2":"2024-05-01T10:00:00.5Z","z":null,
		"other":"abd","on":3,"ob":true,"path":"a*c","star":"a*c"}`
	cases := []struct {
		rule string
		want bool
		err  string
	}{
		{`{"Variable":"$.s","StringEquals":"abc"}`, true, ""},
		{`{"Variable":"$.s","StringEqualsPath":"$.other"}`, false, ""},
		{`{"Variable":"$.s","StringLessThanPath":"$.other"}`, true, ""},
		{`{"Variable":"$.s","StringGreaterThan":"abb"}`, true, ""},
		{`{"Variable":"$.s","StringLessThanEquals":"abc"}`, true, ""},
		{`{"Variable":"$.s","StringGreaterThanEquals":"abd"}`, false, ""},
		{`{"Variable":"$.s","StringMatches":"a*"}`, true, ""},
		{`{"Variable":"$.s","StringMatches":"*c"}`, true, ""},
		{`{"Variable":"$.s","StringMatches":"a*d"}`, false, ""},
		{`{"Variable":"$.star","StringMatches":"a\\*c"}`, true, ""},
		{`{"Variable":"$.s","StringMatches":"a\\*c"}`, false, ""},
		{`{"Variable":"$.n","NumericEquals":3}`, true, ""},
		{`{"Variable":"$.n","NumericEqualsPath":"$.on"}`, true, ""},
		{`{"Variable":"$.f","NumericLessThan":3}`, true, ""},
		{`{"Variable":"$.f","NumericGreaterThanEquals":2.5}`, true, ""},
		{`{"Variable":"$.s","NumericEquals":3}`, false, ""},
		{`{"Variable":"$.n","NumericGreaterThanPath":"$.s"}`, false, ""},
		{`{"Variable":"$.b","BooleanEquals":true}`, true, ""},
		{`{"Variable":"$.b","BooleanEqualsPath":"$.ob"}`, true, ""},
		{`{"Variable":"$.t","TimestampEquals":"2024-05-01T12:00:00+02:00"}`, true, ""},
		{`{"Variable":"$.t","TimestampLessThanPath":"$.t2"}`, true, ""},
		{`{"Variable":"$.t2","TimestampGreaterThan":"2024-05-01T10:00:00Z"}`, true, ""},
		{`{"Variable":"$.s","TimestampGreaterThan":"2024-05-01T10:00:00Z"}`, false, ""},
		{`{"Variable":"$.z","IsNull":true}`, true, ""},
		{`{"Variable":"$.s","IsNull":true}`, false, ""},
		{`{"Variable":"$.nope","IsPresent":false}`, true, ""},
		{`{"Variable":"$.z","IsPresent":true}`, true, ""},
		{`{"Variable":"$.n","IsNumeric":true}`, true, ""},
		{`{"Variable":"$.s","IsString":true}`, true, ""},
		{`{"Variable":"$.b","IsBoolean":false}`, false, ""},
		{`{"Variable":"$.t","IsTimestamp":true}`, true, ""},
		{`{"Variable":"$.s","IsTimestamp":true}`, false, ""},
		{`{"Variable":"$$.State.Name","StringEquals":"C"}`, true, ""},
		{`{"And":[{"Variable":"$.n","NumericEquals":3},{"Variable":"$.b","BooleanEquals":false}]}`, false, ""},
		{`{"Or":[{"Variable":"$.n","NumericEquals":4},{"Variable":"$.b","BooleanEquals":true}]}`, true, ""},
		{`{"Not":{"Variable":"$.n","NumericEquals":4}}`, true, ""},
		{`{"Variable":"$.nope","StringEquals":"x"}`, false, ErrRuntime},
		{`{"Variable":"$.s","StringEqualsPath":"$.nope"}`, false, ErrRuntime},
	}
	in := parseJSON(t, input)
	ctx := func() any { return map[string]any{"State": map[string]any{"Name": "C"}} }
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			r, err := compileRule(parseJSON(t, tc.rule), "rule", false)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			got, se := r.match(&evalEnv{data: in, ctx: ctx})
			if tc.err != "" {
				if se == nil || se.Name != tc.err {
					t.Fatalf("got %v, %v; want error %s", got, se, tc.err)
				}
				return
			}
			if se != nil || got != tc.want {
				t.Errorf("got %v (%v), want %v", got, se, tc.want)
			}
		})
	}
}

func TestPaths(t *testing.T) {
	in := `{"a":{"b":[10,20,{"c":"x"}]},"list":[{"id":1,"ok":true},{"id":2,"ok":false}],"k.e":"dotted"}`
	cases := []struct {
		path, want string
		found      bool
	}{
		{`$`, in, true},
		{`$.a.b[1]`, `20`, true},
		{`$.a.b[2].c`, `"x"`, true},
		{`$['k.e']`, `"dotted"`, true},
		{`$.a.b[5]`, ``, false},
		{`$.a.x`, ``, false},
		{`$.list[*].id`, `[1,2]`, true},
		{`$.list[?(@.ok == true)].id`, `[1]`, true},
		{`$..c`, `["x"]`, true},
		{`$.nothing[*]`, `[]`, true},
	}
	data := parseJSON(t, in)
	for _, tc := range cases {
		p, err := parsePath(tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		got, ok := p.get(data, nil)
		if ok != tc.found {
			t.Errorf("%s: found %v, want %v", tc.path, ok, tc.found)
			continue
		}
		if ok {
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(parseJSON(t, tc.want))
			if string(gb) != string(wb) {
				t.Errorf("%s: got %s, want %s", tc.path, gb, wb)
			}
		}
	}
	for _, bad := range []string{"a.b", "", "$.a[", "@.x"} {
		if _, err := parsePath(bad); err == nil {
			t.Errorf("parsePath(%q): no error", bad)
		}
	}
}

func TestResultPath(t *testing.T) {
	cases := []struct {
		input, path, result, want, err string
	}{
		{`{"a":1}`, `$.r`, `{"x":1}`, `{"a":1,"r":{"x":1}}`, ""},
		{`{"a":1}`, `$.r.s.t`, `2`, `{"a":1,"r":{"s":{"t":2}}}`, ""},
		{`{"a":{"b":1}}`, `$.a.b`, `3`, `{"a":{"b":3}}`, ""},
		{`{"a":[1,2]}`, `$.a[1]`, `"x"`, `{"a":[1,"x"]}`, ""},
		{`{"a":[1,2]}`, `$.a[5]`, `"x"`, ``, "has no element"},
		{`{"a":"s"}`, `$.a.b`, `1`, ``, "is not an object"},
		{`"scalar"`, `$.a`, `1`, ``, "is not an object"},
	}
	for _, tc := range cases {
		p, err := parseRefPath(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		got, se := applyResultPath(optPath{p: p}, parseJSON(t, tc.input), parseJSON(t, tc.result))
		if tc.err != "" {
			if se == nil || se.Name != ErrResultPathMatch || !strings.Contains(se.Cause, tc.err) {
				t.Errorf("%s on %s: got %v, want %s mentioning %q", tc.path, tc.input, se, ErrResultPathMatch, tc.err)
			}
			continue
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(parseJSON(t, tc.want))
		if se != nil || string(gb) != string(wb) {
			t.Errorf("%s on %s: got %s (%v), want %s", tc.path, tc.input, gb, se, wb)
		}
	}
}
