// Package api is straas's REST API as one http.Handler: routes, auth middleware, the
// error schema (DESIGN §9). `straas up` serves it directly; on AWS, API Gateway reaches
// the same handler through aws-lambda-go-api-proxy.
//
// Every route is an entry of the route table (Routes) with its metadata: who may call
// it, which path parameter addresses which resource, its request schema and response
// type. The middleware applies auth, tenancy, rate limits, preconditions, idempotency,
// request validation and auditing from that metadata, the OpenAPI document is generated
// from it, and the auth matrix test iterates it; so a new route gets all of them by
// being declared (docs/api-contract.md).
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
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

	// Lifecycle serves the lifecycle operations (lifecycle.go); nil answers them 503.
	Lifecycle *Lifecycle

	// RateLimit limits requests per tenant; the zero value is no limit.
	RateLimit RateLimit
	// IdempotencyTTL is how long an Idempotency-Key's first result is kept (default 24 h).
	IdempotencyTTL time.Duration

	limiter *limiter
}

// Route is one entry of the route table. Tests iterate the table, so that a new route
// cannot be forgotten by the auth matrix or the OpenAPI check. Declare routes with keyed
// fields; Method, Pattern, Handler, Summary and (unless it answers 204) Response are
// required, and every path parameter is either Scope.Param or listed in Params.
type Route struct {
	Method  string // GET, POST, PUT, PATCH or DELETE
	Pattern string // net/http pattern path, e.g. /straas/v1.0/topologies/{id}
	Public  bool   // no token needed
	Handler func(*Server, http.ResponseWriter, *http.Request) error

	// Admin restricts the route to the admin project: others get 403.
	Admin bool
	// Scope names the path parameter that addresses a resource and what kind it is. The
	// middleware loads it before the handler and answers 404 unless the caller may see
	// the topology it belongs to (auth.Principal.CanSee); it also gives the resource's
	// ETag and checks If-Match on updates. Handlers read it with ScopedTopology.
	Scope Scope

	Summary     string  // one line, for the OpenAPI document
	Description string  // optional, longer
	Tag         string  // OpenAPI tag grouping the route, e.g. "topologies"
	Params      []Param // path parameters other than Scope.Param, and query parameters
	// Request names the JSON Schema of the body in shared/model/schemas (without .json);
	// the middleware validates bodies against it (400 naming the field). "" = no JSON body.
	Request string
	// RequestMedia is the media type of a body that is not JSON (e.g.
	// application/octet-stream); it is documented, not validated.
	RequestMedia string
	Status       int // the success status (default 200)
	// Response is a value of the success body's Go type, e.g. TopologyResponse{}; its
	// JSON Schema is generated for the OpenAPI document. nil: no body (204).
	Response any
}

// Param is a path or query parameter of a route.
type Param struct {
	Name        string
	In          string // "path" or "query"; default: path when the pattern has {Name}
	Description string
	Type        string   // string (default), integer or boolean
	Enum        []string // allowed values, if a closed set
	Required    bool     // query parameters only; path parameters always are
	// Example is a value that works on a fresh `straas up` (used by the docs and by the
	// auth matrix test to call the route).
	Example string
}

// Routes is the route table: every feature's routes.
func Routes() []Route {
	var out []Route
	for _, set := range [][]Route{metaRoutes(), topologyRoutes(), configRoutes(), lifecycleRoutes(),
		policyRoutes()} {
		out = append(out, set...)
	}
	return out
}

// metaRoutes are the API's own public routes.
func metaRoutes() []Route {
	return []Route{
		{Method: "GET", Pattern: "/straas/openapi.json", Public: true, Handler: (*Server).openAPI, Tag: "meta",
			Summary: "The OpenAPI 3.1 document of this API", Response: map[string]any{}},
		{Method: "GET", Pattern: "/healthz", Public: true, Handler: (*Server).healthz, Tag: "meta",
			Summary: "Liveness of the API process", Response: Health{}},
	}
}

