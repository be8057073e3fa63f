package bolt_test

import (
	"path/filepath"
	"testing"

	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/bolt"
	"github.com/straas/straas/shared/store/storetest"
)

func openTemp(t testing.TB, opts ...bolt.Option) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(filepath.Join(t.TempDir(), "store.db"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}
