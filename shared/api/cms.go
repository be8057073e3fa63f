package api

import (
	"fmt"
	"net/http"

	"github.com/straas/straas/shared/cmdb"
	"github.com/straas/straas/shared/model"
)

// The CMS routes (seed 000 §4.1.1.5; the seed spells the path "typologies", and both
// spellings are served): a topology's model in the CMDB, built from straas's records.

// CMSResponse is the answer of the CMS routes.
type CMSResponse struct {
	Model cmdb.Model `json:"cms"`
}

func (s *Server) cmsModel(r *http.Request) (*Lifecycle, cmdb.Model, error) {
	lc, err := s.lifecycle()
	if err != nil {
		return nil, cmdb.Model{}, err
	}
	if lc.CMDB == nil {
		return nil, cmdb.Model{}, fmt.Errorf("no CMDB configured")
	}
	t, _, _ := ScopedTopology(r)
	ctx := r.Context()
	comps, err := s.DB.Components(ctx, t.ID)
	if err != nil {
		return nil, cmdb.Model{}, err
	}
	nodes := map[string][]model.Node{}
	for _, c := range comps {
		if nodes[c.ID], err = s.DB.Nodes(ctx, c.ID); err != nil {
			return nil, cmdb.Model{}, err
		}
	}
	return lc, cmdb.Build(&t, comps, nodes, s.DB.Now()), nil
}

func (s *Server) createCMS(w http.ResponseWriter, r *http.Request) error {
	lc, m, err := s.cmsModel(r)
	if err != nil {
		return err
	}
	if err := lc.CMDB.Create(r.Context(), m); err != nil {
		return err
	}
	s.event(r, model.Event{Type: "cms.create", TopologyID: m.TopologyID, Message: fmt.Sprintf("%s created the CMS model of topology %s", principal(r).UserName, m.Name)})
	writeJSON(w, http.StatusCreated, CMSResponse{Model: m})
	return nil
}

func (s *Server) showCMS(w http.ResponseWriter, r *http.Request) error {
	lc, err := s.lifecycle()
	if err != nil {
		return err
	}
	if lc.CMDB == nil {
		return fmt.Errorf("no CMDB configured")
	}
	t, _, _ := ScopedTopology(r)
	m, err := lc.CMDB.Get(r.Context(), t.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, CMSResponse{Model: m})
	return nil
}

func (s *Server) syncCMS(w http.ResponseWriter, r *http.Request) error {
	lc, m, err := s.cmsModel(r)
	if err != nil {
		return err
	}
	if err := lc.CMDB.Update(r.Context(), m); err != nil {
		return err
	}
	s.event(r, model.Event{Type: "cms.sync", TopologyID: m.TopologyID, Message: fmt.Sprintf("%s re-synced the CMS model of topology %s", principal(r).UserName, m.Name)})
	writeJSON(w, http.StatusOK, CMSResponse{Model: m})
	return nil
}

func (s *Server) deleteCMS(w http.ResponseWriter, r *http.Request) error {
	lc, err := s.lifecycle()
	if err != nil {
		return err
	}
	if lc.CMDB == nil {
		return fmt.Errorf("no CMDB configured")
	}
	t, _, _ := ScopedTopology(r)
	if err := lc.CMDB.Delete(r.Context(), t.ID); err != nil {
		return err
	}
	s.event(r, model.Event{Type: "cms.delete", TopologyID: t.ID, Message: fmt.Sprintf("%s removed the CMS model of topology %s", principal(r).UserName, t.Name)})
	w.WriteHeader(http.StatusNoContent)
	return nil
}
