// Command restart-step is the stage function RestartStep of statemachines/*.asl.json (${RestartStepFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("RestartStep"))) }
