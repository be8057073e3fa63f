package api

import (
	"net/http"
	"sort"

	"github.com/straas/straas/shared/errs"
)

func (s *Server) listComponentTypes(w http.ResponseWriter, r *http.Request) error {
	types, err := s.Catalog.ComponentTypes(r.Context())
	if err != nil {
		return err
	}
	sort.Slice(types, func(i, j int) bool { return types[i].Type < types[j].Type })
	writeJSON(w, http.StatusOK, map[string]any{"components": types})
	return nil
}

func (s *Server) novaFlavors(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	typ := r.PathValue("type")
	types, err := s.Catalog.ComponentTypes(ctx)
	if err != nil {
		return err
	}
	def := ""
	found := false
	for _, t := range types {
		if t.Type == typ {
			found, def = true, t.DefaultFlavor
		}
	}
	if !found {
		return errs.NotFoundf("unknown component type %q", typ)
	}
	az := r.URL.Query().Get("availability_zone")
	zones, err := s.Catalog.Zones(ctx)
	if err != nil {
		return err
	}
	if az == "" && len(zones) > 0 {
		az = zones[0]
	}
	known := false
	for _, z := range zones {
		known = known || z == az
	}
	if !known {
		return errs.Invalidf("availability_zone", "unknown availability zone %q", az)
	}
	fs, err := s.Catalog.Flavors(ctx, az)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"type": typ, "availability_zone": az, "default_flavor": def, "flavors": fs})
	return nil
}
