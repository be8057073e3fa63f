// Command child-done is the stage function ChildDone of statemachines/*.asl.json (${ChildDoneFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ChildDone"))) }
