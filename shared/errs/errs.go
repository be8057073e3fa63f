// Package errs gives errors a Kind (what went wrong, independent of where) plus the
// operation and, for bad input, the offending field. HTTP status and workflow error
// names are derived from the Kind in one place each; nothing matches error strings.
package errs

import (
	"errors"
	"fmt"
	"strings"
)

// Kind classifies an error.
type Kind uint8

const (
	Other           Kind = iota // unclassified: an internal failure
	Invalid                     // the request is malformed or names something that does not exist
	Unauthenticated             // no credentials, or credentials that are not valid
	Permission                  // authenticated but not allowed
	NotFound                    // the addressed resource does not exist (or is not visible)
	Conflict                    // the request conflicts with current state (duplicate, race, wrong state)
	Precondition                // If-Match / version check failed
	TooLarge                    // the request or a value is over a limit
	RateLimited                 // too many requests
	Transient                   // temporary failure: retry later
	Unavailable                 // a dependency is down
)

var kindNames = [...]string{
	Other: "internal", Invalid: "invalid", Unauthenticated: "unauthenticated",
	Permission: "permission", NotFound: "not_found", Conflict: "conflict",
	Precondition: "precondition_failed", TooLarge: "too_large", RateLimited: "rate_limited",
	Transient: "transient", Unavailable: "unavailable",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is the structured error of straas.
type Error struct {
	Kind  Kind
	Op    string // what was being done, e.g. "create topology"
	Field string // for Invalid: the JSON path of the bad field, e.g. "components[1].depends_on"
	Msg   string // human readable detail
	Err   error  // underlying cause
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
	}
	add := func(s string) {
		if s == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(s)
	}
	if e.Field != "" && e.Msg != "" {
		add(e.Field + ": " + e.Msg)
	} else {
		add(e.Field)
		add(e.Msg)
	}
	if e.Err != nil {
		add(e.Err.Error())
	}
	if b.Len() == 0 {
		return e.Kind.String()
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an *Error of the given kind.
func E(kind Kind, op, msg string) error { return &Error{Kind: kind, Op: op, Msg: msg} }

// Wrap wraps err with a kind and operation.
func Wrap(kind Kind, op string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: kind, Op: op, Err: err}
}

// Invalidf reports bad input in field.
func Invalidf(field, format string, args ...any) error {
	return &Error{Kind: Invalid, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// NotFoundf reports a missing resource.
func NotFoundf(format string, args ...any) error {
	return &Error{Kind: NotFound, Msg: fmt.Sprintf(format, args...)}
}

// Conflictf reports a conflict with current state.
func Conflictf(format string, args ...any) error {
	return &Error{Kind: Conflict, Msg: fmt.Sprintf(format, args...)}
}

// Permissionf reports a forbidden action.
func Permissionf(format string, args ...any) error {
	return &Error{Kind: Permission, Msg: fmt.Sprintf(format, args...)}
}

// Transientf reports a temporary failure.
func Transientf(format string, args ...any) error {
	return &Error{Kind: Transient, Msg: fmt.Sprintf(format, args...)}
}

// KindOf returns the Kind of the outermost *Error in err's chain that has one,
// Other when there is none.
func KindOf(err error) Kind {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return Other
		}
		if e.Kind != Other {
			return e.Kind
		}
		err = e.Err
	}
	return Other
}

// Is reports whether err has kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

// FieldOf returns the offending field of an Invalid error, if any.
func FieldOf(err error) string {
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			return ""
		}
		if e.Field != "" {
			return e.Field
		}
		err = e.Err
	}
	return ""
}
