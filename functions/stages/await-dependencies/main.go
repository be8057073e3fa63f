// Command await-dependencies is the stage function AwaitDependencies of statemachines/*.asl.json (${AwaitDependenciesFunctionArn}):
// hold pre-config until the components depended on have validated.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("AwaitDependencies"))) }
