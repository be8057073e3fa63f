// Command maint-wave is the stage function MaintWave of statemachines/*.asl.json (${MaintWaveFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("MaintWave"))) }
