// Command config-change-failed is the stage function ConfigChangeFailed of statemachines/*.asl.json (${ConfigChangeFailedFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ConfigChangeFailed"))) }
