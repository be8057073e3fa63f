// Command converge-start is the stage function ConvergeStart of statemachines/*.asl.json (${ConvergeStartFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ConvergeStart"))) }
