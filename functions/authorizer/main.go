// Command authorizer is the API Gateway Lambda authorizer (REQUEST type): it validates
// the request's Keystone token and hands the principal to the API in the context.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build((*deps.Lambda).Authorizer)) }
