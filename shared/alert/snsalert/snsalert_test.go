package snsalert

import (
	"strings"
	"testing"
)

func TestSubject(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Node n1 is stale", "Node n1 is stale"},
		{"two\nlines", "twolines"},
		{"ünïcode", "ncode"},
		{strings.Repeat("x", 150), strings.Repeat("x", 99)},
		{"", ""},
	}
	for _, tc := range tests {
		if got := subject(tc.in); got != tc.want {
			t.Errorf("subject(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}
