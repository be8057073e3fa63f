// Command checker runs the periodic checks on a schedule: overdue command batches,
// silent nodes, actions whose workflow never started.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build((*deps.Lambda).Checker)) }
