// Command cname is the stage function CName of statemachines/*.asl.json (${CNameFunctionArn}):
// stable names for nodes when enable_cname is set.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("CName"))) }
