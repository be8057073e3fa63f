// Command lifecycle-failed is the stage function LifecycleFailed of statemachines/*.asl.json (${LifecycleFailedFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("LifecycleFailed"))) }
