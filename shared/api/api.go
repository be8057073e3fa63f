// Package api is straas's REST API as one http.Handler: routes, auth middleware, the
// error schema (DESIGN §9). `straas up` serves it directly; on AWS, API Gateway reaches
// the same handler through aws-lambda-go-api-proxy.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/straas/straas/shared/auth"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/cloud"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/jobs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/workflow"
)

// Prefix is the path prefix of the versioned API.
const Prefix = "/straas/v1.0"

// Catalog is what the API reads about the world.
type Catalog interface {
	ComponentTypes(ctx context.Context) ([]model.ComponentType, error)
	Flavors(ctx context.Context, az string) ([]cloud.Flavor, error)
	Zones(ctx context.Context) ([]string, error)
}

// Server holds the API's dependencies.
type Server struct {
	DB       *db.DB
	Launcher *jobs.Launcher
	Workflow workflow.Engine
	Batches  *batch.Service
	Auth     auth.Validator
	Catalog  Catalog
	Log      *slog.Logger
	MaxBody  int64 // bytes; default 1 MiB
}

// Route is one entry of the route table. Tests iterate the table, so that a new route
// cannot be forgotten by the auth matrix or the OpenAPI check.
type Route struct {
	Method  string
	Pattern string // net/http pattern path, e.g. /straas/v1.0/topologies/{id}
	Public  bool   // no token needed
	Handler func(*Server, http.ResponseWriter, *http.Request) error
}

// Routes is the route table: every feature's routes.
func Routes() []Route {
	var out []Route
	for _, set := range [][]Route{topologyRoutes()} {
		out = append(out, set...)
	}
	return out
}

// topologyRoutes are the routes of topologies, the component catalog and actions.
func topologyRoutes() []Route {
	return []Route{
		{"POST", Prefix + "/topologies", false, (*Server).createTopology},
		{"GET", Prefix + "/topologies", false, (*Server).listTopologies},
		{"GET", Prefix + "/topologies/{id}", false, (*Server).showTopology},
		{"DELETE", Prefix + "/topologies/{id}", false, (*Server).deleteTopology},
		{"GET", Prefix + "/components", false, (*Server).listComponentTypes},
		{"GET", Prefix + "/components/{type}/nova_flavors", false, (*Server).novaFlavors},
		{"GET", Prefix + "/actions", false, (*Server).listActions},
		{"GET", Prefix + "/actions/{id}", false, (*Server).showAction},
	}
}

// Handler returns the API with its middleware.
func (s *Server) Handler() http.Handler {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.MaxBody == 0 {
		s.MaxBody = 1 << 20
	}
	mux := http.NewServeMux()
	for _, rt := range Routes() {
		rt := rt
		mux.HandleFunc(rt.Method+" "+rt.Pattern, func(w http.ResponseWriter, r *http.Request) {
			if !rt.Public {
				p, err := s.authenticate(r)
				if err != nil {
					writeError(w, r, err)
					return
				}
				r = r.WithContext(auth.With(r.Context(), p))
			}
			if err := rt.Handler(s, w, r); err != nil {
				writeError(w, r, err)
			}
		})
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// Anything else under the API is a JSON 404/405, not net/http's text.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, errs.NotFoundf("no route %s %s", r.Method, r.URL.Path))
	})
	return s.recoverer(s.logRequests(legacyToken(mux)))
}

// legacyToken renames the legacy "token" header to X-Auth-Token (seed 000 §4.1.2 step 8).
func legacyToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Auth-Token") == "" {
			if t := r.Header.Get("token"); t != "" {
				r.Header.Set("X-Auth-Token", t)
			}
		}
		r.Header.Del("token")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) authenticate(r *http.Request) (auth.Principal, error) {
	tok := r.Header.Get("X-Auth-Token")
	if tok == "" {
		return auth.Principal{}, errs.E(errs.Unauthenticated, "", "missing X-Auth-Token header")
	}
	return s.Auth.Validate(r.Context(), tok)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: 200}
		next.ServeHTTP(sw, r)
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", sw.status, "ms", time.Since(start).Milliseconds(), "remote", r.RemoteAddr}
		if p, ok := auth.From(r.Context()); ok {
			attrs = append(attrs, "user", p.UserName, "project", p.ProjectName)
		}
		s.Log.Info("request", attrs...)
	})
}

// recoverer turns a panic into a 500 with the error schema; the stack goes to the log.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.Log.Error("panic in handler", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeError(w, r, errors.New("internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// Error is the error schema of every non-2xx response.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody is the inside of Error.
type ErrorBody struct {
	Code    int    `json:"code"`
	Title   string `json:"title"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Status maps an error's kind to its HTTP status, in one place.
func Status(err error) int {
	switch errs.KindOf(err) {
	case errs.Invalid:
		return http.StatusBadRequest
	case errs.Unauthenticated:
		return http.StatusUnauthorized
	case errs.Permission:
		return http.StatusForbidden
	case errs.NotFound:
		return http.StatusNotFound
	case errs.Conflict:
		return http.StatusConflict
	case errs.Precondition:
		return http.StatusPreconditionFailed
	case errs.TooLarge:
		return http.StatusRequestEntityTooLarge
	case errs.RateLimited:
		return http.StatusTooManyRequests
	case errs.Transient, errs.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := Status(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		slog.Error("internal error", "path", r.URL.Path, "err", err)
		msg = "internal error; see the server log"
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Keystone uri="/identity/v3"`)
	}
	writeJSON(w, code, Error{Error: ErrorBody{Code: code, Title: http.StatusText(code), Message: msg, Field: errs.FieldOf(err)}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// readBody reads a bounded request body.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return nil, errs.Invalidf("Content-Type", "want application/json, got %q", ct)
	}
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, s.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &errs.Error{Kind: errs.TooLarge, Field: "body", Msg: fmt.Sprintf("larger than %d bytes", s.MaxBody)}
		}
		return nil, errs.Invalidf("body", "read: %v", err)
	}
	if len(b) == 0 {
		return nil, errs.Invalidf("body", "empty; want a JSON document")
	}
	return b, nil
}

func principal(r *http.Request) auth.Principal {
	p, _ := auth.From(r.Context())
	return p
}
