// Command delete-nodes is the stage function DeleteNodes of statemachines/*.asl.json (${DeleteNodesFunctionArn}):
// delete every server of the topology from Nova, then the nodes' queues and records.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("DeleteNodes"))) }
