// Command converge-step is the stage function ConvergeStep of statemachines/*.asl.json (${ConvergeStepFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ConvergeStep"))) }
