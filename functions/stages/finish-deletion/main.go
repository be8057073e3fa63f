// Command finish-deletion is the stage function FinishDeletion of statemachines/*.asl.json (${FinishDeletionFunctionArn}):
// remove the topology's records; its actions and events stay as history.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("FinishDeletion"))) }
