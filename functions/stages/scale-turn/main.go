// Command scale-turn is the stage function ScaleTurn of statemachines/*.asl.json (${ScaleTurnFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ScaleTurn"))) }
