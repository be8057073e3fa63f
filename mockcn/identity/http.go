package identity

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/straas/straas/shared/errs"
)

// Prefix is where the handler is mounted.
const Prefix = "/identity"

// APIVersion is the Keystone API version reported.
const APIVersion = "v3.14"

// Endpoint is one endpoint of a catalog entry.
type Endpoint struct {
	ID        string `json:"id"`
	Interface string `json:"interface"` // public, internal, admin
	Region    string `json:"region"`
	RegionID  string `json:"region_id"`
	URL       string `json:"url"`
}

// CatalogEntry is one service of the catalog.
type CatalogEntry struct {
	ID        string     `json:"id"`
	Type      string     `json:"type"`
	Name      string     `json:"name"`
	Endpoints []Endpoint `json:"endpoints"`
}

// Catalog returns the service catalog for a request (its base URL may depend on it).
type Catalog func(r *http.Request) []CatalogEntry

// Handler serves Keystone v3 under Prefix. catalog may be nil (an empty catalog).
func (s *Service) Handler(catalog Catalog) http.Handler {
	if catalog == nil {
		catalog = func(*http.Request) []CatalogEntry { return []CatalogEntry{} }
	}
	h := &handler{s: s, catalog: catalog}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Prefix+"/{$}", h.versions)
	mux.HandleFunc("GET "+Prefix, h.versions)
	mux.HandleFunc("GET "+Prefix+"/v3", h.version)
	mux.HandleFunc("GET "+Prefix+"/v3/{$}", h.version)
	mux.HandleFunc("POST "+Prefix+"/v3/auth/tokens", h.issue)
	mux.HandleFunc("GET "+Prefix+"/v3/auth/tokens", h.check)
	mux.HandleFunc("HEAD "+Prefix+"/v3/auth/tokens", h.check)
	mux.HandleFunc("DELETE "+Prefix+"/v3/auth/tokens", h.revoke)
	mux.HandleFunc("GET "+Prefix+"/v3/auth/catalog", h.authed(h.authCatalog))
	mux.HandleFunc("GET "+Prefix+"/v3/auth/projects", h.authed(h.authProjects))
	mux.HandleFunc("GET "+Prefix+"/v3/projects", h.authed(h.listProjects))
	mux.HandleFunc("GET "+Prefix+"/v3/projects/{id}", h.authed(h.getProject))
	mux.HandleFunc("GET "+Prefix+"/v3/users", h.authed(h.listUsers))
	mux.HandleFunc("GET "+Prefix+"/v3/users/{id}", h.authed(h.getUser))
	mux.HandleFunc("GET "+Prefix+"/v3/users/{id}/projects", h.authed(h.userProjects))
	mux.HandleFunc("GET "+Prefix+"/v3/roles", h.authed(h.listRoles))
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "The resource could not be found.")
	})
	return mux
}

type handler struct {
	s       *Service
	catalog Catalog
}

// BaseURL is the scheme and host a request was addressed to.
func BaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

var statusTitles = map[int]string{
	400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
}

// writeError writes Keystone's error body.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "title": statusTitles[code], "message": msg}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

const timeFmt = "2006-01-02T15:04:05.000000Z"

func (h *handler) versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id": APIVersion, "status": "stable", "updated": "2020-04-07T00:00:00Z",
		"links":       []map[string]string{{"rel": "self", "href": BaseURL(r) + Prefix + "/v3/"}},
		"media-types": []map[string]string{{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}},
	}
}

func (h *handler) versions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{h.versionDoc(r)}}})
}

func (h *handler) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": h.versionDoc(r)})
}

type ref struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Domain *ref   `json:"domain"`
}

type authRequest struct {
	Auth *struct {
		Identity *struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User *struct {
					ref
					Password string `json:"password"`
				} `json:"user"`
			} `json:"password"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token"`
		} `json:"identity"`
		Scope json.RawMessage `json:"scope"`
	} `json:"auth"`
}

