package asl

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func TestThreadRecordRoundTrip(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 891, time.UTC)
	recs := []threadRec{
		{State: "A", Input: json.RawMessage(`{"a":1}`)},
		{
			Idx: 3, State: "Weird \"name\" \\ \n\t\x01 ü", Input: json.RawMessage(`[1,"x"]`), Entered: now,
			Phase: phToken, Tries: []int{0, 2}, Retries: 2, Due: now.Add(time.Second), Since: now,
			Deadline: now.Add(time.Hour), Beat: 10, Token: "tok", Gen: 7, Started: true, Excluded: true,
			N: 4, MaxConc: 2, Output: json.RawMessage(`null`), Error: "E\xff", Cause: "c",
		},
	}
	recs[1].count("ExecutionStarted", "MapRunFailed", "MapRunFailed")
	for _, want := range recs {
		r, err := want.record("id")
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(r.Data) {
			t.Fatalf("invalid JSON: %s", r.Data)
		}
		var got threadRec
		if err := json.Unmarshal(r.Data, &got); err != nil {
			t.Fatal(err)
		}
		if want.Error == "E\xff" {
			want.Error = "E\ufffd"
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
	if m := recs[1].Events.toMap(); m["MapRunFailed"] != 2 || m["ExecutionStarted"] != 1 || len(m) != 2 {
		t.Errorf("events %v", m)
	}
}
