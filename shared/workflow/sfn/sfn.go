// Package sfn is the workflow.Engine adapter on AWS Step Functions. It deploys the
// statemachines/*.asl.json files (with DefinitionSubstitutions-style ${Key} values),
// maps machine names to ARNs, and maps Step Functions errors to errs Kinds.
package sfn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/workflow"
)

// sfnAPI is the part of the Step Functions client the engine uses.
type sfnAPI interface {
	CreateStateMachine(ctx context.Context, in *sfn.CreateStateMachineInput, optFns ...func(*sfn.Options)) (*sfn.CreateStateMachineOutput, error)
	UpdateStateMachine(ctx context.Context, in *sfn.UpdateStateMachineInput, optFns ...func(*sfn.Options)) (*sfn.UpdateStateMachineOutput, error)
	DeleteStateMachine(ctx context.Context, in *sfn.DeleteStateMachineInput, optFns ...func(*sfn.Options)) (*sfn.DeleteStateMachineOutput, error)
	ListStateMachines(ctx context.Context, in *sfn.ListStateMachinesInput, optFns ...func(*sfn.Options)) (*sfn.ListStateMachinesOutput, error)
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, optFns ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, optFns ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
	StopExecution(ctx context.Context, in *sfn.StopExecutionInput, optFns ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error)
	SendTaskSuccess(ctx context.Context, in *sfn.SendTaskSuccessInput, optFns ...func(*sfn.Options)) (*sfn.SendTaskSuccessOutput, error)
	SendTaskFailure(ctx context.Context, in *sfn.SendTaskFailureInput, optFns ...func(*sfn.Options)) (*sfn.SendTaskFailureOutput, error)
	SendTaskHeartbeat(ctx context.Context, in *sfn.SendTaskHeartbeatInput, optFns ...func(*sfn.Options)) (*sfn.SendTaskHeartbeatOutput, error)
}

// Options configure an Engine.
type Options struct {
	// Prefix is prepended to machine names in Step Functions ("straas-" makes "creation"
	// the machine "straas-creation"), so several deployments share an account.
	Prefix string
	// RoleARN is the execution role of machines Deploy creates.
	RoleARN string
	// Machines maps machine names (without prefix) to ARNs known in advance (a deployed
	// stack's): Start and Describe then need no ListStateMachines call, nor its
	// permission. A machine missing here is still looked up by listing.
	Machines map[string]string
}

// Engine is a workflow.Engine on Step Functions.
type Engine struct {
	api sfnAPI
	o   Options

	mu   sync.Mutex
	arns map[string]string // machine name (without prefix) -> state machine ARN
}

var _ workflow.Engine = (*Engine)(nil)

// New returns an engine on the endpoint of cfg. It sends no request.
func New(cfg aws.Config, o Options) *Engine { return newEngine(sfn.NewFromConfig(cfg), o) }

func newEngine(api sfnAPI, o Options) *Engine {
	arns := make(map[string]string, len(o.Machines))
	for name, arn := range o.Machines {
		arns[name] = arn
	}
	return &Engine{api: api, o: o, arns: arns}
}

// DefinitionSuffix names the files LoadDefinitions reads.
const DefinitionSuffix = ".asl.json"

// LoadDefinitions reads dir/*.asl.json into machine name -> definition.
func LoadDefinitions(dir string) (map[string][]byte, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*"+DefinitionSuffix))
	if err != nil {
		return nil, errs.Wrap(errs.Invalid, "load state machines", err)
	}
	defs := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("load state machines: %w", err)
		}
		defs[strings.TrimSuffix(filepath.Base(p), DefinitionSuffix)] = b
	}
	return defs, nil
}

var placeholder = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)

// Substitute replaces every ${Key} in the definitions with subs[Key], as SAM's
// DefinitionSubstitutions do. The values go into the JSON text as they are (they are
// ARNs and URLs); a placeholder without a value, or a result that is not JSON, is an
// errs.Invalid error naming the machine.
func Substitute(defs map[string][]byte, subs map[string]string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(defs))
	for name, def := range defs {
		var missing []string
		b := placeholder.ReplaceAllFunc(def, func(m []byte) []byte {
			key := string(m[2 : len(m)-1])
			v, ok := subs[key]
			if !ok {
				missing = append(missing, key)
				return m
			}
			return []byte(v)
		})
		if len(missing) > 0 {
			sort.Strings(missing)
			return nil, errs.Invalidf("statemachines/"+name+DefinitionSuffix, "no substitution for %s", strings.Join(missing, ", "))
		}
		if !json.Valid(b) {
			return nil, errs.Invalidf("statemachines/"+name+DefinitionSuffix, "not valid JSON after substitution")
		}
		out[name] = b
	}
	return out, nil
}

// Deploy creates the machines that do not exist and updates the others, and returns
// machine name -> ARN. Definitions must be substituted already.
func (e *Engine) Deploy(ctx context.Context, defs map[string][]byte) (map[string]string, error) {
	if e.o.RoleARN == "" {
		return nil, errs.Invalidf("role_arn", "a role ARN is required to create state machines")
	}
	if err := e.refresh(ctx); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(defs))
	for n := range defs {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make(map[string]string, len(defs))
	for _, name := range names {
		arn, err := e.deployOne(ctx, name, string(defs[name]))
		if err != nil {
			return nil, err
		}
		out[name] = arn
	}
	return out, nil
}

