package deps

import (
	"encoding/json"
	"net/http"

	"github.com/straas/straas/shared/auth"
)

// adminOnly guards debugging endpoints (pprof: goroutine dumps and profiles can show
// request data) with an admin token; /metrics stays open for scrapers, as it holds
// counts only.
func adminOnly(v auth.Validator, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := v.Validate(r.Context(), r.Header.Get("X-Auth-Token"))
		if err != nil || !p.Admin {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": 403, "title": "Forbidden",
				"message": "the debug endpoints need an admin token (X-Auth-Token)"}})
			return
		}
		h.ServeHTTP(w, r)
	})
}
