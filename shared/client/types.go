package client

import (
	"context"
	"encoding/json"
	"net/url"

	"github.com/straas/straas/shared/model"
)

// Topology is a topology as the API shows it.
type Topology struct {
	model.Topology
	Components []Component `json:"components"`
}

// Component is a component with its nodes.
type Component struct {
	model.Component
	Nodes []Node `json:"nodes"`
}

// Node is a node with its liveness.
type Node struct {
	model.Node
	LastHeartbeat *string            `json:"last_heartbeat,omitempty"`
	Services      map[string]string  `json:"service_status,omitempty"`
	Metrics       map[string]float64 `json:"metrics,omitempty"`
}

// ActionRef is the handle of a mutating call.
type ActionRef struct {
	ID   string `json:"id"`
	Href string `json:"href"`
}

// Action is an action with its stages.
type Action struct {
	model.Action
	Stages []Stage `json:"stages"`
}

// Stage is a stage with per-node progress.
type Stage struct {
	model.Stage
	Nodes []struct {
		Node   string `json:"node_id"`
		Name   string `json:"name"`
		Status string `json:"status"`
		Error  string `json:"error,omitempty"`
	} `json:"nodes,omitempty"`
}

// CreateTopology posts a creation request (raw JSON body).
func (c *Client) CreateTopology(ctx context.Context, body []byte) (Topology, ActionRef, error) {
	var out struct {
		Topology Topology  `json:"topology"`
		Action   ActionRef `json:"action"`
	}
	_, err := c.Do(ctx, "POST", "/straas/v1.0/topologies", body, &out)
	return out.Topology, out.Action, err
}

// Topologies lists the caller's topologies, every page of them.
func (c *Client) Topologies(ctx context.Context) ([]model.Topology, error) {
	return c.TopologiesWhere(ctx, nil)
}

// TopologiesWhere lists the caller's topologies that match the list filters of GET
// /topologies (name, status, az, component_type, sort), following next_marker to the
// last page.
func (c *Client) TopologiesWhere(ctx context.Context, filter url.Values) ([]model.Topology, error) {
	var all []model.Topology
	q := url.Values{}
	for k, v := range filter {
		q[k] = v
	}
	for {
		var out struct {
			Topologies []model.Topology `json:"topologies"`
			NextMarker string           `json:"next_marker"`
		}
		path := "/straas/v1.0/topologies"
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
		if _, err := c.Do(ctx, "GET", path, nil, &out); err != nil {
			return all, err
		}
		all = append(all, out.Topologies...)
		if out.NextMarker == "" || len(out.Topologies) == 0 {
			return all, nil
		}
		q.Set("marker", out.NextMarker)
	}
}

// Topology shows one topology.
func (c *Client) Topology(ctx context.Context, id string) (Topology, error) {
	var out struct {
		Topology Topology `json:"topology"`
	}
	_, err := c.Do(ctx, "GET", "/straas/v1.0/topologies/"+url.PathEscape(id), nil, &out)
	return out.Topology, err
}

// DeleteTopology asks for deletion.
func (c *Client) DeleteTopology(ctx context.Context, id string) (ActionRef, error) {
	var out struct {
		Action ActionRef `json:"action"`
	}
	_, err := c.Do(ctx, "DELETE", "/straas/v1.0/topologies/"+url.PathEscape(id), nil, &out)
	return out.Action, err
}

// Action shows one action.
func (c *Client) Action(ctx context.Context, id string) (Action, error) {
	var out struct {
		Action Action `json:"action"`
	}
	_, err := c.Do(ctx, "GET", "/straas/v1.0/actions/"+url.PathEscape(id), nil, &out)
	return out.Action, err
}

// ComponentTypes lists component types.
func (c *Client) ComponentTypes(ctx context.Context) ([]model.ComponentType, error) {
	var out struct {
		Components []model.ComponentType `json:"components"`
	}
	_, err := c.Do(ctx, "GET", "/straas/v1.0/components", nil, &out)
	return out.Components, err
}

// Raw does a request and returns the raw JSON answer.
func (c *Client) Raw(ctx context.Context, method, path string, body any) (json.RawMessage, error) {
	var raw json.RawMessage
	_, err := c.Do(ctx, method, path, body, &raw)
	return raw, err
}
