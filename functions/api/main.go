// Command api is the REST API on Lambda: API Gateway (REST API, proxy integration) →
// aws-lambda-go-api-proxy → the same http.Handler `straas up` serves. The caller comes
// from the authorizer's decision in the request context.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/straas/straas/shared/deps"
)

func main() { lambda.Start(deps.Build((*deps.Lambda).API)) }
