// Command start is the stage function Start of statemachines/*.asl.json (${StartFunctionArn}):
// creation's start: the config branch and server groups.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("Start"))) }
