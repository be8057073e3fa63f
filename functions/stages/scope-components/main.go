// Command scope-components is the stage function ScopeComponents of statemachines/*.asl.json (${ScopeComponentsFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ScopeComponents"))) }
