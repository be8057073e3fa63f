// Command config-change-command is the stage function ConfigChangeCommand of statemachines/*.asl.json (${ConfigChangeCommandFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ConfigChangeCommand"))) }
