// Package dirblob is the embedded adapter of the blob port: one file per object under
// <root>/objects/<key>, written to <root>/tmp first and renamed into place, so a reader
// sees the old object or the new one, never a part. Keys are S3-like slash-separated
// paths; because they are also file paths here, a key cannot be both an object and the
// "directory" of other objects (errs.Conflict), which S3 would allow.
package dirblob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/straas/straas/shared/blob"
	"github.com/straas/straas/shared/errs"
)

var _ blob.Store = (*Store)(nil)

// MaxKeyLen is S3's limit on a key, in bytes.
const MaxKeyLen = 1024

// Store keeps objects in a directory. It is safe for concurrent use.
type Store struct {
	objects string
	tmp     string
}

// New returns a store rooted at root, creating it if needed and clearing temporary files
// left by an interrupted Put.
func New(root string) (*Store, error) {
	s := &Store{objects: filepath.Join(root, "objects"), tmp: filepath.Join(root, "tmp")}
	for _, d := range []string{s.objects, s.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("blob store %s: %w", root, err)
		}
	}
	left, err := os.ReadDir(s.tmp)
	if err != nil {
		return nil, fmt.Errorf("blob store %s: %w", root, err)
	}
	for _, e := range left {
		_ = os.Remove(filepath.Join(s.tmp, e.Name()))
	}
	return s, nil
}

// CheckKey reports whether key is a valid object key: one or more "/"-separated
// segments, none empty, "." or "..", no NUL, at most MaxKeyLen bytes.
func CheckKey(key string) error {
	if key == "" {
		return errs.Invalidf("key", "empty key")
	}
	if len(key) > MaxKeyLen {
		return errs.Invalidf("key", "key longer than %d bytes", MaxKeyLen)
	}
	if strings.IndexByte(key, 0) >= 0 {
		return errs.Invalidf("key", "key %q holds a NUL byte", key)
	}
	for _, seg := range strings.Split(key, "/") {
		switch {
		case seg == "":
			return errs.Invalidf("key", "key %q has an empty segment (leading, trailing or double slash)", key)
		case seg == "." || seg == "..":
			return errs.Invalidf("key", "key %q has a %q segment", key, seg)
		case len(seg) > 255:
			return errs.Invalidf("key", "key %q has a segment longer than 255 bytes", key)
		}
	}
	return nil
}

func (s *Store) path(key string) string { return filepath.Join(s.objects, filepath.FromSlash(key)) }

// Put stores size bytes read from r under key (size < 0: everything r has). A body
// shorter or longer than size is errs.Invalid and stores nothing.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	op := "blob put " + key
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return errs.Wrap(errs.Unavailable, op, err)
	}
	tmp := f.Name()
	defer func() {
		if tmp != "" {
			_ = os.Remove(tmp)
		}
	}()
	err = copyBody(f, r, size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if errs.KindOf(err) != errs.Other {
			return fmt.Errorf("%s: %w", op, err)
		}
		return errs.Wrap(errs.Unavailable, op, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dst := s.path(key)
	// A concurrent Delete may remove the (empty) parent between MkdirAll and Rename:
	// try again a few times.
	for attempt := 0; ; attempt++ {
		if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
			if err = os.Rename(tmp, dst); err == nil {
				break
			}
		}
		if !errors.Is(err, fs.ErrNotExist) || attempt == 3 {
			return pathError(op, key, err)
		}
	}
	tmp = ""
	syncDir(filepath.Dir(dst))
	return nil
}

func copyBody(w io.Writer, r io.Reader, size int64) error {
	if size < 0 {
		_, err := io.Copy(w, r)
		return err
	}
	n, err := io.CopyN(w, r, size)
	if errors.Is(err, io.EOF) {
		return errs.Invalidf("size", "body has %d bytes, not the %d announced", n, size)
	}
	if err != nil {
		return err
	}
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m > 0 {
		return errs.Invalidf("size", "body is longer than the %d bytes announced", size)
	}
	return nil
}

// pathError classifies a failure to place key: a key that is a "directory" of others,
// or has an object as its "directory", conflicts.
func pathError(op, key string, err error) error {
	if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) || errors.Is(err, fs.ErrExist) ||
		errors.Is(err, syscall.ENOTEMPTY) {
		return &errs.Error{Kind: errs.Conflict, Op: op,
			Msg: "a key cannot be both an object and a prefix directory of other objects here", Err: err}
	}
	return errs.Wrap(errs.Unavailable, op, err)
}

// syncDir makes a rename in dir durable; failure only weakens durability, so it is ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// Get returns the object's content; the caller closes it.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, errs.NotFoundf("blob %s not found", key)
		}
		return nil, errs.Wrap(errs.Unavailable, "blob get "+key, err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, errs.NotFoundf("blob %s not found", key)
	}
	return f, nil
}

// List returns the objects whose key starts with prefix, in key order.
func (s *Store) List(ctx context.Context, prefix string) ([]blob.Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Walk only the directory the prefix pins down: "a/b/c" -> objects/a/b.
	dir := ""
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		dir = prefix[:i]
		if err := CheckKey(dir); err != nil {
			return nil, errs.Invalidf("prefix", "prefix %q is not under a valid key path", prefix)
		}
	}
	start := s.objects
	if dir != "" {
		start = s.path(dir)
	}
	var out []blob.Object
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil // the prefix names no directory, or one removed meanwhile
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(s.objects, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted meanwhile
			}
			return err
		}
		out = append(out, blob.Object{Key: key, Size: fi.Size(), Modified: fi.ModTime()})
		return ctx.Err()
	})
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, "blob list "+prefix, err)
	}
	// A directory walk visits "a/x" before "a-b"; keys sort byte-wise.
	slices.SortFunc(out, func(a, b blob.Object) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete removes the object, and the directories it leaves empty.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	p := s.path(key)
	fi, err := os.Lstat(p)
	if err != nil || fi.IsDir() {
		if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return errs.NotFoundf("blob %s not found", key)
		}
		return errs.Wrap(errs.Unavailable, "blob delete "+key, err)
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errs.NotFoundf("blob %s not found", key)
		}
		return errs.Wrap(errs.Unavailable, "blob delete "+key, err)
	}
	for d := filepath.Dir(p); d != s.objects && strings.HasPrefix(d, s.objects); d = filepath.Dir(d) {
		if os.Remove(d) != nil { // not empty (or already gone): stop
			break
		}
	}
	return nil
}
