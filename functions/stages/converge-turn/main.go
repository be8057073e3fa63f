// Command converge-turn is the stage function ConvergeTurn of statemachines/*.asl.json (${ConvergeTurnFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ConvergeTurn"))) }
