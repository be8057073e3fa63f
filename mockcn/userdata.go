package mockcn

import (
	"encoding/base64"
	"encoding/json"
	"strings"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
)

// UserData is what the control plane puts in a server's user_data so that the VM's
// agent knows who it is (see the package documentation).
type UserData struct {
	NodeID           string `json:"node_id"`
	StatusQueue      string `json:"status_queue,omitempty"`
	CommandQueue     string `json:"command_queue,omitempty"`
	HeartbeatSeconds int    `json:"heartbeat_seconds,omitempty"`
	// LeaseSeconds is how often the agent asks for its lease to be stored (heartbeats'
	// Renew flag); 0 is agent.DefaultLease.
	LeaseSeconds int    `json:"lease_seconds,omitempty"`
	ScriptsRef   string `json:"scripts_ref,omitempty"`
}

// NewUserData returns the user data of a node with the default queues and heartbeat.
func NewUserData(nodeID, scriptsRef string) UserData {
	return UserData{NodeID: nodeID, StatusQueue: queue.Status, CommandQueue: queue.NodeQueue(nodeID), HeartbeatSeconds: 10, ScriptsRef: scriptsRef}
}

// JSON returns the user data as JSON (gophercloud base64-encodes it for Nova).
func (u UserData) JSON() []byte {
	b, _ := json.Marshal(u) // plain strings and ints always marshal
	return b
}

// Base64 returns the user data as Nova stores it.
func (u UserData) Base64() string { return base64.StdEncoding.EncodeToString(u.JSON()) }

// ParseUserData reads Nova's base64 user_data. It returns nil and no error for user data
// that is not an agent's (a server without an agent), and an error for an agent's that
// is incomplete.
func ParseUserData(b64 string) (*UserData, error) {
	if b64 == "" {
		return nil, nil
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, errs.Invalidf("user_data", "not base64: %v", err)
	}
	s := strings.TrimSpace(string(raw))
	if !strings.HasPrefix(s, "{") {
		return nil, nil
	}
	var u UserData
	if err := json.Unmarshal([]byte(s), &u); err != nil {
		return nil, nil // some other JSON document
	}
	if u.NodeID == "" {
		return nil, nil
	}
	if u.StatusQueue == "" {
		u.StatusQueue = queue.Status
	}
	if u.CommandQueue == "" {
		u.CommandQueue = queue.NodeQueue(u.NodeID)
	}
	if u.HeartbeatSeconds < 0 {
		return nil, errs.Invalidf("user_data.heartbeat_seconds", "must not be negative")
	}
	if u.LeaseSeconds < 0 {
		return nil, errs.Invalidf("user_data.lease_seconds", "must not be negative")
	}
	return &u, nil
}
