// Command heal-command is the stage function HealCommand of statemachines/*.asl.json (${HealCommandFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("HealCommand"))) }
