// Command lifecycle-spawn is the stage function LifecycleSpawn of statemachines/*.asl.json (${LifecycleSpawnFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("LifecycleSpawn"))) }
