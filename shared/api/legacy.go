package api

import (
	"net/http"
	"sort"
	"strings"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
)

// The legacy routes old clients still call (seed 000 §4.1.1.4): GET /straas/ (the
// topology list, served by topologyPage itself), GET /straas/{topology_name}, and the
// guest command and storm jar routes (guestcmd.go).

// legacyTopology is GET /straas/{topology_name}: the caller's topology of that name.
func (s *Server) legacyTopology(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if t, _, ok := ScopedTopology(r); ok { // name@az, resolved and checked by the middleware
		v, err := s.topologyView(ctx, &t)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, TopologyResponse{Topology: v})
		return nil
	}
	p := principal(r)
	name := r.PathValue("topology_name")
	az := r.URL.Query().Get("availability_zone")
	var found []model.Topology
	zones, err := s.Catalog.Zones(ctx)
	if err != nil {
		return err
	}
	if az != "" {
		zones = []string{az}
	}
	// A topology's name@az is claimed: a lookup per zone finds it without a scan.
	for _, z := range zones {
		rec, err := s.DB.S.Get(ctx, db.KindTopologyName, model.Branch(name, z))
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return err
		}
		var claim struct {
			TopologyID string `json:"topology_id"`
		}
		if store.Decode(rec, &claim) != nil {
			continue
		}
		t, _, err := s.DB.Topology(ctx, claim.TopologyID)
		if err != nil || !p.CanSee(t.Tenant, t.Owner) {
			continue
		}
		found = append(found, t)
	}
	switch len(found) {
	case 0:
		return errs.NotFoundf("topology %s not found", name)
	case 1:
	default:
		var in []string
		for _, t := range found {
			in = append(in, t.AvailabilityZone)
		}
		sort.Strings(in)
		return errs.Conflictf("topology %s exists in %s: add ?availability_zone=", name, strings.Join(in, ", "))
	}
	v, err := s.topologyView(ctx, &found[0])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, TopologyResponse{Topology: v})
	return nil
}
