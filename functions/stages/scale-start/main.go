// Command scale-start is the stage function ScaleStart of statemachines/*.asl.json (${ScaleStartFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ScaleStart"))) }