func (e *Engine) deployOne(ctx context.Context, name, def string) (string, error) {
	op := "deploy state machine " + name
	e.mu.Lock()
	arn, ok := e.arns[name]
	e.mu.Unlock()
	if !ok {
		out, err := e.api.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{
			Name:       aws.String(e.o.Prefix + name),
			Definition: &def,
			RoleArn:    &e.o.RoleARN,
			Type:       types.StateMachineTypeStandard,
		})
		var exists *types.StateMachineAlreadyExists
		switch {
		case err == nil:
			e.remember(name, aws.ToString(out.StateMachineArn))
			return aws.ToString(out.StateMachineArn), nil
		case !errors.As(err, &exists):
			return "", apiError(op, err)
		}
		// Created meanwhile by someone else: update it below.
		if arn, err = e.MachineARN(ctx, name); err != nil {
			return "", err
		}
	}
	_, err := e.api.UpdateStateMachine(ctx, &sfn.UpdateStateMachineInput{
		StateMachineArn: &arn, Definition: &def, RoleArn: &e.o.RoleARN,
	})
	if err != nil {
		return "", apiError(op, err)
	}
	return arn, nil
}

// DeleteMachines deletes the named machines; missing ones are skipped.
func (e *Engine) DeleteMachines(ctx context.Context, names ...string) error {
	for _, n := range names {
		arn, err := e.MachineARN(ctx, n)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if _, err := e.api.DeleteStateMachine(ctx, &sfn.DeleteStateMachineInput{StateMachineArn: &arn}); err != nil {
			return apiError("delete state machine "+n, err)
		}
		e.mu.Lock()
		delete(e.arns, n)
		e.mu.Unlock()
	}
	return nil
}

func (e *Engine) remember(name, arn string) {
	e.mu.Lock()
	e.arns[name] = arn
	e.mu.Unlock()
}

// MachineARN returns the ARN of machine name, or an errs.NotFound error.
func (e *Engine) MachineARN(ctx context.Context, name string) (string, error) {
	e.mu.Lock()
	arn, ok := e.arns[name]
	e.mu.Unlock()
	if ok {
		return arn, nil
	}
	if err := e.refresh(ctx); err != nil {
		return "", err
	}
	e.mu.Lock()
	arn, ok = e.arns[name]
	e.mu.Unlock()
	if !ok {
		return "", errs.NotFoundf("state machine %q not found", name)
	}
	return arn, nil
}

// refresh reloads the name -> ARN map of machines carrying the prefix.
func (e *Engine) refresh(ctx context.Context) error {
	found := map[string]string{}
	p := sfn.NewListStateMachinesPaginator(e.api, &sfn.ListStateMachinesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return apiError("list state machines", err)
		}
		for _, m := range page.StateMachines {
			if n := aws.ToString(m.Name); strings.HasPrefix(n, e.o.Prefix) {
				found[strings.TrimPrefix(n, e.o.Prefix)] = aws.ToString(m.StateMachineArn)
			}
		}
	}
	e.mu.Lock()
	e.arns = found
	e.mu.Unlock()
	return nil
}

// Start starts machine under name. Step Functions itself returns the running execution
// for a repeated name and input; for a finished one it refuses, and then Start returns
// the existing execution if the input is the same JSON, and an errs.Conflict otherwise.
func (e *Engine) Start(ctx context.Context, machine, name string, input []byte) (string, error) {
	op := "start " + machine + "/" + name
	if len(input) == 0 {
		input = []byte("{}")
	}
	if !json.Valid(input) {
		return "", errs.Invalidf("input", "not valid JSON")
	}
	arn, err := e.MachineARN(ctx, machine)
	if err != nil {
		return "", err
	}
	in := string(input)
	out, err := e.api.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: &arn, Name: &name, Input: &in})
	if err == nil {
		return aws.ToString(out.ExecutionArn), nil
	}
	var exists *types.ExecutionAlreadyExists
	if !errors.As(err, &exists) {
		var gone *types.StateMachineDoesNotExist
		if errors.As(err, &gone) {
			e.mu.Lock()
			delete(e.arns, machine)
			e.mu.Unlock()
		}
		return "", apiError(op, err)
	}
	id := ExecutionARN(arn, name)
	ex, err := e.Describe(ctx, id)
	if err != nil {
		return "", fmt.Errorf("%s: already exists, and: %w", op, err)
	}
	if !sameJSON(ex.Input, input) {
		return "", &errs.Error{Kind: errs.Conflict, Op: op, Msg: "an execution of that name exists with another input", Err: err}
	}
	return id, nil
}

// ExecutionARN is the ARN Step Functions gives execution name of the machine machineARN.
func ExecutionARN(machineARN, name string) string {
	return strings.Replace(machineARN, ":stateMachine:", ":execution:", 1) + ":" + name
}

