package cmdb

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/straas/straas/shared/errs"
)

// The HTTP protocol of a CMDB endpoint, relative to its base URL:
//
//	POST   /models          a Model           201; 409 when the topology has one
//	GET    /models/{id}                       200 with the Model; 404
//	PUT    /models/{id}     a Model           200; 404
//	DELETE /models/{id}                       204; 404
//
// Errors are JSON {"error": "..."}. Requests carry "Authorization: Bearer <token>" when
// a token is configured.

// HTTP is the CMDB adapter for a remote endpoint.
type HTTP struct {
	Base   string // e.g. https://cmdb.example.com/api
	Token  string
	Client *http.Client
}

var _ CMDB = (*HTTP)(nil)

// NewHTTP returns an adapter for the endpoint at base.
func NewHTTP(base, token string) *HTTP {
	return &HTTP{Base: strings.TrimRight(base, "/"), Token: token, Client: &http.Client{Timeout: 30 * time.Second}}
}

func (h *HTTP) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.Base+path, body)
	if err != nil {
		return errs.Wrap(errs.Invalid, "cmdb request", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return errs.Wrap(errs.Unavailable, "cmdb "+method+" "+path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		kind := errs.Other
		switch {
		case resp.StatusCode == http.StatusNotFound:
			kind = errs.NotFound
		case resp.StatusCode == http.StatusConflict:
			kind = errs.Conflict
		case resp.StatusCode == http.StatusBadRequest:
			kind = errs.Invalid
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			kind = errs.Permission
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			kind = errs.Unavailable
		}
		return &errs.Error{Kind: kind, Op: "cmdb " + method + " " + path, Msg: fmt.Sprintf("%s: %s", resp.Status, msg)}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("cmdb %s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

func modelPath(id string) string { return "/models/" + url.PathEscape(id) }

// Create posts a new model.
func (h *HTTP) Create(ctx context.Context, m Model) error {
	return h.do(ctx, "POST", "/models", m, nil)
}

// Get reads a model.
func (h *HTTP) Get(ctx context.Context, id string) (Model, error) {
	var m Model
	err := h.do(ctx, "GET", modelPath(id), nil, &m)
	return m, err
}

// Update replaces a model.
func (h *HTTP) Update(ctx context.Context, m Model) error {
	return h.do(ctx, "PUT", modelPath(m.TopologyID), m, nil)
}

// Delete removes a model.
func (h *HTTP) Delete(ctx context.Context, id string) error {
	return h.do(ctx, "DELETE", modelPath(id), nil, nil)
}

// Handler serves the HTTP protocol over any CMDB: a reference endpoint, and what the
// HTTP adapter is tested against.
func Handler(c CMDB) http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		code := http.StatusInternalServerError
		switch errs.KindOf(err) {
		case errs.NotFound:
			code = http.StatusNotFound
		case errs.Conflict:
			code = http.StatusConflict
		case errs.Invalid:
			code = http.StatusBadRequest
		}
		writeJSON(w, code, map[string]string{"error": err.Error()})
	}
	decode := func(r *http.Request) (Model, error) {
		var m Model
		dec := json.NewDecoder(io.LimitReader(r.Body, 16<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			return m, errs.Invalidf("body", "%v", err)
		}
		return m, nil
	}
	mux.HandleFunc("POST /models", func(w http.ResponseWriter, r *http.Request) {
		m, err := decode(r)
		if err == nil {
			err = c.Create(r.Context(), m)
		}
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusCreated, m)
	})
	mux.HandleFunc("GET /models/{id}", func(w http.ResponseWriter, r *http.Request) {
		m, err := c.Get(r.Context(), r.PathValue("id"))
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, m)
	})
	mux.HandleFunc("PUT /models/{id}", func(w http.ResponseWriter, r *http.Request) {
		m, err := decode(r)
		if err == nil && m.TopologyID != r.PathValue("id") {
			err = errs.Invalidf("topology_id", "%q does not match the path's %q", m.TopologyID, r.PathValue("id"))
		}
		if err == nil {
			err = c.Update(r.Context(), m)
		}
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, m)
	})
	mux.HandleFunc("DELETE /models/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := c.Delete(r.Context(), r.PathValue("id")); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
