// Command maint-start is the stage function MaintStart of statemachines/*.asl.json (${MaintStartFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("MaintStart"))) }
