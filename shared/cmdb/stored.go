package cmdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/store"
)

// KindModel is the record kind of stored models.
const KindModel = "cms_model"

// Stored keeps models in straas's own store: the embedded CMDB.
type Stored struct{ S store.Store }

var _ CMDB = Stored{}

func (s Stored) put(ctx context.Context, m Model, cond store.Cond, op string) error {
	if m.TopologyID == "" {
		return errs.Invalidf("topology_id", "a model needs a topology id")
	}
	r, err := store.Encode(KindModel, m.TopologyID, m)
	if err != nil {
		return err
	}
	err = s.S.Write(ctx, store.Put(r, cond))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrCondition) && cond == store.Absent:
		return errs.Conflictf("the CMDB already has a model of topology %s", m.TopologyID)
	case errors.Is(err, store.ErrCondition):
		return errs.NotFoundf("the CMDB has no model of topology %s", m.TopologyID)
	}
	return fmt.Errorf("%s model of topology %s: %w", op, m.TopologyID, err)
}

// Create stores a new model.
func (s Stored) Create(ctx context.Context, m Model) error {
	return s.put(ctx, m, store.Absent, "create")
}

// Update replaces a model.
func (s Stored) Update(ctx context.Context, m Model) error {
	return s.put(ctx, m, store.Present, "update")
}

// Get reads a model.
func (s Stored) Get(ctx context.Context, topologyID string) (Model, error) {
	m, _, err := store.Load[Model](ctx, s.S, KindModel, topologyID)
	if errs.Is(err, errs.NotFound) {
		return m, errs.NotFoundf("the CMDB has no model of topology %s", topologyID)
	}
	return m, err
}

// Delete removes a model.
func (s Stored) Delete(ctx context.Context, topologyID string) error {
	err := s.S.Write(ctx, store.Del(KindModel, topologyID, store.Present, 0))
	if errors.Is(err, store.ErrCondition) || errs.Is(err, errs.NotFound) {
		return errs.NotFoundf("the CMDB has no model of topology %s", topologyID)
	}
	return err
}