func (h *handler) issue(w http.ResponseWriter, r *http.Request) {
	var req authRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "Malformed JSON in the request body: "+err.Error())
		return
	}
	if req.Auth == nil || req.Auth.Identity == nil || len(req.Auth.Identity.Methods) == 0 {
		writeError(w, http.StatusBadRequest, "Expecting to find identity in auth. The server could not comply with the request since it is either malformed or otherwise incorrect.")
		return
	}
	// Scope: a project (by id, or by name within a domain), "unscoped", or none (the
	// user's default project).
	var project *Project
	unscoped := false
	if sc := strings.TrimSpace(string(req.Auth.Scope)); sc != "" && sc != "null" {
		if sc == `"unscoped"` {
			unscoped = true
		} else {
			var scope struct {
				Project *ref            `json:"project"`
				Domain  json.RawMessage `json:"domain"`
				System  json.RawMessage `json:"system"`
			}
			if err := json.Unmarshal(req.Auth.Scope, &scope); err != nil {
				writeError(w, http.StatusBadRequest, "Malformed scope: "+err.Error())
				return
			}
			if scope.Project == nil {
				writeError(w, http.StatusUnauthorized, "Only project scope is supported by this cloud.")
				return
			}
			project = h.findProject(scope.Project)
			if project == nil {
				writeError(w, http.StatusUnauthorized, "Could not find project: "+scope.Project.ID+scope.Project.Name+".")
				return
			}
		}
	}
	id := req.Auth.Identity
	var (
		tok *Token
		err error
	)
	switch id.Methods[0] {
	case "password":
		if id.Password == nil || id.Password.User == nil {
			writeError(w, http.StatusBadRequest, "Expecting to find user in password.")
			return
		}
		pu := id.Password.User
		u := h.s.users[pu.ID]
		if u == nil && pu.Name != "" && domainOK(pu.Domain) {
			u = h.s.byName[pu.Name]
		}
		if u == nil || !equalSecret(u.password, pu.Password) {
			writeError(w, http.StatusUnauthorized, "The request you have made requires authentication.")
			return
		}
		switch {
		case unscoped:
			tok, err = h.s.issue(u, nil, []string{"password"}, "", time.Time{})
		case project == nil:
			tok, err = h.s.issue(u, u.project, []string{"password"}, "", time.Time{})
		default:
			tok, err = h.s.issue(u, project, []string{"password"}, "", time.Time{})
		}
	case "token":
		if id.Token == nil || id.Token.ID == "" {
			writeError(w, http.StatusBadRequest, "Expecting to find id in token.")
			return
		}
		switch {
		case unscoped || project == nil:
			var old *Token
			if old, err = h.s.Validate(id.Token.ID); err == nil {
				u := h.s.users[old.UserID]
				p := u.project
				if unscoped {
					p = nil
				}
				tok, err = h.s.issue(u, p, []string{"token"}, old.AuditID, old.ExpiresAt)
			}
		default:
			tok, err = h.s.Rescope(id.Token.ID, project.ID)
		}
	default:
		writeError(w, http.StatusUnauthorized, "Attempted to authenticate with an unsupported method.")
		return
	}
	if err != nil {
		code := http.StatusUnauthorized
		if !errs.Is(err, errs.Unauthenticated) {
			code = http.StatusInternalServerError
		}
		writeError(w, code, err.Error())
		return
	}
	w.Header().Set("X-Subject-Token", tok.ID)
	writeJSON(w, http.StatusCreated, map[string]any{"token": h.tokenBody(r, tok, r.URL.Query().Has("nocatalog"))})
}

func domainOK(d *ref) bool {
	return d == nil || d.ID == DomainID || d.Name == DomainName || (d.ID == "" && d.Name == "")
}

