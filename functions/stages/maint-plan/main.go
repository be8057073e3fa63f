// Command maint-plan is the stage function MaintPlan of statemachines/*.asl.json (${MaintPlanFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("MaintPlan"))) }
