// Command pre-config is the stage function PreConfig of statemachines/*.asl.json (${PreConfigFunctionArn}):
// every node's configuration from the config and script repos.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("PreConfig"))) }
