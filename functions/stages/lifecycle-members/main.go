// Command lifecycle-members is the stage function LifecycleMembers of statemachines/*.asl.json (${LifecycleMembersFunctionArn}).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build(deps.StageNamed("LifecycleMembers"))) }
