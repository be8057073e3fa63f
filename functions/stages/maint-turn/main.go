// Command maint-turn is the stage function MaintTurn of statemachines/*.asl.json (${MaintTurnFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("MaintTurn"))) }
