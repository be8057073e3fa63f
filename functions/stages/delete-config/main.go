// Command delete-config is the stage function DeleteConfig of statemachines/*.asl.json (${DeleteConfigFunctionArn}):
// remove the topology's config branch, tags and fault-domain server groups.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("DeleteConfig"))) }
