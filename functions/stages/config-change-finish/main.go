// Command config-change-finish is the stage function ConfigChangeFinish of statemachines/*.asl.json (${ConfigChangeFinishFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ConfigChangeFinish"))) }
