package api

import (
	"github.com/straas/straas/shared/cloud"
	"github.com/straas/straas/shared/model"
)

// The answer bodies of the topology, catalog and action routes, as the OpenAPI document
// describes them. The end-to-end suite validates every real answer against the
// document, so a handler that answers something else fails it.

// TopologyCreated is the answer of POST /topologies.
type TopologyCreated struct {
	Topology TopologyView `json:"topology"`
	Action   ActionRef    `json:"action"`
}

// TopologyResponse is the answer of GET /topologies/{id}.
type TopologyResponse struct {
	Topology TopologyView `json:"topology"`
}

// TopologyDeleted is the answer of DELETE /topologies/{id}.
type TopologyDeleted struct {
	Topology model.Topology `json:"topology"`
	Action   ActionRef      `json:"action"`
}

// ActionAccepted is the answer of a mutating call that only starts an action.
type ActionAccepted struct {
	Action ActionRef `json:"action"`
}

// ComponentTypeList is the answer of GET /components.
type ComponentTypeList struct {
	Components []model.ComponentType `json:"components"`
}

// FlavorList is the answer of GET /components/{type}/nova_flavors.
type FlavorList struct {
	Type             string         `json:"type"`
	AvailabilityZone string         `json:"availability_zone"`
	DefaultFlavor    string         `json:"default_flavor"`
	Flavors          []cloud.Flavor `json:"flavors"`
}

// ActionResponse is the answer of GET /actions/{id}.
type ActionResponse struct {
	Action ActionView `json:"action"`
}
