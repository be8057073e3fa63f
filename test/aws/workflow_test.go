package aws

import (
	"context"
	"testing"

	"github.com/straas/straas/shared/queue/sqsq"
	"github.com/straas/straas/shared/workflow/sfn"
	"github.com/straas/straas/shared/workflow/workflowtest"
	"github.com/straas/straas/test/awsendpoint"
)

// testRoleARN is any well-formed role: local stacks do not check it.
const testRoleARN = "arn:aws:iam::123456789012:role/straas-test-states"

func TestWorkflowContract(t *testing.T) {
	workflowtest.Run(t, func(t *testing.T, env workflowtest.Env) workflowtest.Setup {
		cfg := awsendpoint.Config(t)
		ctx := testCtx(t)
		q := sqsq.New(cfg, sqsq.Options{})
		if err := q.Ensure(ctx, env.TaskQueue); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Remove(context.Background(), env.TaskQueue) })
		url, err := q.URL(ctx, env.TaskQueue)
		if err != nil {
			t.Fatal(err)
		}
		defs, err := sfn.Substitute(env.Definitions, map[string]string{workflowtest.TaskQueueURL: url})
		if err != nil {
			t.Fatal(err)
		}
		e := sfn.New(cfg, sfn.Options{Prefix: awsendpoint.Name("wt") + "-", RoleARN: testRoleARN})
		if _, err := e.Deploy(ctx, defs); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			names := make([]string, 0, len(defs))
			for n := range defs {
				names = append(names, n)
			}
			if err := e.DeleteMachines(context.Background(), names...); err != nil {
				t.Errorf("delete machines: %v", err)
			}
		})
		return workflowtest.Setup{Engine: e, Queue: q}
	}, workflowtest.Options{})
}
