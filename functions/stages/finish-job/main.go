// Command finish-job is the stage function FinishJob of statemachines/*.asl.json (${FinishJobFunctionArn}):
// decide the topology's status from its components' and close the action.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("FinishJob"))) }
