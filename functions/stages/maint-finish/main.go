// Command maint-finish is the stage function MaintFinish of statemachines/*.asl.json (${MaintFinishFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("MaintFinish"))) }
