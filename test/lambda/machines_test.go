package lambda

import (
	"context"
	"sync"
	"testing"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"

	"github.com/straas/straas/infra/bootstrap"
	"github.com/straas/straas/shared/workflow/sfn"
	"github.com/straas/straas/test/awsendpoint"
)

// Given the machines' ARNs (sfn.Options.Machines, from STRAAS_STATE_MACHINE_ARN_PREFIX),
// starting a workflow sends StartExecution alone: no ListStateMachines, whose
// permission the functions no longer have.
func TestStartWithKnownMachineARNsListsNothing(t *testing.T) {
	ctx := testCtx(t)
	cfg := awsendpoint.Config(t)
	var mu sync.Mutex
	ops := map[string]int{}
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("countOperations",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				mu.Lock()
				ops[awsmiddleware.GetOperationName(ctx)]++
				mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
	prefix := awsendpoint.Name("arns") + "-"
	deployed, err := sfn.New(cfg, sfn.Options{Prefix: prefix, RoleARN: bootstrap.DefaultRoleARN}).Deploy(ctx,
		map[string][]byte{"pass": []byte(`{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		machines map[string]string
		lists    int
	}{
		{"ARNs given", map[string]string{"pass": deployed["pass"]}, 0},
		{"found by listing", nil, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := sfn.New(cfg, sfn.Options{Prefix: prefix, Machines: tc.machines})
			mu.Lock()
			clear(ops)
			mu.Unlock()
			for _, name := range []string{"a", "b"} {
				if _, err := e.Start(ctx, "pass", awsendpoint.Name(name), []byte(`{}`)); err != nil {
					t.Fatal(err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if ops["ListStateMachines"] != tc.lists || ops["StartExecution"] != 2 {
				t.Errorf("got %v; want %d ListStateMachines and 2 StartExecution", ops, tc.lists)
			}
		})
	}
}
