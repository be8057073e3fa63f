package deps

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

func TestS3FileURLs(t *testing.T) {
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")}
	u, err := NewS3FileURLs(cfg, "straas-blobs", "blobs/").URL("tenants/p/swift/az1/jars/wc.jar", 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	if !strings.Contains(p.Host+p.Path, "straas-blobs") || !strings.HasSuffix(p.Path, "/blobs/tenants/p/swift/az1/jars/wc.jar") {
		t.Errorf("URL %s does not address the bucket's prefixed key", u)
	}
	if q.Get("X-Amz-Expires") != "900" || q.Get("X-Amz-Signature") == "" {
		t.Errorf("URL %s: want a 900 s SigV4 signature", u)
	}
}

func TestURLKeyIsKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k", "blobs.key")
	a, err := urlKey(path)
	if err != nil || len(a) != 32 {
		t.Fatalf("first key: %d bytes, %v", len(a), err)
	}
	b, err := urlKey(path)
	if err != nil || !bytes.Equal(a, b) {
		t.Errorf("the key changed across restarts")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v %v, want 0600", fi.Mode(), err)
	}
}

func TestLazyDirBlob(t *testing.T) {
	ctx := context.Background()
	l := &lazyDirBlob{dir: filepath.Join(t.TempDir(), "blobs")}
	if err := l.Put(ctx, "a/b", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	objs, err := l.List(ctx, "a/")
	if err != nil || len(objs) != 1 || objs[0].Key != "a/b" {
		t.Errorf("list: %+v %v", objs, err)
	}
	blocked := &lazyDirBlob{dir: filepath.Join("/dev/null", "x")} // cannot be created
	if err := blocked.Put(ctx, "a", strings.NewReader("x"), 1); err == nil {
		t.Error("a store that cannot open accepted a put")
	}
}
