// Package model holds straas's domain types: topologies, components, nodes, actions and
// events, their statuses, and the validation of user requests. It is pure: no I/O.
package model

import (
	"encoding/json"
	"time"
)

// Topology and component statuses.
const (
	StatusCreating = "CREATING"
	StatusActive   = "ACTIVE"
	StatusUpdating = "UPDATING"
	StatusDegraded = "DEGRADED"
	StatusFailed   = "FAILED"
	StatusDeleting = "DELETING"
	StatusDeleted  = "DELETED"
)

// Node statuses, in creation order, then the others.
const (
	NodeSpawning    = "SPAWNING"
	NodeVMBooted    = "VM_BOOTED"
	NodeInstalled   = "INSTALLED"
	NodeConfigured  = "CONFIGURED"
	NodeActive      = "ACTIVE"
	NodeFailed      = "FAILED"
	NodeUnreachable = "UNREACHABLE"
	NodeMaintenance = "MAINTENANCE"
	NodeDeleting    = "DELETING"
	// NodeRestartRequired: the node received configuration that takes effect only once
	// its services restart (an option marked restart_required changed).
	NodeRestartRequired = "RESTART_REQUIRED"
)

// Action statuses.
const (
	ActionPending   = "PENDING"
	ActionRunning   = "RUNNING"
	ActionSucceeded = "SUCCEEDED"
	ActionFailed    = "FAILED"
	ActionCancelled = "CANCELLED"
)

