package aws

import (
	"testing"

	"github.com/straas/straas/shared/blob"
	"github.com/straas/straas/shared/blob/blobtest"
	"github.com/straas/straas/shared/blob/s3blob"
	"github.com/straas/straas/test/awsendpoint"
)

// newBucket creates a bucket for the test and deletes it afterwards.
func newBucket(t *testing.T) string {
	t.Helper()
	cfg := awsendpoint.Config(t)
	name := awsendpoint.Name("straas-test")
	if err := s3blob.CreateBucket(testCtx(t), cfg, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s3blob.DeleteBucket(testCtx(t), cfg, name); err != nil {
			t.Errorf("delete bucket: %v", err)
		}
	})
	return name
}

func TestBlobContract(t *testing.T) {
	bucket := newBucket(t)
	for _, prefix := range []string{"", "blobs/"} {
		t.Run("prefix="+prefix, func(t *testing.T) {
			blobtest.Run(t, func(t *testing.T) blob.Store {
				s, err := s3blob.New(awsendpoint.Config(t), s3blob.Options{Bucket: bucket, Prefix: prefix})
				if err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}
