package stages

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/workflow"
)

// Typed adapts a typed stage function to a workflow.Func: JSON in and out, and errors
// surfaced under the names state machines Retry and Catch.
func Typed[In, Out any](fn func(context.Context, In) (Out, error)) workflow.Func {
	return func(ctx context.Context, raw json.RawMessage) (json.RawMessage, error) {
		var in In
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &in); err != nil {
				return nil, workflow.Surface(errs.Invalidf("input", "stage input: %v", err))
			}
		}
		out, err := fn(ctx, in)
		if err != nil {
			return nil, workflow.Surface(err)
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, workflow.Surface(fmt.Errorf("stage output: %w", err))
		}
		return b, nil
	}
}

// Empty is the output of stages whose result the state machine discards.
type Empty struct{}

// Functions returns every stage function by the name the state machines use in
// ${<Name>FunctionArn}. Each workflow family contributes its own set.
func (e *Env) Functions() map[string]workflow.Func {
	out := map[string]workflow.Func{}
	for _, set := range []map[string]workflow.Func{e.topologyFunctions(), e.configFunctions(), e.lifecycleFunctions(),
		e.policyFunctions()} {
		for name, f := range set {
			if _, dup := out[name]; dup {
				panic("stage function registered twice: " + name) // a programming error, caught by every test
			}
			out[name] = f
		}
	}
	return out
}

// topologyFunctions are the stages of creation and deletion.
func (e *Env) topologyFunctions() map[string]workflow.Func {
	return map[string]workflow.Func{
		"Start":             Typed(e.Start),
		"Spawn":             Typed(e.Spawn),
		"AwaitHello":        Typed(e.AwaitHello),
		"RunCommand":        Typed(e.RunCommand),
		"CName":             Typed(e.CName),
		"AwaitDependencies": Typed(e.AwaitDependencies),
		"PreConfig":         Typed(e.PreConfig),
		"FinishComponent":   Typed(e.FinishComponent),
		"FailComponent":     Typed(e.FailComponent),
		"FinishJob":         Typed(e.FinishJob),
		"MarkDeleting":      Typed(e.MarkDeleting),
		"DeleteNodes":       Typed(e.DeleteNodes),
		"DeleteConfig":      Typed(e.DeleteConfig),
		"FinishDeletion":    Typed(e.FinishDeletion),
		"DeletionFailed":    Typed(e.DeletionFailed),
	}
}

// Named errors state machines catch or retry by name.

// SpawnFailed: Nova could not boot some of a component's servers.
type SpawnFailed struct{ Msg string }

func (e *SpawnFailed) Error() string { return e.Msg }
func (*SpawnFailed) StatesError()    {}

// DependencyFailed: a component this one depends on failed.
type DependencyFailed struct{ Msg string }

func (e *DependencyFailed) Error() string { return e.Msg }
func (*DependencyFailed) StatesError()    {}

// ServersRemain: deletion is waiting for Nova to finish removing servers (retried).
type ServersRemain struct{ Msg string }

func (e *ServersRemain) Error() string { return e.Msg }
func (*ServersRemain) StatesError()    {}
