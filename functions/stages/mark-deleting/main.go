// Command mark-deleting is the stage function MarkDeleting of statemachines/*.asl.json (${MarkDeletingFunctionArn}):
// flag the topology, its components and nodes as being deleted.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("MarkDeleting"))) }
