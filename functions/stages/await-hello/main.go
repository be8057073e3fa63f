// Command await-hello is the stage function AwaitHello of statemachines/*.asl.json (${AwaitHelloFunctionArn}):
// verify spawn: a batch that the nodes' hellos fill.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("AwaitHello"))) }
