package asltest

import (
	"testing"

	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/storetest"
)

func TestMemStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return NewMemStore() })
}
