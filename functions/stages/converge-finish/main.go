// Command converge-finish is the stage function ConvergeFinish of statemachines/*.asl.json (${ConvergeFinishFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ConvergeFinish"))) }
