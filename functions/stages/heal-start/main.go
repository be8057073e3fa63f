// Command heal-start is the stage function HealStart of statemachines/*.asl.json (${HealStartFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("HealStart"))) }
