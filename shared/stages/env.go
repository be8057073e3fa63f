// Package stages holds the workflow stage functions of statemachines/*.asl.json. Each is
// a small, typed, idempotent func(ctx, In) (Out, error) registered by name: the embedded
// interpreter calls them in-process; on AWS each is a Lambda function. They depend on
// ports only, never on an AWS SDK.
package stages

import (
	"context"
	"log/slog"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/cloud"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/workflow"
)

// Compute is what stages need of a cloud's compute service.
type Compute interface {
	CreateServer(ctx context.Context, s cloud.ServerSpec) (string, error)
	FindServer(ctx context.Context, name string) (cloud.Server, error)
	ListServers(ctx context.Context, nameRegex string) ([]cloud.Server, error)
	DeleteServer(ctx context.Context, id string) error
	EnsureServerGroup(ctx context.Context, name, policy string) (string, error)
	DeleteServerGroup(ctx context.Context, id string) error
}

// Clouds maps an availability zone to the cloud serving it (seed 000 §4.5: one straas,
// several AZs).
type Clouds interface {
	Zone(ctx context.Context, az string) (Compute, error)
}

// Repos is what stages need of the script and config repositories.
type Repos interface {
	ComponentType(ctx context.Context, typ string) (model.ComponentType, error)
	// Layout is the component's nodes per role (submodules, or the type's default layout).
	Layout(ctx context.Context, c *model.Component) (model.Layout, error)
	Package(ctx context.Context, typ, role, version string) (agentproto.Package, error)
	ScriptsRef(ctx context.Context) (string, error)
	CreateBranch(ctx context.Context, branch string) error
	DeleteBranch(ctx context.Context, branch string) error
	PreConfig(ctx context.Context, in PreConfigInput) (PreConfigOutput, error)
}

// PreConfigInput is what pre-config computes from (seed 000 §4.3.2 pre-config stage).
type PreConfigInput struct {
	Ref          string // config ref: the topology's branch
	Topology     model.Topology
	Component    model.Component
	Nodes        []model.Node
	Dependencies []Dependency
}

// Dependency is a component this one depends on, with its nodes.
type Dependency struct {
	Component model.Component
	Nodes     []model.Node
}

// PreConfigOutput is every node's configuration and the other operations to run.
type PreConfigOutput struct {
	Ref        string                      // the commit the configuration was read at
	Nodes      map[string]model.NodeConfig // by node id
	Operations []Operation
}

// Operation is a guest command pre-config needs run on some node (e.g. kafka: create its
// namespace on a zookeeper node).
type Operation struct {
	NodeID string `json:"node_id"`
	Name   string `json:"node_name"`
	Role   string `json:"role"`
	Type   string `json:"type"`
	Cmd    string `json:"command"` // <group>/<name>
	Args   string `json:"args"`
}

// Settings tune the stages.
type Settings struct {
	StatusQueue      string        // default queue.Status
	HeartbeatSeconds int           // told to agents in user data (default 10)
	LeaseSeconds     int           // agents' lease period, told in user data (0: the agent's default)
	StageTimeout     time.Duration // how long a stage waits for nodes (default 15 min)
	SpawnTimeout     time.Duration // how long spawn waits for Nova (default 10 min)
	PollInterval     time.Duration // Nova polling while spawning/deleting (default 100 ms, backing off to 2 s)
	CNameDomain      string        // default "straas.local"
	Parallelism      int           // concurrent Nova calls per stage (default 16)
}

func (s *Settings) defaults() {
	if s.StatusQueue == "" {
		s.StatusQueue = queue.Status
	}
	if s.HeartbeatSeconds == 0 {
		s.HeartbeatSeconds = 10
	}
	if s.StageTimeout == 0 {
		s.StageTimeout = 15 * time.Minute
	}
	if s.SpawnTimeout == 0 {
		s.SpawnTimeout = 10 * time.Minute
	}
	if s.PollInterval == 0 {
		s.PollInterval = 100 * time.Millisecond
	}
	if s.CNameDomain == "" {
		s.CNameDomain = "straas.local"
	}
	if s.Parallelism == 0 {
		s.Parallelism = 16
	}
}

// Env is everything the stage functions use.
type Env struct {
	DB       *db.DB
	Batches  *batch.Service
	Queue    queue.Queue
	Workflow workflow.Engine
	Clouds   Clouds
	Repos    Repos
	Log      *slog.Logger
	Settings Settings
}

// NewEnv fills defaults.
func NewEnv(e Env) *Env {
	e.Settings.defaults()
	if e.Log == nil {
		e.Log = slog.Default()
	}
	if e.Batches == nil {
		e.Batches = &batch.Service{DB: e.DB, Queue: e.Queue, Workflow: e.Workflow, Log: e.Log}
	}
	return &e
}

// Ref identifies what a stage works on. Workflows pass ids, never node lists, so that
// payloads stay small (Step Functions' 256 KB) whatever the size of a component.
type Ref struct {
	ActionID    string `json:"action_id"`
	TopologyID  string `json:"topology_id"`
	ComponentID string `json:"component_id,omitempty"`
}

// Callback is the payload of a .waitForTaskToken stage.
type Callback struct {
	Ref
	Token   string `json:"token"`
	Stage   string `json:"stage"`
	Command string `json:"command,omitempty"`
}

// Timeouts are passed through the execution input so that ASL can bound callbacks.
type Timeouts struct {
	Stage int `json:"stage"` // seconds
}
