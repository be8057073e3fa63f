package mockcn_test

import (
	"encoding/base64"
	"testing"

	"github.com/straas/straas/mockcn"
	"github.com/straas/straas/shared/errs"
)

func TestParseUserDataLease(t *testing.T) {
	tests := []struct {
		name  string
		json  string
		lease int
		bad   bool
	}{
		{"given", `{"node_id": "n1", "heartbeat_seconds": 10, "lease_seconds": 30}`, 30, false},
		{"absent: the agent's default", `{"node_id": "n1"}`, 0, false},
		{"negative", `{"node_id": "n1", "lease_seconds": -5}`, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := mockcn.ParseUserData(base64.StdEncoding.EncodeToString([]byte(tc.json)))
			if tc.bad {
				if !errs.Is(err, errs.Invalid) || errs.FieldOf(err) != "user_data.lease_seconds" {
					t.Fatalf("got %+v, %v; want an Invalid error naming user_data.lease_seconds", u, err)
				}
				return
			}
			if err != nil || u == nil || u.LeaseSeconds != tc.lease {
				t.Fatalf("got %+v, %v; want lease_seconds %d", u, err, tc.lease)
			}
		})
	}
	// What stages write is what the mock cloud reads.
	u, err := mockcn.ParseUserData(mockcn.UserData{NodeID: "n2", LeaseSeconds: 45}.Base64())
	if err != nil || u.LeaseSeconds != 45 {
		t.Fatalf("round trip: got %+v, %v", u, err)
	}
}