func equalSecret(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (h *handler) findProject(p *ref) *Project {
	if p.ID != "" {
		return h.s.projects[p.ID]
	}
	if p.Name != "" && domainOK(p.Domain) {
		return h.s.projName[p.Name]
	}
	return nil
}

var domain = map[string]string{"id": DomainID, "name": DomainName}

func (h *handler) tokenBody(r *http.Request, t *Token, nocatalog bool) map[string]any {
	body := map[string]any{
		"methods":    t.Methods,
		"user":       map[string]any{"id": t.UserID, "name": t.UserName, "domain": domain, "password_expires_at": nil},
		"audit_ids":  []string{t.AuditID},
		"issued_at":  t.IssuedAt.Format(timeFmt),
		"expires_at": t.ExpiresAt.Format(timeFmt),
	}
	if t.ProjectID != "" {
		body["project"] = map[string]any{"id": t.ProjectID, "name": t.ProjectName, "domain": domain}
		body["is_domain"] = false
		rs := make([]map[string]string, len(t.Roles))
		for i, r := range t.Roles {
			rs[i] = map[string]string{"id": ID("role", r), "name": r}
		}
		body["roles"] = rs
		if !nocatalog {
			body["catalog"] = h.catalog(r)
		}
	}
	return body
}

// caller validates the X-Auth-Token of a request, writing a 401 when it is not valid.
func (h *handler) caller(w http.ResponseWriter, r *http.Request) *Token {
	t, err := h.s.Validate(r.Header.Get("X-Auth-Token"))
	if err != nil {
		writeError(w, http.StatusUnauthorized, "The request you have made requires authentication.")
		return nil
	}
	return t
}

func (h *handler) authed(fn func(w http.ResponseWriter, r *http.Request, t *Token)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if t := h.caller(w, r); t != nil {
			fn(w, r, t)
		}
	}
}

// check validates X-Subject-Token for a caller allowed to: an admin, or the token's own user.
func (h *handler) check(w http.ResponseWriter, r *http.Request) {
	caller := h.caller(w, r)
	if caller == nil {
		return
	}
	subject := r.Header.Get("X-Subject-Token")
	t, err := h.s.Validate(subject)
	if err != nil {
		writeError(w, http.StatusNotFound, "Could not find token: "+shorten(subject)+". "+err.Error())
		return
	}
	if !caller.IsAdmin() && caller.UserID != t.UserID {
		writeError(w, http.StatusForbidden, "You are not authorized to perform the requested action: identity:validate_token.")
		return
	}
	w.Header().Set("X-Subject-Token", t.ID)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": h.tokenBody(r, t, r.URL.Query().Has("nocatalog"))})
}

func shorten(s string) string {
	if len(s) > 16 {
		return s[:16] + "..."
	}
	return s
}

func (h *handler) revoke(w http.ResponseWriter, r *http.Request) {
	caller := h.caller(w, r)
	if caller == nil {
		return
	}
	subject := r.Header.Get("X-Subject-Token")
	t, err := h.s.Validate(subject)
	if err != nil {
		writeError(w, http.StatusNotFound, "Could not find token: "+shorten(subject)+".")
		return
	}
	if !caller.IsAdmin() && caller.UserID != t.UserID {
		writeError(w, http.StatusForbidden, "You are not authorized to perform the requested action: identity:revoke_token.")
		return
	}
	if err := h.s.Revoke(subject); err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) authCatalog(w http.ResponseWriter, r *http.Request, t *Token) {
	cat := []CatalogEntry{}
	if t.ProjectID != "" {
		cat = h.catalog(r)
	}
	writeJSON(w, http.StatusOK, map[string]any{"catalog": cat, "links": map[string]any{"self": BaseURL(r) + r.URL.Path}})
}

func (h *handler) projectBody(r *http.Request, p *Project) map[string]any {
	return map[string]any{
		"id": p.ID, "name": p.Name, "domain_id": DomainID, "parent_id": DomainID, "description": "",
		"enabled": true, "is_domain": false, "tags": []string{},
		"links": map[string]string{"self": BaseURL(r) + Prefix + "/v3/projects/" + p.ID},
	}
}

func (h *handler) projectList(w http.ResponseWriter, r *http.Request, ps []*Project) {
	sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		if n := r.URL.Query().Get("name"); n != "" && p.Name != n {
			continue
		}
		out = append(out, h.projectBody(r, p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"projects": out, "links": map[string]any{"self": BaseURL(r) + r.URL.Path, "next": nil, "previous": nil}})
}