// topologyRoutes are the routes of topologies, the component catalog and actions.
func topologyRoutes() []Route {
	topo := Scope{Param: "id", Kind: ScopeTopology}
	return []Route{
		{Method: "POST", Pattern: Prefix + "/topologies", Handler: (*Server).createTopology, Tag: "topologies",
			Summary: "Create a topology", Request: "create_topology", Status: http.StatusAccepted, Response: TopologyCreated{},
			Description: "Creates the topology and starts its creation workflow; the answer carries the action to follow. " +
				"Send an Idempotency-Key to make retries safe."},
		{Method: "GET", Pattern: Prefix + "/topologies", Handler: (*Server).topologyPage, Tag: "topologies",
			Summary: "List the topologies the caller may see", Params: topologyListParams, Response: TopologyList{}},
		{Method: "GET", Pattern: Prefix + "/topologies/{id}", Handler: (*Server).showTopology, Tag: "topologies", Scope: topo,
			Summary: "Show a topology with its components and nodes", Response: TopologyResponse{}},
		{Method: "DELETE", Pattern: Prefix + "/topologies/{id}", Handler: (*Server).deleteTopology, Tag: "topologies", Scope: topo,
			Summary: "Delete a topology", Status: http.StatusAccepted, Response: TopologyDeleted{},
			Description: "Stops a running creation and starts the deletion workflow."},
		{Method: "GET", Pattern: Prefix + "/components", Handler: (*Server).listComponentTypes, Tag: "catalog",
			Summary: "List the component types of the script repo", Response: ComponentTypeList{}},
		{Method: "GET", Pattern: Prefix + "/components/{type}/nova_flavors", Handler: (*Server).novaFlavors, Tag: "catalog",
			Summary: "List the flavors a component type may use", Response: FlavorList{},
			Params: []Param{
				{Name: "type", Description: "component type", Example: "zookeeper"},
				{Name: "availability_zone", In: "query", Description: "zone whose flavors to list (default: the first zone)", Example: "az1"},
			}},
		{Method: "GET", Pattern: Prefix + "/actions", Handler: (*Server).actionPage, Tag: "actions",
			Summary: "List the actions the caller may see", Params: actionListParams, Response: ActionList{}},
		{Method: "GET", Pattern: Prefix + "/actions/{id}", Handler: (*Server).showAction, Tag: "actions",
			Scope:   Scope{Param: "id", Kind: ScopeAction},
			Summary: "Show an action with its stages and per-node progress", Response: ActionResponse{}},
	}
}

// Health is the body of /healthz.
type Health struct {
	Status string `json:"status"`
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
	return nil
}

// Handler returns the API with its middleware.
func (s *Server) Handler() http.Handler { return s.handler(Routes()) }

func (s *Server) handler(routes []Route) http.Handler {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.MaxBody == 0 {
		s.MaxBody = 1 << 20
	}
	if s.IdempotencyTTL == 0 {
		s.IdempotencyTTL = 24 * time.Hour
	}
	s.limiter = newLimiter(s.RateLimit, s.now)
	mux := http.NewServeMux()
	allowed := map[string][]string{} // pattern path -> methods, for 405s
	for _, rt := range routes {
		mux.Handle(rt.Method+" "+rt.Pattern, s.serve(rt))
		allowed[rt.Pattern] = append(allowed[rt.Pattern], rt.Method)
	}
	paths := http.NewServeMux()
	for p := range allowed {
		paths.Handle(p, http.NotFoundHandler())
	}
	// Anything else is a JSON 405 (a known path, another method) or 404, not net/http's text.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if _, p := paths.Handler(r); p != "" && len(allowed[p]) > 0 {
			ms := allowed[p]
			sort.Strings(ms)
			w.Header().Set("Allow", strings.Join(ms, ", "))
			writeError(w, r, &StatusError{Code: http.StatusMethodNotAllowed, Msg: fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(ms, ", "))})
			return
		}
		writeError(w, r, errs.NotFoundf("no route %s %s", r.Method, r.URL.Path))
	})
	return s.recoverer(s.logRequests(requestID(legacyToken(mux))))
}

func (s *Server) now() time.Time {
	if s.DB != nil && s.DB.Clock != nil {
		return s.DB.Clock.Now()
	}
	return time.Now()
}

