// Command heal-reboot is the stage function HealReboot of statemachines/*.asl.json (${HealRebootFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("HealReboot"))) }
