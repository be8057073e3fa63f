// Command config-change-plan is the stage function ConfigChangePlan of statemachines/*.asl.json (${ConfigChangePlanFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ConfigChangePlan"))) }
