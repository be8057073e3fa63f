// Package blob is the port to binary object storage (the storage API, files pushed to
// nodes): a directory in embedded mode, S3 in AWS mode.
package blob

import (
	"context"
	"io"
	"time"
)

// Object describes a stored object.
type Object struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Store is the port. Keys are slash-separated paths; bucket-like scoping is in the key.
type Store interface {
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get returns the object's content or an errs.NotFound error.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns objects whose key starts with prefix, in key order.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Delete removes the object; deleting a missing key is an errs.NotFound error.
	Delete(ctx context.Context, key string) error
}
