// Command heal-finish is the stage function HealFinish of statemachines/*.asl.json (${HealFinishFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("HealFinish"))) }
