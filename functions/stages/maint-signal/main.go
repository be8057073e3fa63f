// Command maint-signal is the stage function MaintSignal of statemachines/*.asl.json (${MaintSignalFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("MaintSignal"))) }
