// Package aws runs the port contract suites, and the adapters' own tests, against an AWS
// endpoint: moto started by awsendpoint, or whatever AWS_ENDPOINT_URL names.
package aws

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/straas/straas/test/awsendpoint"
)

func TestMain(m *testing.M) { os.Exit(awsendpoint.Main(m)) }

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
