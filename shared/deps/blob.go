package deps

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/blob"
	"github.com/straas/straas/shared/blob/dirblob"
	"github.com/straas/straas/shared/cmdb"
	"github.com/straas/straas/shared/store"
)

// The storage API's blob store, the agents' signed file URLs and the CMDB of the
// embedded control plane: what api.Lifecycle needs beyond the Server's core ports.

// EnvCMDBURL, when set, points the CMS routes at a CMDB endpoint (cmdb.HTTP) instead of
// the stored copy; EnvCMDBToken is its bearer token.
const (
	EnvCMDBURL   = "STRAAS_CMDB_URL"
	EnvCMDBToken = "STRAAS_CMDB_TOKEN"
)

// lifecycleAPI builds the lifecycle routes' dependencies: objects under
// <data dir>/blobs, file URLs signed with a key kept in <data dir>/blobs.key, and the
// CMDB. The handler serves the signed URLs: mount it at GET api.BlobPath beside the API.
func (e *Embedded) lifecycleAPI() (*api.Lifecycle, http.Handler) {
	store := &lazyDirBlob{dir: filepath.Join(e.cfg.DataDir, "blobs")}
	key, err := urlKey(filepath.Join(e.cfg.DataDir, "blobs.key"))
	if err != nil {
		// File URLs then last until a restart; everything else works.
		e.log.Warn("file URL key not kept", "err", err)
	}
	files := &api.SignedBlobs{Store: store, Base: e.APIURL, Key: key}
	return &api.Lifecycle{Blob: store, CMDB: newCMDB(e.Store), Scripts: gitRepos{e.Repos}, Files: files}, files
}

// newCMDB picks the CMDB adapter: the HTTP endpoint of $STRAAS_CMDB_URL, else the copy
// kept in straas's own store.
func newCMDB(s store.Store) cmdb.CMDB {
	if u := os.Getenv(EnvCMDBURL); u != "" {
		return cmdb.NewHTTP(u, os.Getenv(EnvCMDBToken))
	}
	return cmdb.Stored{S: s}
}

// urlKey reads the key file, creating it with a random key the first time.
func urlKey(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return b, nil
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return key, err
	}
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return key, fmt.Errorf("write %s: %w", path, err)
	}
	return key, nil
}

// lazyDirBlob opens the directory store on first use, so that building the API cannot
// fail on it; a broken directory fails each call with the reason.
type lazyDirBlob struct {
	dir  string
	once sync.Once
	s    *dirblob.Store
	err  error
}

var _ blob.Store = (*lazyDirBlob)(nil)

func (l *lazyDirBlob) store() (*dirblob.Store, error) {
	l.once.Do(func() { l.s, l.err = dirblob.New(l.dir) })
	return l.s, l.err
}

func (l *lazyDirBlob) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	s, err := l.store()
	if err != nil {
		return err
	}
	return s.Put(ctx, key, r, size)
}

func (l *lazyDirBlob) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	s, err := l.store()
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, key)
}

func (l *lazyDirBlob) List(ctx context.Context, prefix string) ([]blob.Object, error) {
	s, err := l.store()
	if err != nil {
		return nil, err
	}
	return s.List(ctx, prefix)
}

func (l *lazyDirBlob) Delete(ctx context.Context, key string) error {
	s, err := l.store()
	if err != nil {
		return err
	}
	return s.Delete(ctx, key)
}

// S3FileURLs gives agents pre-signed S3 GET URLs: the AWS counterpart of
// api.SignedBlobs, for an api.Lifecycle whose Blob is an s3blob.Store of the same bucket
// and prefix.
type S3FileURLs struct {
	Presign *s3.PresignClient
	Bucket  string
	Prefix  string // the s3blob.Store's key prefix
}

var _ api.FileURLs = S3FileURLs{}

// NewS3FileURLs signs with cfg's credentials.
func NewS3FileURLs(cfg aws.Config, bucket, prefix string) S3FileURLs {
	return S3FileURLs{Presign: s3.NewPresignClient(s3.NewFromConfig(cfg)), Bucket: bucket, Prefix: prefix}
}

// URL pre-signs a GET of key valid for ttl.
func (u S3FileURLs) URL(key string, ttl time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // credentials may be fetched
	defer cancel()
	req, err := u.Presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(u.Bucket), Key: aws.String(u.Prefix + key)},
		s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("pre-sign %s: %w", key, err)
	}
	return req.URL, nil
}
