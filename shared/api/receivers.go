package api

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
	"github.com/straas/straas/shared/policy/actions"
	"github.com/straas/straas/shared/policy/records"
	"github.com/straas/straas/shared/store"
)

// Receivers (seed 002, Senlin): a webhook URL that triggers an action on a component
// without a Keystone token. The URL carries an HMAC of the receiver's id under a secret
// only straas holds; deleting the receiver revokes it.

func receiverRoutes() []Route {
	rid := Param{Name: "receiver_id", Description: "a receiver id", Example: "rcv-none"}
	return []Route{
		{Method: "POST", Pattern: Prefix + "/receivers", Handler: (*Server).createReceiver, Tag: "receivers",
			Summary: "Create a receiver: a signed URL that scales a component without a Keystone token", Request: "receiver_create",
			Status: http.StatusCreated, Response: ReceiverResponse{}},
		{Method: "GET", Pattern: Prefix + "/receivers", Handler: (*Server).listReceivers, Tag: "receivers",
			Summary: "List the receivers the caller may see", Response: ReceiverList{}, Params: receiverListParams},
		{Method: "DELETE", Pattern: Prefix + "/receivers/{receiver_id}", Handler: (*Server).deleteReceiver, Tag: "receivers",
			Summary: "Delete (revoke) a receiver: its URL stops working", Status: http.StatusNoContent, Params: []Param{rid},
			Description: "Deleting a receiver that does not exist (or is not the caller's) is a no-op."},
		{Method: "POST", Pattern: Prefix + "/receivers/{receiver_id}/trigger", Public: true, Handler: (*Server).triggerReceiver, Tag: "receivers",
			Summary: "Trigger a receiver (no token: the URL's signature authenticates)", Status: http.StatusAccepted, Response: TriggerAccepted{},
			Params: []Param{rid,
				{Name: "V", In: "query", Description: "signature version (1)", Example: "1"},
				{Name: "sig", In: "query", Description: "the URL's signature, as created"},
				{Name: "count", In: "query", Type: "integer", Description: "nodes to add or remove, overriding the receiver's params"},
			},
			Description: "Answers 404 for an unknown or revoked receiver or a bad signature, 409 when the scaling is refused " +
				"(autoscaling off, cooldown, size bounds)."},
	}
}

// ReceiverView is a receiver as its owner sees it.
type ReceiverView struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Type          string            `json:"type"`
	Action        string            `json:"action"`
	Params        map[string]string `json:"params,omitempty"`
	ComponentID   string            `json:"component_id"`
	TopologyID    string            `json:"topology_id"`
	URL           string            `json:"url"` // POST it to trigger; keep it secret
	CreatedAt     time.Time         `json:"created_at"`
	LastTriggered *time.Time        `json:"last_triggered,omitempty"`
	Triggered     int               `json:"triggered"`
}

// ReceiverResponse is the answer of POST /receivers.
type ReceiverResponse struct {
	Receiver ReceiverView `json:"receiver"`
}

// ReceiverList is the answer of GET /receivers.
type ReceiverList struct {
	Receivers  []ReceiverView `json:"receivers"`
	NextMarker string         `json:"next_marker,omitempty"`
}

// TriggerAccepted is the answer of a trigger that started a scaling.
type TriggerAccepted struct {
	Action       ActionRef       `json:"action"`
	Decision     policy.Decision `json:"decision"`
	QueuedBehind []string        `json:"queued_behind,omitempty"`
}

var receiverSorts = sortKey[ReceiverView]{
	"name":       func(v ReceiverView) string { return v.Name },
	"created_at": func(v ReceiverView) string { return store.SortTime(v.CreatedAt) },
}

var receiverListParams = append(slices.Clone(pagingParams),
	Param{Name: "sort", In: "query", Description: "sort field, '-' prefix for descending (default created_at)", Enum: sortEnum(receiverSorts), Example: "name"},
	Param{Name: "component_id", In: "query", Description: "only the receivers of this component"},
)

