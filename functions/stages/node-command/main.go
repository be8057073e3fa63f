// Command node-command is the stage function NodeCommand of statemachines/*.asl.json (${NodeCommandFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("NodeCommand"))) }
