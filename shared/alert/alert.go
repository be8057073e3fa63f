// Package alert is the port for operator alerts raised by the checker: log + webhooks in
// embedded mode, SNS in AWS mode.
package alert

import (
	"context"
	"time"
)

// Alert is one notification. Key de-duplicates: the same Key is raised once until cleared.
type Alert struct {
	Key      string            `json:"key"`
	Level    string            `json:"level"` // warning, critical
	Title    string            `json:"title"`
	Message  string            `json:"message"`
	Topology string            `json:"topology,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	At       time.Time         `json:"at"`
}

// Publisher is the port.
type Publisher interface {
	Publish(ctx context.Context, a Alert) error
}
