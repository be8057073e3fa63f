package aws

import (
	"testing"

	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/dynamo"
	"github.com/straas/straas/shared/store/storetest"
	"github.com/straas/straas/test/awsendpoint"
)

// newTable creates a table for the test and deletes it afterwards.
func newTable(t *testing.T) string {
	t.Helper()
	cfg := awsendpoint.Config(t)
	name := awsendpoint.Name("straas-test")
	if err := dynamo.CreateTable(testCtx(t), cfg, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := dynamo.DeleteTable(testCtx(t), cfg, name); err != nil {
			t.Errorf("delete table: %v", err)
		}
	})
	return name
}

func TestStoreContract(t *testing.T) {
	table := newTable(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s := dynamo.New(awsendpoint.Config(t), table, dynamo.Options{})
		t.Cleanup(func() { s.Close() })
		return s
	})
}
