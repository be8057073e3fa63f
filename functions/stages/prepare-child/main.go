// Command prepare-child is the stage function PrepareChild of statemachines/*.asl.json (${PrepareChildFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("PrepareChild"))) }