// Topology is a named set of components in one availability zone, owned by a tenant.
type Topology struct {
	ID               string    `json:"id"`
	Name             string    `json:"name"`
	AvailabilityZone string    `json:"availability_zone"`
	Tenant           string    `json:"tenant"`     // Keystone project id
	Owner            string    `json:"owner"`      // Keystone user id
	OwnerName        string    `json:"owner_name"` // Keystone user name
	Status           string    `json:"status"`
	ConfigBranch     string    `json:"config_branch"` // <name>@<az> in the config repo
	Action           string    `json:"action,omitempty"`
	Components       []string  `json:"component_ids"` // in request order
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

// Branch is the config repo branch of a topology.
func Branch(name, az string) string { return name + "@" + az }

// Component is one cluster of a topology (a zookeeper ensemble, a kafka cluster, ...).
type Component struct {
	ID                  string      `json:"id"`
	TopologyID          string      `json:"topology_id"`
	Tenant              string      `json:"tenant"`
	Name                string      `json:"name"`
	Type                string      `json:"type"`
	Version             string      `json:"version"`
	Size                int         `json:"size"`
	Flavor              string      `json:"flavor"`
	Image               string      `json:"image"`
	DependsOn           []string    `json:"depends_on"` // component names in the same topology
	EnableCName         bool        `json:"enable_cname"`
	EnableFaultDomain   bool        `json:"enable_fault_domain"`
	MinNumOfFaultDomain int         `json:"min_num_of_fault_domain,omitempty"`
	AntiAffinityGroup   string      `json:"anti_affinity_group,omitempty"`
	ServerGroupID       string      `json:"server_group_id,omitempty"`
	Submodules          []Submodule `json:"submodules,omitempty"`
	Status              string      `json:"status"`
	Order               int         `json:"order"`    // position in the topology request
	NextIndex           int         `json:"next_idx"` // next node ordinal to hand out
	CreatedAt           time.Time   `json:"created_at"`
	UpdatedAt           time.Time   `json:"updated_at"`
}

// Submodule is a role of a component with its own size and overrides (storm's nimbus
// and supervisor).
type Submodule struct {
	Role        string `json:"role"`
	Name        string `json:"name,omitempty"`
	Size        int    `json:"size"`
	Flavor      string `json:"flavor,omitempty"`
	Image       string `json:"image,omitempty"`
	EnableCName *bool  `json:"enable_cname,omitempty"`
}

// Layout is a component's nodes per role, in a stable order.
type Layout []RoleCount

// RoleCount is how many nodes of a role a component has, with the role's settings.
type RoleCount struct {
	Role        string
	Count       int
	Flavor      string
	Image       string
	EnableCName bool
}

// Layout returns the component's desired nodes per role. defaultRole is used when the
// component has no submodules.
func (c *Component) Layout(defaultRole string) Layout {
	if len(c.Submodules) == 0 {
		return Layout{{Role: defaultRole, Count: c.Size, Flavor: c.Flavor, Image: c.Image, EnableCName: c.EnableCName}}
	}
	var l Layout
	for _, s := range c.Submodules {
		rc := RoleCount{Role: s.Role, Count: s.Size, Flavor: c.Flavor, Image: c.Image, EnableCName: c.EnableCName}
		if s.Flavor != "" {
			rc.Flavor = s.Flavor
		}
		if s.Image != "" {
			rc.Image = s.Image
		}
		if s.EnableCName != nil {
			rc.EnableCName = *s.EnableCName
		}
		l = append(l, rc)
	}
	return l
}

// Node is one VM of a component.
type Node struct {
	ID          string `json:"id"`
	Name        string `json:"name"` // also the Nova server name and hostname
	TopologyID  string `json:"topology_id"`
	ComponentID string `json:"component_id"`
	Tenant      string `json:"tenant"`
	Role        string `json:"role"`
	Index       int    `json:"index"` // ordinal within the component, from 1; stable across replace
	Status      string `json:"status"`
	// PrevStatus is the status a node had when the checker flagged it UNREACHABLE; it
	// gets it back when it reports again.
	PrevStatus string `json:"previous_status,omitempty"`

	AvailabilityZone string   `json:"availability_zone"`
	Flavor           string   `json:"flavor"`
	Image            string   `json:"image"`
	ServerID         string   `json:"server_id,omitempty"`
	Hypervisor       string   `json:"hypervisor,omitempty"` // the compute node (CN) it runs on
	FaultDomain      string   `json:"fault_domain,omitempty"`
	Hostname         string   `json:"hostname,omitempty"`
	IPs              []string `json:"ips,omitempty"`
	CName            string   `json:"cname,omitempty"`

	InstalledVersion string      `json:"installed_version,omitempty"`
	ConfigRef        string      `json:"config_ref,omitempty"`
	Config           *NodeConfig `json:"config,omitempty"` // what the node received at pre-config
	Error            string      `json:"error,omitempty"`
	Generation       int         `json:"generation"`           // +1 on every replace
	CreatedBy        string      `json:"created_by,omitempty"` // the action that created (or last re-created) it

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// NodeConfig is the configuration a node received: the sections and the rendered site.pp.
type NodeConfig struct {
	Ref      string                    `json:"ref,omitempty"`
	Sections map[string]map[string]any `json:"sections"`
	SitePP   string                    `json:"site_pp,omitempty"`
}

// Lease is a node's liveness as last reported: kept apart from Node so that heartbeats do
// not contend with workflow writes, and written at most once per renewal period unless
// something changed.
type Lease struct {
	NodeID      string             `json:"node_id"`
	TopologyID  string             `json:"topology_id"`
	LastSeen    time.Time          `json:"last_seen"`
	Seq         uint64             `json:"seq"`
	Services    map[string]string  `json:"services,omitempty"`
	Metrics     map[string]float64 `json:"metrics,omitempty"`
	Installed   string             `json:"installed,omitempty"`
	ConfigRef   string             `json:"config_ref,omitempty"`
	Maintenance bool               `json:"maintenance,omitempty"`
	Stale       bool               `json:"stale,omitempty"` // flagged by the checker; cleared by the next heartbeat
}

// Action is the user-facing handle of a job: every mutating call returns one.
type Action struct {
	ID          string          `json:"id"`
	Kind        string          `json:"kind"` // create_topology, delete_topology, ...
	Tenant      string          `json:"tenant"`
	User        string          `json:"user"`
	TopologyID  string          `json:"topology_id,omitempty"`
	ComponentID string          `json:"component_id,omitempty"`
	NodeID      string          `json:"node_id,omitempty"`
	Status      string          `json:"status"`
	Machine     string          `json:"machine"`             // state machine it runs
	Execution   string          `json:"execution,omitempty"` // workflow execution id
	Input       json.RawMessage `json:"input,omitempty"`     // the execution input
	Error       *ActionError    `json:"error,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	StartedAt   *time.Time      `json:"started_at,omitempty"`
	FinishedAt  *time.Time      `json:"finished_at,omitempty"`
}

// ActionError says where and why an action failed.
type ActionError struct {
	Component string `json:"component,omitempty"`
	Stage     string `json:"stage,omitempty"`
	Node      string `json:"node,omitempty"`
	Error     string `json:"error"` // an error name, e.g. NodeCommandFailed
	Cause     string `json:"cause"`
}

// Stage records the progress of one stage of one component within an action.
type Stage struct {
	ActionID    string        `json:"action_id"`
	ComponentID string        `json:"component_id"`
	Component   string        `json:"component"` // name
	Name        string        `json:"stage"`
	Status      string        `json:"status"` // RUNNING, SUCCEEDED, FAILED, WAITING
	StartedAt   time.Time     `json:"started_at"`
	FinishedAt  *time.Time    `json:"finished_at,omitempty"`
	NodesTotal  int           `json:"nodes_total"`
	NodesDone   int           `json:"nodes_done"`
	NodesFailed int           `json:"nodes_failed"`
	Failures    []NodeFailure `json:"failures,omitempty"`
	Detail      string        `json:"detail,omitempty"`
}

// NodeFailure is one node's failure within a stage.
type NodeFailure struct {
	Node  string `json:"node"`
	Name  string `json:"name"`
	Error string `json:"error"`
}

// Event levels.
const (
	LevelInfo    = "info"
	LevelWarning = "warning"
	LevelError   = "error"
)

// Event is an entry of the append-only audit and timeline.
type Event struct {
	ID          string         `json:"id"` // time-ordered
	At          time.Time      `json:"at"`
	Level       string         `json:"level"`
	Type        string         `json:"type"` // e.g. topology.create, node.status, action.failed
	Tenant      string         `json:"tenant,omitempty"`
	User        string         `json:"user,omitempty"`
	Source      string         `json:"source,omitempty"` // client address for API calls
	TopologyID  string         `json:"topology_id,omitempty"`
	ComponentID string         `json:"component_id,omitempty"`
	NodeID      string         `json:"node_id,omitempty"`
	ActionID    string         `json:"action_id,omitempty"`
	Message     string         `json:"message"`
	Data        map[string]any `json:"data,omitempty"`
}

// ComponentType is what the script repo says about a type of component.
type ComponentType struct {
	Type          string   `json:"type"`
	Versions      []string `json:"versions"`
	Roles         []string `json:"roles"`
	DefaultFlavor string   `json:"default_flavor"`
	DefaultImage  string   `json:"default_image,omitempty"`
	MinSize       int      `json:"min_size,omitempty"`
	Quorum        bool     `json:"quorum,omitempty"` // majority must stay up (zookeeper)
}

// HasVersion reports whether v is a known version.
func (t ComponentType) HasVersion(v string) bool {
	for _, x := range t.Versions {
		if x == v {
			return true
		}
	}
	return false
}

// HasRole reports whether r is a known role.
func (t ComponentType) HasRole(r string) bool {
	for _, x := range t.Roles {
		if x == r {
			return true
		}
	}
	return false
}