func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// Describe returns the execution id (its ARN).
func (e *Engine) Describe(ctx context.Context, id string) (workflow.Execution, error) {
	out, err := e.api.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: &id})
	if err != nil {
		return workflow.Execution{}, apiError("describe execution "+id, err)
	}
	ex := workflow.Execution{
		ID:      aws.ToString(out.ExecutionArn),
		Machine: e.machineName(aws.ToString(out.StateMachineArn)),
		Name:    aws.ToString(out.Name),
		Status:  string(out.Status),
		Error:   aws.ToString(out.Error),
		Cause:   aws.ToString(out.Cause),
		Started: aws.ToTime(out.StartDate),
		Stopped: aws.ToTime(out.StopDate),
	}
	if out.Input != nil {
		ex.Input = []byte(*out.Input)
	}
	if out.Output != nil {
		ex.Output = []byte(*out.Output)
	}
	return ex, nil
}

// machineName strips the ARN and the prefix from a state machine ARN.
func (e *Engine) machineName(arn string) string {
	n := arn
	if i := strings.LastIndex(arn, ":stateMachine:"); i >= 0 {
		n = arn[i+len(":stateMachine:"):]
	}
	if i := strings.IndexByte(n, ':'); i >= 0 { // a version or alias qualifier
		n = n[:i]
	}
	return strings.TrimPrefix(n, e.o.Prefix)
}

// Stop aborts the execution with an error name and cause.
func (e *Engine) Stop(ctx context.Context, id, errName, cause string) error {
	in := &sfn.StopExecutionInput{ExecutionArn: &id}
	if errName != "" {
		in.Error = &errName
	}
	if cause != "" {
		in.Cause = &cause
	}
	if _, err := e.api.StopExecution(ctx, in); err != nil {
		return apiError("stop execution "+id, err)
	}
	return nil
}

// SendTaskSuccess completes the task holding token; empty output is sent as null.
func (e *Engine) SendTaskSuccess(ctx context.Context, token string, output []byte) error {
	if len(output) == 0 {
		output = []byte("null")
	}
	if !json.Valid(output) {
		return errs.Invalidf("output", "not valid JSON")
	}
	out := string(output)
	_, err := e.api.SendTaskSuccess(ctx, &sfn.SendTaskSuccessInput{TaskToken: &token, Output: &out})
	return taskError("send task success", err)
}

// SendTaskFailure fails the task holding token with errName (what Retry and Catch match).
func (e *Engine) SendTaskFailure(ctx context.Context, token, errName, cause string) error {
	in := &sfn.SendTaskFailureInput{TaskToken: &token}
	if errName != "" {
		in.Error = &errName
	}
	if cause != "" {
		in.Cause = &cause
	}
	_, err := e.api.SendTaskFailure(ctx, in)
	return taskError("send task failure", err)
}

// SendTaskHeartbeat tells the task holding token that its worker is alive.
func (e *Engine) SendTaskHeartbeat(ctx context.Context, token string) error {
	_, err := e.api.SendTaskHeartbeat(ctx, &sfn.SendTaskHeartbeatInput{TaskToken: &token})
	return taskError("send task heartbeat", err)
}

// taskError maps the task-token errors: an unknown token is errs.NotFound; a task that
// timed out (or, on AWS, already finished) is errs.Conflict.
func taskError(op string, err error) error {
	if err == nil {
		return nil
	}
	var dne *types.TaskDoesNotExist
	var bad *types.InvalidToken
	var to *types.TaskTimedOut
	switch {
	case errors.As(err, &dne), errors.As(err, &bad):
		return &errs.Error{Kind: errs.NotFound, Op: op, Msg: "no task holds this token", Err: err}
	case errors.As(err, &to):
		return &errs.Error{Kind: errs.Conflict, Op: op, Msg: "the task timed out or is finished", Err: err}
	}
	return apiError(op, err)
}

// apiError gives an SDK error the Kind a caller acts on.
func apiError(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return errs.Wrap(errs.Unavailable, op, err)
	}
	switch ae.ErrorCode() {
	case "ExecutionDoesNotExist", "StateMachineDoesNotExist", "ResourceNotFound", "TaskDoesNotExist", "InvalidToken":
		return &errs.Error{Kind: errs.NotFound, Op: op, Msg: "not found", Err: err}
	case "ExecutionAlreadyExists", "StateMachineAlreadyExists", "ConflictException", "StateMachineDeleting", "TaskTimedOut":
		return errs.Wrap(errs.Conflict, op, err)
	case "InvalidArn", "InvalidName", "InvalidDefinition", "InvalidExecutionInput", "InvalidOutput",
		"MissingRequiredParameter", "ValidationException", "StateMachineTypeNotSupported":
		return errs.Wrap(errs.Invalid, op, err)
	case "ExecutionLimitExceeded", "StateMachineLimitExceeded", "ThrottlingException", "ServiceQuotaExceededException":
		return errs.Wrap(errs.RateLimited, op, err)
	case "ServiceUnavailable", "InternalFailure", "InternalServerError":
		return errs.Wrap(errs.Transient, op, err)
	}
	return errs.Wrap(errs.Other, op, err)
}
