// Command finish-component is the stage function FinishComponent of statemachines/*.asl.json (${FinishComponentFunctionArn}):
// mark the component's nodes and the component ACTIVE and release its dependents.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("FinishComponent"))) }
