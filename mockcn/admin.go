package mockcn

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/straas/straas/agent/dummy"
	"github.com/straas/straas/shared/errs"
)

// adminRoutes serves the mock cloud's own API under AdminPrefix (admin tokens only).
func (c *Cloud) adminRoutes(mux *http.ServeMux) {
	admin := func(pattern string, h http.HandlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		mux.Handle(method+" "+AdminPrefix+path, c.adminAuth(h))
	}
	admin("GET /cns", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"cns": c.CNs()})
	})
	admin("POST /cns", func(w http.ResponseWriter, r *http.Request) {
		var spec CNSpec
		if err := decodeBody(r, &spec); err != nil {
			adminErr(w, err)
			return
		}
		cns, err := c.AddCNs(spec)
		if err != nil {
			adminErr(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, map[string]any{"cns": cns})
	})
	admin("GET /cns/{id}", func(w http.ResponseWriter, r *http.Request) {
		x, err := c.GetCN(r.PathValue("id"))
		if err != nil {
			adminErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"cn": x})
	})
	admin("DELETE /cns/{id}", func(w http.ResponseWriter, r *http.Request) {
		force, _ := strconv.ParseBool(r.URL.Query().Get("force"))
		if err := c.RemoveCN(r.PathValue("id"), force); err != nil {
			adminErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	for _, state := range []string{"down", "up"} {
		down := state == "down"
		admin("POST /cns/{id}/"+state, func(w http.ResponseWriter, r *http.Request) {
			if err := c.SetCNDown(r.PathValue("id"), down); err != nil {
				adminErr(w, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
		admin("POST /racks/{rack}/"+state, func(w http.ResponseWriter, r *http.Request) {
			n, err := c.SetRackDown(r.URL.Query().Get("az"), r.PathValue("rack"), down)
			if err != nil {
				adminErr(w, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"changed": n})
		})
	}
	admin("GET /vms", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"vms": c.VMs()})
	})
	admin("GET /vms/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, err := c.GetVM(r.PathValue("id"))
		if err != nil {
			adminErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"vm": v})
	})
	admin("POST /vms/{id}/crash", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Status string `json:"status"`
		}
		if r.ContentLength != 0 {
			if err := decodeBody(r, &body); err != nil {
				adminErr(w, err)
				return
			}
		}
		if err := c.CrashVM(r.PathValue("id"), body.Status); err != nil {
			adminErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	admin("PUT /vms/{id}/agent", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Silent *bool        `json:"silent"`
			Knobs  *dummy.Knobs `json:"knobs"`
			Clear  bool         `json:"clear_knobs"`
		}
		if err := decodeBody(r, &body); err != nil {
			adminErr(w, err)
			return
		}
		id := r.PathValue("id")
		if body.Silent != nil {
			if err := c.SetAgentSilent(id, *body.Silent); err != nil {
				adminErr(w, err)
				return
			}
		}
		if body.Knobs != nil || body.Clear {
			if err := c.SetAgentKnobs(id, body.Knobs); err != nil {
				adminErr(w, err)
				return
			}
		}
		v, err := c.GetVM(id)
		if err != nil {
			adminErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"vm": v})
	})
	admin("POST /vms/{id}/agent/crash", func(w http.ResponseWriter, r *http.Request) {
		if err := c.CrashAgent(r.PathValue("id")); err != nil {
			adminErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	admin("POST /vms/{id}/agent/restart", func(w http.ResponseWriter, r *http.Request) {
		if err := c.RestartAgent(r.PathValue("id")); err != nil {
			adminErr(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	admin("GET /settings", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Settings{BootLatency: ptr(c.BootLatency()), Knobs: ptr(c.Knobs())})
	})
	admin("PUT /settings", func(w http.ResponseWriter, r *http.Request) {
		var s Settings
		if err := decodeBody(r, &s); err != nil {
			adminErr(w, err)
			return
		}
		if s.BootLatency != nil {
			if err := c.SetBootLatency(*s.BootLatency); err != nil {
				adminErr(w, err)
				return
			}
		}
		if s.Knobs != nil {
			if err := c.SetKnobs(*s.Knobs); err != nil {
				adminErr(w, err)
				return
			}
		}
		writeJSON(w, http.StatusOK, Settings{BootLatency: ptr(c.BootLatency()), Knobs: ptr(c.Knobs())})
	})
	admin("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, c.Stats())
	})
	mux.HandleFunc(AdminPrefix+"/", func(w http.ResponseWriter, r *http.Request) {
		adminError(w, http.StatusNotFound, "no such resource")
	})
}

// Settings are the cloud-wide knobs of the admin API.
type Settings struct {
	BootLatency *Latency     `json:"boot_latency,omitempty"`
	Knobs       *dummy.Knobs `json:"knobs,omitempty"`
}

func ptr[T any](v T) *T { return &v }

func (c *Cloud) adminAuth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, err := c.id.Validate(r.Header.Get("X-Auth-Token"))
		if err != nil {
			adminError(w, http.StatusUnauthorized, "a valid X-Auth-Token is required")
			return
		}
		if !t.IsAdmin() {
			adminError(w, http.StatusForbidden, "the mock cloud's admin API needs the admin role")
			return
		}
		h(w, r)
	})
}

var adminTitles = map[int]string{400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error"}

func adminError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "title": adminTitles[code], "message": msg}})
}

func adminErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch errs.KindOf(err) {
	case errs.Invalid:
		code = http.StatusBadRequest
	case errs.NotFound:
		code = http.StatusNotFound
	case errs.Conflict:
		code = http.StatusConflict
	}
	adminError(w, code, err.Error())
}
