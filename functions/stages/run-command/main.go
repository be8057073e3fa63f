// Command run-command is the stage function RunCommand of statemachines/*.asl.json (${RunCommandFunctionArn}):
// one command to every node of a stage, completed by their results.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("RunCommand"))) }