// signature is the URL signature of a receiver (version 1).
func signature(v *records.Receiver) string {
	key, _ := hex.DecodeString(v.Secret)
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "straas-receiver/v1/%s", v.ID)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// baseURL is how the caller reached the API (behind a proxy: its forwarded scheme).
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

func receiverView(r *http.Request, v *records.Receiver) ReceiverView {
	return ReceiverView{ID: v.ID, Name: v.Name, Type: v.Type, Action: v.Action, Params: v.Params, ComponentID: v.ComponentID,
		TopologyID: v.TopologyID, CreatedAt: v.CreatedAt, LastTriggered: v.LastTriggered, Triggered: v.Triggered,
		URL: fmt.Sprintf("%s%s/receivers/%s/trigger?V=1&sig=%s", baseURL(r), Prefix, v.ID, signature(v))}
}

func (s *Server) createReceiver(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	var body struct {
		Name        string `json:"name"`
		Type        string `json:"type"`
		ComponentID string `json:"component_id"`
		Action      string `json:"action"`
		Params      struct {
			Count int `json:"count"`
		} `json:"params"`
	}
	if err := decodeStrict(r, &body); err != nil {
		return err
	}
	sc, err := s.resolve(ctx, p, Scope{Param: "component_id", Kind: ScopeComponent}, body.ComponentID)
	if errs.Is(err, errs.NotFound) {
		return errs.Invalidf("component_id", "no component %q", body.ComponentID)
	}
	if err != nil {
		return err
	}
	c, _, err := s.DB.Component(ctx, sc.ID)
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("receiver secret: %w", err)
	}
	v := records.Receiver{ID: db.NewID("rcv"), Name: body.Name, Type: "webhook", Action: body.Action, ComponentID: c.ID,
		TopologyID: c.TopologyID, Tenant: c.Tenant, User: p.UserID, Secret: hex.EncodeToString(key), CreatedAt: s.DB.Now()}
	if body.Params.Count > 0 {
		v.Params = map[string]string{"count": strconv.Itoa(body.Params.Count)}
	}
	rec, err := records.ReceiverRecord(&v)
	if err != nil {
		return err
	}
	if err := s.DB.S.Write(ctx, store.Put(rec, store.Absent)); err != nil {
		return err
	}
	s.event(r, model.Event{Type: "receiver.create", TopologyID: c.TopologyID, ComponentID: c.ID,
		Message: fmt.Sprintf("%s created receiver %s (%s) of component %s", p.UserName, v.Name, v.Action, c.Name), Data: map[string]any{"receiver_id": v.ID}})
	writeJSON(w, http.StatusCreated, ReceiverResponse{Receiver: receiverView(r, &v)})
	return nil
}

func (s *Server) listReceivers(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	q := r.URL.Query()
	lq, err := parseList(q, receiverSorts, "created_at")
	if err != nil {
		return err
	}
	tenant := p.ProjectID
	if p.Admin {
		tenant = ""
	}
	comp := q.Get("component_id")
	var keep []ReceiverView
	marker := ""
	for {
		vs, next, err := s.policies().Records.Receivers(ctx, tenant, 1000, marker)
		if err != nil {
			return err
		}
		for i := range vs {
			v := &vs[i]
			if !p.CanSee(v.Tenant, v.User) || (comp != "" && v.ComponentID != comp) {
				continue
			}
			keep = append(keep, receiverView(r, v))
		}
		if next == "" {
			break
		}
		marker = next
	}
	out, next := page(keep, lq, receiverSorts, func(v ReceiverView) string { return v.ID })
	if out == nil {
		out = []ReceiverView{}
	}
	writeJSON(w, http.StatusOK, ReceiverList{Receivers: out, NextMarker: next})
	return nil
}