// serve wraps a route's handler in the per-route middleware, in this order: token, rate
// limit, admin, scope (tenancy), Idempotency-Key (a retry is answered before anything
// else is checked again), If-Match (on any method: RFC 9110 lets a GET be conditional
// too), body validation, handler. Mutating calls of an authenticated caller are audited
// whatever their outcome.
func (s *Server) serve(rt Route) http.Handler {
	mutating := isMutating(rt.Method)
	ownsResource := rt.Scope.Kind != NoScope && strings.HasSuffix(rt.Pattern, "/{"+rt.Scope.Param+"}")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, status: http.StatusOK, keep: mutating}
		w = rec
		if rt.Public {
			s.finish(w, r, rt.Handler(s, w, r))
			return
		}
		p, err := s.authenticate(r)
		if err != nil {
			writeError(w, r, err)
			return
		}
		r = r.WithContext(auth.With(r.Context(), p))
		notePrincipal(r.Context(), p)
		if err := s.limiter.allow(p.ProjectID); err != nil {
			writeError(w, r, err)
			return
		}
		var sc *scoped
		if mutating {
			defer func() { s.audit(r, rt, sc, rec) }()
		}
		if rt.Admin && !p.Admin {
			writeError(w, r, errs.Permissionf("%s %s is for the admin project only", rt.Method, rt.Pattern))
			return
		}
		if rt.Scope.Kind != NoScope {
			if sc, err = s.resolve(r.Context(), p, rt.Scope, r.PathValue(rt.Scope.Param)); err != nil {
				writeError(w, r, err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), scopeKey{}, sc))
		}
		rest := func(w http.ResponseWriter, r *http.Request) {
			if sc != nil {
				if err := s.checkIfMatch(r, sc); err != nil {
					writeError(w, r, err)
					return
				}
			}
			if sc != nil && !mutating && ownsResource && sc.Record.ID != "" {
				tag, err := sc.etag(r.Context(), s)
				if err != nil {
					writeError(w, r, err)
					return
				}
				w.Header().Set("ETag", tag)
			}
			if rt.Request != "" {
				raw, err := s.readBody(r)
				if err == nil {
					err = model.ValidateJSON(rt.Request, raw)
				}
				if err != nil {
					writeError(w, r, err)
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(raw))
			}
			s.finish(w, r, rt.Handler(s, w, r))
		}
		if rt.Method == http.MethodPost && r.Header.Get(IdempotencyHeader) != "" {
			s.idempotent(w, r, rt, p, rest)
			return
		}
		rest(w, r)
	})
}

func (s *Server) finish(w http.ResponseWriter, r *http.Request, err error) {
	if err != nil {
		writeError(w, r, err)
	}
}

func isMutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// recorder remembers the status and, for mutating calls, the start of the body (for
// the audit event and the idempotency record).
type recorder struct {
	http.ResponseWriter
	status  int
	written bool
	keep    bool
	body    bytes.Buffer
}

// maxKept bounds what a recorder keeps of a body.
const maxKept = 256 << 10

func (w *recorder) WriteHeader(code int) {
	if !w.written {
		w.status, w.written = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	w.written = true
	if w.keep && w.body.Len() < maxKept {
		w.body.Write(b[:min(len(b), maxKept-w.body.Len())])
	}
	return w.ResponseWriter.Write(b)
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush lets handlers that stream (downloads, progress) flush through the middleware.
func (w *recorder) Flush() {
	w.written = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
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

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// logRequests logs one line per request: never headers, bodies or the query string,
// which may carry credentials.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: 200}
		holder := &principalHolder{}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), holderKey{}, holder)))
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", sw.status, "ms", time.Since(start).Milliseconds(),
			"remote", r.RemoteAddr, "request_id", w.Header().Get(RequestIDHeader)}
		if p := holder.p; p != nil {
			attrs = append(attrs, "user", p.UserName, "project", p.ProjectName)
		}
		s.Log.Info("request", attrs...)
	})
}

// principalHolder lets the access log learn who the caller was: the principal is found
// deeper in the chain than the log middleware.
type principalHolder struct{ p *auth.Principal }

type holderKey struct{}

func notePrincipal(ctx context.Context, p auth.Principal) {
	if h, ok := ctx.Value(holderKey{}).(*principalHolder); ok {
		h.p = &p
	}
}

// RequestIDHeader carries the id of a request, echoed from the client when sane.
const RequestIDHeader = "X-Request-Id"

func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !saneID(id) {
			id = db.NewID("req")
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r)
	})
}

func saneID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
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

// StatusError is an error with an HTTP status no errs.Kind stands for (405, 422).
type StatusError struct {
	Code  int
	Field string
	Msg   string
}

func (e *StatusError) Error() string { return e.Msg }

// Status maps an error's kind to its HTTP status, in one place.
func Status(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code
	}
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
	field := errs.FieldOf(err)
	var se *StatusError
	if errors.As(err, &se) {
		field = se.Field
	}
	switch code {
	case http.StatusInternalServerError:
		slog.Error("internal error", "path", r.URL.Path, "err", err)
		msg = "internal error; see the server log"
	case http.StatusServiceUnavailable:
		if errs.KindOf(err) == errs.Unavailable {
			// A dependency's error text may quote what it was sent (a token, a URL with
			// credentials): the log has it, the client gets the operation only.
			slog.Warn("dependency unavailable", "path", r.URL.Path, "err", err)
			msg = "a dependency is unavailable; retry later"
			var e *errs.Error
			if errors.As(err, &e) && e.Op != "" {
				msg = e.Op + ": " + msg
			}
		}
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Keystone uri="/identity/v3"`)
	}
	var rl *rateLimited
	if errors.As(err, &rl) {
		w.Header().Set("Retry-After", fmt.Sprint(rl.retryAfter))
	}
	writeJSON(w, code, Error{Error: ErrorBody{Code: code, Title: http.StatusText(code), Message: msg, Field: field}})
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
