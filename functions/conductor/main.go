// Command conductor consumes the status queue (SQS event source): agents' hellos,
// heartbeats, results and events. Failed messages are reported as partial batch failures.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build((*deps.Lambda).Conductor)) }
