package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"

	"github.com/straas/straas/shared/errs"
)

// Func is a task function: what a Lambda function is to Step Functions. Input and output
// are JSON. An error is reported to the state machine under ErrorName(err).
type Func func(ctx context.Context, input json.RawMessage) (json.RawMessage, error)

// Named marks error types a state machine may Retry or Catch by name. The name is the Go
// type's name, which is what the Lambda Go runtime reports as the error type, so the
// embedded interpreter and Step Functions see the same name.
type Named interface {
	error
	StatesError()
}

// TaskFailed is reported for any task error that is not Named and not transient.
type TaskFailed struct{ Msg string }

func (e *TaskFailed) Error() string { return e.Msg }
func (*TaskFailed) StatesError()    {}

// Transient is reported for errs.Transient/Unavailable errors: state machines retry it.
type Transient struct{ Msg string }

func (e *Transient) Error() string { return e.Msg }
func (*Transient) StatesError()    {}

// Surface returns the error a task function should hand to its runtime: the first Named
// error in err's chain (keeping the full message), else a Transient or TaskFailed.
func Surface(err error) error {
	if err == nil {
		return nil
	}
	var n Named
	if errors.As(err, &n) {
		if n.Error() == err.Error() {
			return n
		}
		return &surfaced{Named: n, msg: err.Error()}
	}
	switch errs.KindOf(err) {
	case errs.Transient, errs.Unavailable:
		return &Transient{Msg: err.Error()}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Transient{Msg: err.Error()}
	}
	return &TaskFailed{Msg: err.Error()}
}

// surfaced keeps a Named error's identity with a longer message.
type surfaced struct {
	Named
	msg string
}

func (s *surfaced) Error() string { return s.msg }
func (s *surfaced) Unwrap() error { return s.Named }

// ErrorName is the name under which err reaches Retry/Catch: the Go type name of the
// Named error (as Lambda's Go runtime names it), else the name Surface gives it.
func ErrorName(err error) string {
	if err == nil {
		return ""
	}
	if s, ok := err.(*surfaced); ok {
		err = s.Named
	}
	if _, ok := err.(Named); !ok {
		err = Surface(err)
		if s, ok := err.(*surfaced); ok {
			err = s.Named
		}
	}
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}
