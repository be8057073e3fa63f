// Command plan-restarts is the stage function PlanRestarts of statemachines/*.asl.json (${PlanRestartsFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("PlanRestarts"))) }
