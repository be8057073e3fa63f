// Package blobtest is the conformance suite of the blob port: every adapter (dirblob,
// s3) runs Run against itself. Every subtest works under a random key prefix of its own,
// so a factory may hand out one shared bucket.
package blobtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straas/straas/shared/blob"
	"github.com/straas/straas/shared/errs"
)

// BadKeys are keys every adapter rejects with errs.Invalid on Put, Get and Delete: a key
// is one or more "/"-separated segments, none of them empty, "." or "..", and no NUL.
var BadKeys = []string{"", ".", "..", "../x", "a/../b", "a/..", "/abs", "a//b", "./a", "a/./b", "a/", "a\x00b"}

// Run runs the whole contract against stores made by newBlob, called once per subtest;
// it should register any cleanup with t.Cleanup.
func Run(t *testing.T, newBlob func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store, prefix string)
	}{
		{"PutGet", testPutGet},
		{"Missing", testMissing},
		{"Overwrite", testOverwrite},
		{"List", testList},
		{"Delete", testDelete},
		{"BadKeys", testBadKeys},
		{"Empty", testEmpty},
		{"Large", testLarge},
		{"ConcurrentOverwrite", testConcurrentOverwrite},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b [5]byte
			if _, err := rand.Read(b[:]); err != nil {
				t.Fatal(err)
			}
			tc.fn(t, newBlob(t), "bt-"+hex.EncodeToString(b[:])+"/")
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func put(t *testing.T, s blob.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(ctxFor(t), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put %q: %v", key, err)
	}
}

func get(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	rc, err := s.Get(ctxFor(t), key)
	if err != nil {
		t.Fatalf("Get %q: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("Get %q: read: %v", key, err)
	}
	return b
}

func list(t *testing.T, s blob.Store, prefix string) []blob.Object {
	t.Helper()
	objs, err := s.List(ctxFor(t), prefix)
	if err != nil {
		t.Fatalf("List %q: %v", prefix, err)
	}
	return objs
}

func keys(objs []blob.Object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Key
	}
	return out
}

func wantKind(t *testing.T, what string, err error, k errs.Kind) {
	t.Helper()
	if !errs.Is(err, k) {
		t.Fatalf("%s: got %v (kind %v), want kind %v", what, err, errs.KindOf(err), k)
	}
}

func testPutGet(t *testing.T, s blob.Store, p string) {
	tests := []struct {
		key  string
		data string
	}{
		{p + "top.txt", "top"},
		{p + "a/b/c/deep.json", `{"deep":true}`},
		{p + "with space/and-dash_under.score", "odd names"},
		{p + "utf8/naïve-ключ", "unicode"},
	}
	for _, tc := range tests {
		put(t, s, tc.key, []byte(tc.data))
	}
	for _, tc := range tests {
		if got := get(t, s, tc.key); string(got) != tc.data {
			t.Errorf("Get %q: got %q, want %q", tc.key, got, tc.data)
		}
	}
}

func testMissing(t *testing.T, s blob.Store, p string) {
	ctx := ctxFor(t)
	_, err := s.Get(ctx, p+"nope")
	wantKind(t, "Get of a missing key", err, errs.NotFound)
	wantKind(t, "Delete of a missing key", s.Delete(ctx, p+"nope"), errs.NotFound)
	put(t, s, p+"dir/file", []byte("x"))
	_, err = s.Get(ctx, p+"dir")
	wantKind(t, "Get of a key that is only a prefix", err, errs.NotFound)
	wantKind(t, "Delete of a key that is only a prefix", s.Delete(ctx, p+"dir"), errs.NotFound)
	if objs := list(t, s, p+"nothing-here"); len(objs) != 0 {
		t.Fatalf("List of an unused prefix: got %q", keys(objs))
	}
}

func testOverwrite(t *testing.T, s blob.Store, p string) {
	k := p + "over/write"
	put(t, s, k, []byte("first, and longer"))
	put(t, s, k, []byte("second"))
	if got := get(t, s, k); string(got) != "second" {
		t.Fatalf("got %q after overwrite", got)
	}
	objs := list(t, s, p)
	if len(objs) != 1 || objs[0].Key != k || objs[0].Size != int64(len("second")) {
		t.Fatalf("List: got %+v, want one object of 6 bytes", objs)
	}
}

func testList(t *testing.T, s blob.Store, p string) {
	start := time.Now()
	// Insertion order differs from key order; "a-b" < "a/x" byte-wise although a
	// directory walk would visit a/ first.
	for _, k := range []string{"c", "b/d", "a/x", "ba", "a-b", "b/c", "a/y/z", "b0"} {
		put(t, s, p+k, []byte("content of "+k))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a-b", "a/x", "a/y/z", "b/c", "b/d", "b0", "ba", "c"}},
		{"a", []string{"a-b", "a/x", "a/y/z"}},
		{"a/", []string{"a/x", "a/y/z"}},
		{"a/y", []string{"a/y/z"}},
		{"b", []string{"b/c", "b/d", "b0", "ba"}},
		{"b/", []string{"b/c", "b/d"}},
		{"b/c", []string{"b/c"}},
		{"c", []string{"c"}},
		{"cc", nil},
		{"d", nil},
	}
	for _, tc := range tests {
		objs := list(t, s, p+tc.prefix)
		var got []string
		for _, o := range objs {
			got = append(got, strings.TrimPrefix(o.Key, p))
			name := strings.TrimPrefix(o.Key, p)
			if o.Size != int64(len("content of "+name)) {
				t.Errorf("List %q: %s has size %d, want %d", tc.prefix, o.Key, o.Size, len("content of "+name))
			}
			if o.Modified.Before(start.Add(-time.Minute)) || o.Modified.After(time.Now().Add(time.Minute)) {
				t.Errorf("List %q: %s modified %v, want about %v", tc.prefix, o.Key, o.Modified, start)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("List %q: got %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

func testDelete(t *testing.T, s blob.Store, p string) {
	ctx := ctxFor(t)
	put(t, s, p+"d/one", []byte("1"))
	put(t, s, p+"d/two", []byte("2"))
	if err := s.Delete(ctx, p+"d/one"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err := s.Get(ctx, p+"d/one")
	wantKind(t, "Get after Delete", err, errs.NotFound)
	wantKind(t, "second Delete", s.Delete(ctx, p+"d/one"), errs.NotFound)
	if got := keys(list(t, s, p)); !slices.Equal(got, []string{p + "d/two"}) {
		t.Fatalf("List after Delete: got %q", got)
	}
	if err := s.Delete(ctx, p+"d/two"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if got := list(t, s, p); len(got) != 0 {
		t.Fatalf("List after deleting everything: got %q", keys(got))
	}
	// The key can be used again, and as a prefix of others.
	put(t, s, p+"d/one/now-a-dir", []byte("x"))
	if got := get(t, s, p+"d/one/now-a-dir"); string(got) != "x" {
		t.Fatalf("got %q", got)
	}
}

func testBadKeys(t *testing.T, s blob.Store, p string) {
	ctx := ctxFor(t)
	for _, k := range BadKeys {
		for _, key := range []string{k, p + k} {
			if key == p {
				continue // p itself ends in "/", covered by "a/"
			}
			wantKind(t, fmt.Sprintf("Put %q", key), s.Put(ctx, key, strings.NewReader("x"), 1), errs.Invalid)
			_, err := s.Get(ctx, key)
			wantKind(t, fmt.Sprintf("Get %q", key), err, errs.Invalid)
			wantKind(t, fmt.Sprintf("Delete %q", key), s.Delete(ctx, key), errs.Invalid)
		}
	}
	if got := list(t, s, p); len(got) != 0 {
		t.Fatalf("bad keys left objects: %q", keys(got))
	}
}

func testEmpty(t *testing.T, s blob.Store, p string) {
	put(t, s, p+"empty", nil)
	if got := get(t, s, p+"empty"); len(got) != 0 {
		t.Fatalf("got %q, want nothing", got)
	}
	if objs := list(t, s, p); len(objs) != 1 || objs[0].Size != 0 {
		t.Fatalf("List: got %+v", objs)
	}
}

func testLarge(t *testing.T, s blob.Store, p string) {
	data := make([]byte, 3<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	put(t, s, p+"large.bin", data)
	if got := get(t, s, p+"large.bin"); !bytes.Equal(got, data) {
		t.Fatalf("got %d bytes back, want %d intact", len(got), len(data))
	}
}

func testConcurrentOverwrite(t *testing.T, s blob.Store, p string) {
	ctx := ctxFor(t)
	k := p + "contended"
	const size, writers, rounds = 256 << 10, 4, 5
	put(t, s, k, bytes.Repeat([]byte{'0'}, size))
	var wg sync.WaitGroup
	errc := make(chan error, 2*writers)
	for w := 0; w < writers; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			data := bytes.Repeat([]byte{byte('1' + w)}, size)
			for i := 0; i < rounds; i++ {
				if err := s.Put(ctx, k, bytes.NewReader(data), size); err != nil {
					errc <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				rc, err := s.Get(ctx, k)
				if err != nil {
					errc <- err
					return
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					errc <- err
					return
				}
				// A reader sees one whole version, never a torn or partial one.
				if len(b) != size || bytes.Count(b, b[:1]) != size {
					errc <- fmt.Errorf("read a torn object: %d bytes", len(b))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}
