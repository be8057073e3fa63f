// Command lifecycle-finish is the stage function LifecycleFinish of statemachines/*.asl.json (${LifecycleFinishFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("LifecycleFinish"))) }
