// Command spawn is the stage function Spawn of statemachines/*.asl.json (${SpawnFunctionArn}):
// node records and one Nova server per node.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("Spawn"))) }
