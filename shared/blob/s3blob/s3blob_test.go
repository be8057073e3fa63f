package s3blob

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/straas/straas/shared/blob/blobtest"
	"github.com/straas/straas/shared/errs"
)

func TestValidKey(t *testing.T) {
	for _, k := range blobtest.BadKeys {
		if err := ValidKey(k); !errs.Is(err, errs.Invalid) {
			t.Errorf("%q: got %v, want invalid", k, err)
		}
	}
	for _, k := range []string{"a", "a/b/c.json", "with space/x", "a..b/.hidden", "utf8/ключ"} {
		if err := ValidKey(k); err != nil {
			t.Errorf("%q: %v", k, err)
		}
	}
}

func TestSeekable(t *testing.T) {
	for _, size := range []int64{0, 10, memLimit, memLimit + 1} {
		data := bytes.Repeat([]byte("x"), int(size))
		r, cleanup, err := seekable(bytes.NewReader(data), size)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		for pass := 0; pass < 2; pass++ { // the SDK reads once to sign, once to send
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("size %d pass %d: got %d bytes, %v", size, pass, len(got), err)
			}
			if _, err := r.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
		}
		cleanup()
	}
	if _, _, err := seekable(strings.NewReader("short"), 10); err == nil {
		t.Fatal("a reader shorter than size: got nil error")
	}
}
