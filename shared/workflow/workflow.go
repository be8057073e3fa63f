// Package workflow is the port to the workflow engine that runs statemachines/*.asl.json:
// the embedded ASL interpreter (shared/asl) or AWS Step Functions (adapter sfn).
package workflow

import (
	"context"
	"time"
)

// Execution statuses, as Step Functions names them.
const (
	Running   = "RUNNING"
	Succeeded = "SUCCEEDED"
	Failed    = "FAILED"
	TimedOut  = "TIMED_OUT"
	Aborted   = "ABORTED"
)

// Execution describes one run of a state machine.
type Execution struct {
	ID      string // opaque: an ARN on Step Functions
	Machine string // state machine name, e.g. "creation"
	Name    string // execution name given to Start
	Status  string
	Input   []byte
	Output  []byte
	Error   string
	Cause   string
	Started time.Time
	Stopped time.Time
}

// Engine is the port.
type Engine interface {
	// Start runs machine with input under a unique name. Starting the same name again
	// with the same input returns the existing execution, even once it has ended (Step
	// Functions itself is idempotent only while it runs; the sfn adapter closes the gap);
	// a different input is an errs.Conflict error. Unknown machines are errs.NotFound.
	Start(ctx context.Context, machine, name string, input []byte) (id string, err error)
	Describe(ctx context.Context, id string) (Execution, error)
	Stop(ctx context.Context, id, errName, cause string) error
	// SendTaskSuccess completes the .waitForTaskToken task holding token with output.
	SendTaskSuccess(ctx context.Context, token string, output []byte) error
	// SendTaskFailure fails that task with an error name (matched by Retry/Catch) and cause.
	SendTaskFailure(ctx context.Context, token, errName, cause string) error
	SendTaskHeartbeat(ctx context.Context, token string) error
}

// Machines lists the state machines straas defines, one statemachines/<name>.asl.json each.
// The slice is extended as workflows are added.
var Machines = []string{"creation", "deletion"}