func (s *Server) deleteReceiver(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	p := principal(r)
	id := r.PathValue("receiver_id")
	v, _, err := s.policies().Records.Receiver(ctx, id)
	if errs.Is(err, errs.NotFound) || (err == nil && !p.CanSee(v.Tenant, v.User)) {
		w.WriteHeader(http.StatusNoContent) // gone already, or not the caller's: like absent
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.policies().Records.Delete(ctx, records.KindReceiver, id); err != nil {
		return err
	}
	s.event(r, model.Event{Type: "receiver.delete", TopologyID: v.TopologyID, ComponentID: v.ComponentID,
		Message: fmt.Sprintf("%s deleted receiver %s (%s): its URL is revoked", p.UserName, v.Name, v.ID), Data: map[string]any{"receiver_id": v.ID}})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// triggerReceiver is public: the signature is the credential.
func (s *Server) triggerReceiver(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id := r.PathValue("receiver_id")
	q := r.URL.Query()
	nf := errs.NotFoundf("no receiver %s with this signature (unknown, revoked, or a bad URL)", truncate(id, 64))
	v, _, err := s.policies().Records.Receiver(ctx, id)
	if errs.Is(err, errs.NotFound) {
		return nf
	}
	if err != nil {
		return err
	}
	if q.Get("V") != "1" || !hmac.Equal([]byte(q.Get("sig")), []byte(signature(&v))) {
		return nf
	}
	count := 0
	if n := v.Params["count"]; n != "" {
		count, _ = strconv.Atoi(n)
	}
	if n := q.Get("count"); n != "" {
		c, err := strconv.Atoi(n)
		if err != nil || c < 1 || c > 1000 {
			return errs.Invalidf("count", "want an integer from 1 to 1000, got %q", truncate(n, 20))
		}
		count = c
	}
	c, _, err := s.DB.Component(ctx, v.ComponentID)
	if errs.Is(err, errs.NotFound) {
		return nf // its component is gone: so is the receiver
	}
	if err != nil {
		return err
	}
	typeMin := 0
	if types, err := s.Catalog.ComponentTypes(ctx); err == nil {
		for _, t := range types {
			if t.Type == c.Type {
				typeMin = t.MinSize
			}
		}
	}
	now := s.DB.Now()
	if _, err := store.Update(ctx, s.DB.S, records.KindReceiver, v.ID, func(sr *store.Record) error {
		var x records.Receiver
		if err := store.Decode(*sr, &x); err != nil {
			return err
		}
		x.LastTriggered, x.Triggered = &now, x.Triggered+1
		nr, err := records.ReceiverRecord(&x)
		nr.Version = sr.Version
		*sr = nr
		return err
	}); err != nil && !errs.Is(err, errs.NotFound) {
		return err
	}
	res, err := s.policies().Scale(ctx, actions.ScaleRequest{Component: c, Direction: v.Action, Count: count,
		Cause: fmt.Sprintf("receiver %s (%s)", v.Name, v.ID), User: v.User, TypeMin: typeMin})
	if err != nil {
		lvl := model.LevelWarning
		if !errs.Is(err, errs.Conflict) {
			lvl = model.LevelError
		}
		_ = s.DB.Emit(ctx, model.Event{Type: "receiver.refused", Level: lvl, Tenant: v.Tenant, TopologyID: v.TopologyID, ComponentID: v.ComponentID,
			Source: clientIP(r), Message: fmt.Sprintf("receiver %s triggered: %v", v.Name, err), Data: map[string]any{"receiver_id": v.ID}})
		return err
	}
	_ = s.DB.Emit(ctx, model.Event{Type: "receiver.trigger", Tenant: v.Tenant, TopologyID: v.TopologyID, ComponentID: v.ComponentID,
		ActionID: res.ActionID, Source: clientIP(r), Message: fmt.Sprintf("receiver %s triggered %s: %s", v.Name, v.Action, res.Decision.Reason),
		Data: map[string]any{"receiver_id": v.ID}})
	writeJSON(w, http.StatusAccepted, TriggerAccepted{Action: actionRef(res.ActionID), Decision: res.Decision, QueuedBehind: res.Queued})
	return nil
}
