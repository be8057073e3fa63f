package dirblob_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/straas/straas/shared/blob"
	"github.com/straas/straas/shared/blob/blobtest"
	"github.com/straas/straas/shared/blob/dirblob"
	"github.com/straas/straas/shared/errs"
)

func newStore(t *testing.T) (*dirblob.Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := dirblob.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func TestContract(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { s, _ := newStore(t); return s })
}

func TestLayoutAndCleanup(t *testing.T) {
	s, root := newStore(t)
	ctx := context.Background()
	if err := s.Put(ctx, "files/t1/app.conf", strings.NewReader("x=1"), 3); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "objects", "files", "t1", "app.conf"))
	if err != nil || string(b) != "x=1" {
		t.Fatalf("object file: %q, %v", b, err)
	}
	if left, _ := os.ReadDir(filepath.Join(root, "tmp")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if err := s.Delete(ctx, "files/t1/app.conf"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "objects", "files")); !os.IsNotExist(err) {
		t.Fatalf("empty directories left behind: %v", err)
	}
	// A crash mid-Put leaves a temporary file; New clears it.
	if err := os.WriteFile(filepath.Join(root, "tmp", "put-123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := dirblob.New(root); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(filepath.Join(root, "tmp")); len(left) != 0 {
		t.Fatalf("New kept temporary files: %v", left)
	}
}

func TestSizeMismatchStoresNothing(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	tests := []struct {
		name string
		body string
		size int64
		kind errs.Kind
	}{
		{"shorter", "abc", 5, errs.Invalid},
		{"longer", "abcdef", 5, errs.Invalid},
	}
	for _, tc := range tests {
		if err := s.Put(ctx, "k", strings.NewReader(tc.body), tc.size); !errs.Is(err, tc.kind) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.kind)
		}
		if _, err := s.Get(ctx, "k"); !errs.Is(err, errs.NotFound) {
			t.Errorf("%s: a rejected Put stored something (%v)", tc.name, err)
		}
	}
	// Unknown size: everything the reader has.
	if err := s.Put(ctx, "k", strings.NewReader("all of it"), -1); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); !bytes.Equal(b, []byte("all of it")) {
		t.Fatalf("got %q", b)
	}
}

func TestObjectVersusDirectoryConflicts(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	if err := s.Put(ctx, "a/b", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a", strings.NewReader("x"), 1); !errs.Is(err, errs.Conflict) {
		t.Fatalf("Put of a key that is a directory here: got %v, want conflict", err)
	}
	if err := s.Put(ctx, "a/b/c", strings.NewReader("x"), 1); !errs.Is(err, errs.Conflict) {
		t.Fatalf("Put under a key that is an object: got %v, want conflict", err)
	}
	if _, err := s.Get(ctx, "a/b/c"); !errs.Is(err, errs.NotFound) {
		t.Fatalf("Get under an object: got %v, want not_found", err)
	}
	if _, err := s.List(ctx, "../"); !errs.Is(err, errs.Invalid) {
		t.Fatalf("List of an escaping prefix: got %v, want invalid", err)
	}
}
