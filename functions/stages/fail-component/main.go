// Command fail-component is the stage function FailComponent of statemachines/*.asl.json (${FailComponentFunctionArn}):
// mark a component failed and fail its dependents.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("FailComponent"))) }
