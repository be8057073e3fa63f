package deps

import (
	"context"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/awsconf"
	"github.com/straas/straas/shared/blob"
	"github.com/straas/straas/shared/blob/s3blob"
	"github.com/straas/straas/shared/cmdb"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/store"
)

// The lifecycle routes on AWS (api.Lifecycle): the storage API's objects in the stack's
// bucket, pre-signed S3 URLs for the agents, the CMDB (the copy in the table, or the
// endpoint of STRAAS_CMDB_URL with the secret's cmdb_token), and the script repo's
// component types and guest commands through the same remote repos the stages use.

// LambdaMaxUpload bounds a storage upload through the API function: Lambda takes at
// most 6 MB of request, and API Gateway hands the function a binary body base64-encoded
// (4/3 of its size), so about 4.5 MB of file; 4 MiB leaves room for the headers.
const LambdaMaxUpload = 4 << 20

// Lifecycle returns what the lifecycle routes need beyond the API's core ports. It
// sends no request: S3, the secret (for an external CMDB) and the git remotes are
// reached by the first route that uses them. Without a bucket (STRAAS_BUCKET) the
// storage routes answer 503 and everything else works.
func (l *Lambda) Lifecycle(ctx context.Context) (*api.Lifecycle, error) {
	p, err := l.ports(ctx)
	if err != nil {
		return nil, err
	}
	lc := &api.Lifecycle{Blob: noBucket{}, Files: noBucket{}, CMDB: l.newCMDB(p.store), Scripts: l.repos, MaxUpload: LambdaMaxUpload}
	if l.cfg.Bucket == "" {
		return lc, nil
	}
	cfg, err := l.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	if lc.Blob, err = s3blob.New(cfg, s3blob.Options{Bucket: l.cfg.Bucket}); err != nil {
		return nil, err
	}
	// Path-style against a custom endpoint (moto, LocalStack), as s3blob addresses it:
	// the agents must reach the same host the store wrote to.
	pathStyle := awsconf.CustomEndpoint(cfg, "S3")
	lc.Files = S3FileURLs{Presign: s3.NewPresignClient(s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = pathStyle })),
		Bucket: l.cfg.Bucket}
	return lc, nil
}

// newCMDB is the CMDB of the CMS routes: the endpoint of STRAAS_CMDB_URL (its bearer
// token is the secret's cmdb_token, read on first use), else the copy kept in the table.
func (l *Lambda) newCMDB(s store.Store) cmdb.CMDB {
	if l.cfg.CMDBURL == "" {
		return cmdb.Stored{S: s}
	}
	return &lazyCMDB{l: l}
}

// lazyCMDB connects to the external CMDB with the secret's token on first use.
type lazyCMDB struct {
	l *Lambda
	c lazy[*cmdb.HTTP]
}

var _ cmdb.CMDB = (*lazyCMDB)(nil)

func (z *lazyCMDB) get(ctx context.Context) (*cmdb.HTTP, error) {
	return z.c.get(func() (*cmdb.HTTP, error) {
		s, err := z.l.Secret(ctx)
		if err != nil {
			return nil, err
		}
		return cmdb.NewHTTP(z.l.cfg.CMDBURL, s.CMDBToken), nil
	})
}

func (z *lazyCMDB) Create(ctx context.Context, m cmdb.Model) error {
	c, err := z.get(ctx)
	if err != nil {
		return err
	}
	return c.Create(ctx, m)
}

func (z *lazyCMDB) Get(ctx context.Context, id string) (cmdb.Model, error) {
	c, err := z.get(ctx)
	if err != nil {
		return cmdb.Model{}, err
	}
	return c.Get(ctx, id)
}

func (z *lazyCMDB) Update(ctx context.Context, m cmdb.Model) error {
	c, err := z.get(ctx)
	if err != nil {
		return err
	}
	return c.Update(ctx, m)
}

func (z *lazyCMDB) Delete(ctx context.Context, id string) error {
	c, err := z.get(ctx)
	if err != nil {
		return err
	}
	return c.Delete(ctx, id)
}

// noBucket is the blob store and file URLs of a deployment without a bucket: every call
// is a 503 that says what to configure.
type noBucket struct{}

var (
	_ blob.Store   = noBucket{}
	_ api.FileURLs = noBucket{}
)

func (noBucket) err() error {
	// The operation is what the API shows the client of an Unavailable error.
	return errs.E(errs.Unavailable, "storage (this deployment has no bucket: "+EnvBucket+")", "no bucket configured")
}

func (b noBucket) Put(context.Context, string, io.Reader, int64) error { return b.err() }
func (b noBucket) Get(context.Context, string) (io.ReadCloser, error)  { return nil, b.err() }
func (b noBucket) List(context.Context, string) ([]blob.Object, error) {
	return nil, b.err()
}
func (b noBucket) Delete(context.Context, string) error      { return b.err() }
func (b noBucket) URL(string, time.Duration) (string, error) { return "", b.err() }
