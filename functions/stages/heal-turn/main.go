// Command heal-turn is the stage function HealTurn of statemachines/*.asl.json (${HealTurnFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("HealTurn"))) }
