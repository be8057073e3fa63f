// Command fan-out is the stage function FanOut of statemachines/*.asl.json (${FanOutFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("FanOut"))) }
