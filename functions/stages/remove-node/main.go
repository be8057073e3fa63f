// Command remove-node is the stage function RemoveNode of statemachines/*.asl.json (${RemoveNodeFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("RemoveNode"))) }
