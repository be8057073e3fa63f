// Command drain-node is the stage function DrainNode of statemachines/*.asl.json (${DrainNodeFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("DrainNode"))) }
