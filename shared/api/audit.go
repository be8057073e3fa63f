package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"

	"github.com/straas/straas/shared/model"
)

// AuditEvent is the type of the event every mutating call of an authenticated caller
// records: who (user, project), what (method, route, path, status, the topology and
// action concerned), when (the event's time) and from where (the client's address).
// Bodies, headers and query strings are never recorded: they may carry secrets.
const AuditEvent = "api.call"

func (s *Server) audit(r *http.Request, rt Route, sc *scoped, rec *recorder) {
	if rec.status == http.StatusTooManyRequests {
		return // a flood must not become a flood of events
	}
	p := principal(r)
	e := model.Event{
		Type: AuditEvent, Level: model.LevelInfo, Tenant: p.ProjectID, User: p.UserName, Source: clientIP(r),
		Message: fmt.Sprintf("%s %s %s: %d %s", p.UserName, r.Method, r.URL.Path, rec.status, http.StatusText(rec.status)),
		Data: map[string]any{
			"method": r.Method, "route": rt.Pattern, "path": r.URL.Path, "status": rec.status,
			"user_id": p.UserID, "project": p.ProjectName, "request_id": rec.Header().Get(RequestIDHeader),
		},
	}
	if rec.status >= 400 {
		e.Level = model.LevelWarning
	}
	if ua := r.UserAgent(); ua != "" {
		e.Data["user_agent"] = truncate(ua, 200)
	}
	if f := r.Header.Get("X-Forwarded-For"); f != "" {
		e.Data["forwarded_for"] = truncate(f, 200)
	}
	if rec.Header().Get(ReplayedHeader) != "" {
		e.Data["idempotent_replay"] = true
	}
	if sc != nil {
		// sc is set only once the caller is known to see it: a denied probe does not land
		// in the timeline of someone else's topology.
		e.TopologyID = sc.Topology.ID
		switch sc.Kind {
		case ScopeComponent:
			e.ComponentID = sc.ID
		case ScopeNode:
			e.NodeID = sc.ID
		}
	}
	if rec.status >= 200 && rec.status < 300 {
		// The answer names what was created or started: link the event to it.
		var ans struct {
			Topology struct {
				ID string `json:"id"`
			} `json:"topology"`
			Action struct {
				ID string `json:"id"`
			} `json:"action"`
		}
		if json.Unmarshal(rec.body.Bytes(), &ans) == nil {
			if e.TopologyID == "" {
				e.TopologyID = ans.Topology.ID
			}
			e.ActionID = ans.Action.ID
		}
	}
	// Recorded even if the client went away meanwhile.
	if err := s.DB.Emit(context.WithoutCancel(r.Context()), e); err != nil {
		s.Log.Warn("record audit event", "route", rt.Pattern, "err", err)
	}
}

// clientIP is the address the request came from (the proxy's, behind one; the
// X-Forwarded-For it claims is kept beside, unverified).
func clientIP(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
