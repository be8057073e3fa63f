// Package s3blob is the blob.Store adapter on Amazon S3: keys live in one bucket under an
// optional prefix. Against a local stack (a custom endpoint) it uses path-style
// addressing, which moto and LocalStack need.
package s3blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/straas/straas/shared/awsconf"
	"github.com/straas/straas/shared/blob"
	"github.com/straas/straas/shared/errs"
)

// s3API is the part of the S3 client the store uses.
type s3API interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	HeadObject(ctx context.Context, in *s3.HeadObjectInput, optFns ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	DeleteObject(ctx context.Context, in *s3.DeleteObjectInput, optFns ...func(*s3.Options)) (*s3.DeleteObjectOutput, error)
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
}

// Options place the store in S3.
type Options struct {
	Bucket string
	// Prefix is prepended to every key (e.g. "blobs/"); List strips it again.
	Prefix string
	// PathStyle forces path-style addressing; it is on by itself for custom endpoints.
	PathStyle bool
}

// Store is a blob.Store on S3.
type Store struct {
	api    s3API
	bucket string
	prefix string
}

var _ blob.Store = (*Store)(nil)

// memLimit is the largest body Put buffers in memory to make it seekable (the SDK signs
// the payload's hash, so it must read the body before sending it); larger bodies spool
// to a temporary file.
const memLimit = 8 << 20

// New returns a store on the endpoint of cfg. It sends no request.
func New(cfg aws.Config, o Options) (*Store, error) {
	if o.Bucket == "" {
		return nil, errs.Invalidf("bucket", "is required")
	}
	path := o.PathStyle || awsconf.CustomEndpoint(cfg, "S3")
	return &Store{api: newClient(cfg, path), bucket: o.Bucket, prefix: o.Prefix}, nil
}

func newClient(cfg aws.Config, pathStyle bool) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = pathStyle })
}

// ValidKey reports whether key is a blob key: "/"-separated segments, none empty, "." or
// "..", and no NUL (the port's rule, checked before any request).
func ValidKey(key string) error {
	if key == "" {
		return errs.Invalidf("key", "is empty")
	}
	if strings.ContainsRune(key, 0) {
		return errs.Invalidf("key", "%q contains NUL", key)
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "", ".", "..":
			return errs.Invalidf("key", "%q: empty, '.' or '..' segment", key)
		}
	}
	return nil
}

func (s *Store) full(key string) string { return s.prefix + key }

// Put stores size bytes from r under key, replacing any object there. S3 replaces an
// object whole, so readers never see a partial one.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	if size < 0 {
		return errs.Invalidf("size", "%d is negative", size)
	}
	body, cleanup, err := seekable(r, size)
	if err != nil {
		return errs.Wrap(errs.Invalid, "put "+key, err)
	}
	defer cleanup()
	_, err = s.api.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           aws.String(s.full(key)),
		Body:          body,
		ContentLength: aws.Int64(size),
	})
	if err != nil {
		return apiError("put "+key, err)
	}
	return nil
}

// seekable returns a re-readable body of exactly size bytes from r.
func seekable(r io.Reader, size int64) (io.ReadSeeker, func(), error) {
	if size <= memLimit {
		b := make([]byte, size)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, nil, fmt.Errorf("read %d bytes: %w", size, err)
		}
		return bytes.NewReader(b), func() {}, nil
	}
	f, err := os.CreateTemp("", "s3blob-*")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	if n, err := io.CopyN(f, r, size); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("read %d bytes: got %d: %w", size, n, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, nil, err
	}
	return f, cleanup, nil
}

// Get returns the object's content; the caller closes it.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	out, err := s.api.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.full(key))})
	if err != nil {
		return nil, apiError("get "+key, err)
	}
	return out.Body, nil
}

// List returns the objects whose key starts with prefix, in key order (S3 lists in
// UTF-8 byte order, which is Go's string order).
func (s *Store) List(ctx context.Context, prefix string) ([]blob.Object, error) {
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: aws.String(s.full(prefix))}
	var out []blob.Object
	p := s3.NewListObjectsV2Paginator(s.api, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, apiError("list "+prefix, err)
		}
		for _, o := range page.Contents {
			out = append(out, blob.Object{
				Key:      strings.TrimPrefix(aws.ToString(o.Key), s.prefix),
				Size:     aws.ToInt64(o.Size),
				Modified: aws.ToTime(o.LastModified),
			})
		}
	}
	return out, nil
}

// Delete removes the object. S3 deletes missing keys silently, so a HEAD first tells a
// missing key (errs.NotFound) apart.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := ValidKey(key); err != nil {
		return err
	}
	k := aws.String(s.full(key))
	if _, err := s.api.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: k}); err != nil {
		return apiError("delete "+key, err)
	}
	if _, err := s.api.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: k}); err != nil {
		return apiError("delete "+key, err)
	}
	return nil
}

// CreateBucket makes bucket on the endpoint of cfg; one that exists and is ours is fine.
func CreateBucket(ctx context.Context, cfg aws.Config, bucket string) error {
	c := newClient(cfg, awsconf.CustomEndpoint(cfg, "S3"))
	in := &s3.CreateBucketInput{Bucket: &bucket}
	if cfg.Region != "" && cfg.Region != "us-east-1" {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(cfg.Region)}
	}
	_, err := c.CreateBucket(ctx, in)
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return apiError("create bucket "+bucket, err)
	}
	return nil
}

// DeleteBucket empties and deletes bucket; a missing bucket is not an error.
func DeleteBucket(ctx context.Context, cfg aws.Config, bucket string) error {
	c := newClient(cfg, awsconf.CustomEndpoint(cfg, "S3"))
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if errs.Is(apiError("", err), errs.NotFound) {
				return nil
			}
			return apiError("delete bucket "+bucket, err)
		}
		for _, o := range page.Contents {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: o.Key}); err != nil {
				return apiError("delete bucket "+bucket, err)
			}
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket}); err != nil && !errs.Is(apiError("", err), errs.NotFound) {
		return apiError("delete bucket "+bucket, err)
	}
	return nil
}

// apiError gives an SDK error the Kind a caller acts on.
func apiError(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var nsb *types.NoSuchBucket
	if errors.As(err, &nsk) || errors.As(err, &nf) || errors.As(err, &nsb) {
		return &errs.Error{Kind: errs.NotFound, Op: op, Msg: "not found", Err: err}
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return errs.Wrap(errs.Unavailable, op, err)
	}
	switch ae.ErrorCode() {
	case "NoSuchKey", "NotFound", "NoSuchBucket":
		return &errs.Error{Kind: errs.NotFound, Op: op, Msg: "not found", Err: err}
	case "SlowDown", "Throttling", "ThrottlingException":
		return errs.Wrap(errs.RateLimited, op, err)
	case "InternalError", "ServiceUnavailable":
		return errs.Wrap(errs.Transient, op, err)
	case "AccessDenied":
		return errs.Wrap(errs.Permission, op, err)
	case "EntityTooLarge":
		return errs.Wrap(errs.TooLarge, op, err)
	case "InvalidArgument", "KeyTooLongError", "InvalidBucketName":
		return errs.Wrap(errs.Invalid, op, err)
	}
	return errs.Wrap(errs.Other, op, err)
}
