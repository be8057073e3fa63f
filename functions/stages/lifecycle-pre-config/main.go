// Command lifecycle-pre-config is the stage function LifecyclePreConfig of statemachines/*.asl.json (${LifecyclePreConfigFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("LifecyclePreConfig"))) }