func (h *handler) authProjects(w http.ResponseWriter, r *http.Request, t *Token) {
	h.projectList(w, r, []*Project{h.s.users[t.UserID].project})
}

func (h *handler) listProjects(w http.ResponseWriter, r *http.Request, t *Token) {
	if !t.IsAdmin() {
		writeError(w, http.StatusForbidden, "You are not authorized to perform the requested action: identity:list_projects.")
		return
	}
	ps := make([]*Project, 0, len(h.s.projects))
	for _, p := range h.s.projects {
		ps = append(ps, p)
	}
	h.projectList(w, r, ps)
}

func (h *handler) getProject(w http.ResponseWriter, r *http.Request, t *Token) {
	p := h.s.projects[r.PathValue("id")]
	if p == nil || (!t.IsAdmin() && p.ID != t.ProjectID) {
		if p != nil {
			writeError(w, http.StatusForbidden, "You are not authorized to perform the requested action: identity:get_project.")
			return
		}
		writeError(w, http.StatusNotFound, "Could not find project: "+r.PathValue("id")+".")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"project": h.projectBody(r, p)})
}

func (h *handler) userBody(r *http.Request, u *user) map[string]any {
	return map[string]any{
		"id": u.id, "name": u.name, "domain_id": DomainID, "enabled": true,
		"default_project_id": u.project.ID, "password_expires_at": nil, "options": map[string]any{},
		"links": map[string]string{"self": BaseURL(r) + Prefix + "/v3/users/" + u.id},
	}
}

func (h *handler) listUsers(w http.ResponseWriter, r *http.Request, t *Token) {
	if !t.IsAdmin() {
		writeError(w, http.StatusForbidden, "You are not authorized to perform the requested action: identity:list_users.")
		return
	}
	us := make([]*user, 0, len(h.s.users))
	for _, u := range h.s.users {
		if n := r.URL.Query().Get("name"); n == "" || u.name == n {
			us = append(us, u)
		}
	}
	sort.Slice(us, func(i, j int) bool { return us[i].name < us[j].name })
	out := make([]map[string]any, len(us))
	for i, u := range us {
		out[i] = h.userBody(r, u)
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out, "links": map[string]any{"self": BaseURL(r) + r.URL.Path, "next": nil, "previous": nil}})
}

func (h *handler) userFor(w http.ResponseWriter, r *http.Request, t *Token, action string) *user {
	u := h.s.users[r.PathValue("id")]
	if u == nil {
		writeError(w, http.StatusNotFound, "Could not find user: "+r.PathValue("id")+".")
		return nil
	}
	if !t.IsAdmin() && u.id != t.UserID {
		writeError(w, http.StatusForbidden, "You are not authorized to perform the requested action: identity:"+action+".")
		return nil
	}
	return u
}

func (h *handler) getUser(w http.ResponseWriter, r *http.Request, t *Token) {
	if u := h.userFor(w, r, t, "get_user"); u != nil {
		writeJSON(w, http.StatusOK, map[string]any{"user": h.userBody(r, u)})
	}
}

func (h *handler) userProjects(w http.ResponseWriter, r *http.Request, t *Token) {
	if u := h.userFor(w, r, t, "list_user_projects"); u != nil {
		h.projectList(w, r, []*Project{u.project})
	}
}

func (h *handler) listRoles(w http.ResponseWriter, r *http.Request, t *Token) {
	if !t.IsAdmin() {
		writeError(w, http.StatusForbidden, "You are not authorized to perform the requested action: identity:list_roles.")
		return
	}
	out := []map[string]any{}
	for _, n := range []string{RoleAdmin, RoleMember, RoleReader} {
		out = append(out, map[string]any{"id": ID("role", n), "name": n, "domain_id": nil,
			"links": map[string]string{"self": BaseURL(r) + Prefix + "/v3/roles/" + ID("role", n)}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"roles": out, "links": map[string]any{"self": BaseURL(r) + r.URL.Path, "next": nil, "previous": nil}})
}
