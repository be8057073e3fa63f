// Command deletion-failed is the stage function DeletionFailed of statemachines/*.asl.json (${DeletionFailedFunctionArn}):
// record why deletion failed; the topology stays, FAILED, for a retry.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("DeletionFailed"))) }
