// Command lifecycle-begin is the stage function LifecycleBegin of statemachines/*.asl.json (${LifecycleBeginFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("LifecycleBegin"))) }
