// Command heal-judge is the stage function HealJudge of statemachines/*.asl.json (${HealJudgeFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("HealJudge"))) }
