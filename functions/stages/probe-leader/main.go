// Command probe-leader is the stage function ProbeLeader of statemachines/*.asl.json (${ProbeLeaderFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("ProbeLeader"))) }
