package sqsq

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/straas/straas/shared/errs"
)

// Any bytes survive the trip through SQS's text-only bodies.
func TestBodyEncoding(t *testing.T) {
	tests := []struct {
		name  string
		body  []byte
		plain bool
	}{
		{"json", []byte(`{"kind":"hello","node":"n1"}`), true},
		{"unicode", []byte("naïve ключ \U0001F600"), true},
		{"tab and newline", []byte("a\tb\nc\r"), true},
		{"empty", []byte{}, false},
		{"nul", []byte("a\x00b"), false},
		{"control", []byte("a\x01b"), false},
		{"invalid utf-8", []byte{0xff, 0xfe, 'x'}, false},
		{"fffe", []byte("\uFFFE"), false},
	}
	for i, tc := range tests {
		e, size := encode(i, tc.body)
		if aws.ToString(e.Id) != strconv.Itoa(i) {
			t.Errorf("%s: id %q", tc.name, aws.ToString(e.Id))
		}
		if _, encoded := e.MessageAttributes[encAttr]; encoded == tc.plain {
			t.Errorf("%s: encoded %v, want plain %v", tc.name, encoded, tc.plain)
		}
		if aws.ToString(e.MessageBody) == "" || !sendable([]byte(aws.ToString(e.MessageBody))) {
			t.Errorf("%s: body %q is not sendable", tc.name, aws.ToString(e.MessageBody))
		}
		if size < len(aws.ToString(e.MessageBody)) {
			t.Errorf("%s: size %d under the body's %d bytes", tc.name, size, len(aws.ToString(e.MessageBody)))
		}
		got, err := decode(types.Message{Body: e.MessageBody, MessageAttributes: e.MessageAttributes})
		if err != nil || !bytes.Equal(got, tc.body) {
			t.Errorf("%s: round trip got %q, %v", tc.name, got, err)
		}
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"straas-status", true},
		{"straas-node-0f8c_9", true},
		{strings.Repeat("a", MaxNameLen), true},
		{strings.Repeat("a", MaxNameLen+1), false}, // its DLQ would pass SQS's 80
		{"", false},
		{"has space", false},
		{"dot.name", false},
	}
	for _, tc := range tests {
		err := validName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("%q: got %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !errs.Is(err, errs.Invalid) {
			t.Errorf("%q: got kind %v, want invalid", tc.name, errs.KindOf(err))
		}
	}
}
