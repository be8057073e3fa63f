// Command config-change-node-done is the stage function ConfigChangeNodeDone of statemachines/*.asl.json (${ConfigChangeNodeDoneFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ConfigChangeNodeDone"))) }
