// Command scale-finish is the stage function ScaleFinish of statemachines/*.asl.json (${ScaleFinishFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ScaleFinish"))) }
