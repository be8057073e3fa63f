// Command reimage-node is the stage function ReimageNode of statemachines/*.asl.json (${ReimageNodeFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ReimageNode"))) }
