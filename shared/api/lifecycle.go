package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/straas/straas/shared/blob"
	"github.com/straas/straas/shared/cmdb"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/stages"
	"github.com/straas/straas/shared/store"
)

// Lifecycle operations (seed 000 §4.1.1 and the workflows of §4.3.3–4.3.7): flexup,
// flexdown, replace, services, guest commands, files, storage, script sync, health-check
// status, dependencies, the legacy routes and the CMS. Mutating calls that take time
// start an action (202); guest commands, storage, status and the CMS answer at once.

// Lifecycle is what the lifecycle routes need beyond the Server's core dependencies. A
// Server without it answers those routes 503.
type Lifecycle struct {
	Blob    blob.Store // the storage API's objects (a directory embedded, S3 on AWS)
	CMDB    cmdb.CMDB  // where the CMS routes publish topologies' models
	Scripts Scripts    // component types and guest commands of the script repo
	// Files gives agents a URL to fetch a stored object from without credentials.
	Files FileURLs
	// MaxUpload bounds an uploaded object (default 256 MiB).
	MaxUpload int64
	// CommandTimeout is how long a guest command waits for nodes by default (25 s, within
	// API Gateway's 29 s); a
	// request may ask for up to MaxCommandTimeout.
	CommandTimeout time.Duration
}

// MaxCommandTimeout bounds the per-node timeout a guest command may ask for.
const MaxCommandTimeout = 10 * time.Minute

// Scripts is what the lifecycle routes read of the script repo.
type Scripts interface {
	TypeInfo(ctx context.Context, typ string) (stages.TypeInfo, error)
	// GuestCommands lists the guest commands by group ("zk-cmd": ["srvr", ...]).
	GuestCommands(ctx context.Context) (map[string][]string, error)
}

// FileURLs makes URLs agents fetch stored objects from (a signed URL: agents hold no
// credentials).
type FileURLs interface {
	URL(key string, ttl time.Duration) (string, error)
}

func (s *Server) lifecycle() (*Lifecycle, error) {
	if s.Lifecycle == nil {
		return nil, errs.E(errs.Unavailable, "lifecycle", "this deployment has no lifecycle operations configured")
	}
	lc := s.Lifecycle
	if lc.MaxUpload == 0 {
		lc.MaxUpload = 256 << 20
	}
	if lc.CommandTimeout == 0 {
		lc.CommandTimeout = 25 * time.Second
	}
	return lc, nil
}

// lifecycleRoutes are the routes of issue 5: nodes, component operations, guest
// commands, storage, files and scripts, the legacy routes and the CMS.
func lifecycleRoutes() []Route {
	node := Scope{Param: "id", Kind: ScopeNode}
	comp := Scope{Param: "id", Kind: ScopeComponent}
	topo := Scope{Param: "id", Kind: ScopeTopology}
	force := Param{Name: "force", In: "query", Type: "boolean", Example: "false",
		Description: "remove or replace without draining first (a node whose agent cannot answer)"}
	service := Param{Name: "service", In: "query", Example: "zookeeper",
		Description: "one service of the node's role (default: every service of its role)"}
	storage := []Param{
		{Name: "storage_type", Description: "the storage namespace: swift, s3 or local (one blob store holds them all)", Example: "swift"},
		{Name: "dc", Description: "the region (an availability zone)", Example: "az1"},
		{Name: "path", Description: "an object path; for GET a prefix (\"\" lists the region)", Example: "jars/wordcount.jar"},
	}
	routes := []Route{
		{Method: "GET", Pattern: Prefix + "/nodes/{id}", Handler: (*Server).showNode, Tag: "nodes", Scope: node,
			Summary: "Show a node with its liveness", Response: NodeResponse{}},
		{Method: "DELETE", Pattern: Prefix + "/nodes/{id}", Handler: (*Server).flexdown, Tag: "nodes", Scope: node,
			Params: []Param{force}, Status: http.StatusAccepted, Response: NodeAccepted{},
			Summary: "Remove a node from its component (flexdown)",
			Description: "Drains the node first when its type has a drain command (kafka moves the broker's partitions), deletes it from Nova " +
				"and the store, then reconfigures the components whose configuration lists it. 409 with the reason when the component would " +
				"lose its quorum (zookeeper), go below its type's minimum, lose the last node of a role others list, or when the node holds data " +
				"nothing else holds."},
		{Method: "PUT", Pattern: Prefix + "/nodes/{id}", Handler: (*Server).replaceNode, Tag: "nodes", Scope: node,
			Params: []Param{force}, Status: http.StatusAccepted, Response: NodeAccepted{},
			Summary: "Replace a node: a new server, the same identity and settings",
			Description: "Keeps the node's id, index, name, role, cname and configuration ref (so its broker id or myid); then the nodes " +
				"that must notice its new address are reconfigured — for zookeeper one member at a time, followers before the leader."},
		{Method: "POST", Pattern: Prefix + "/nodes/{id}/services", Handler: (*Server).nodeServices, Tag: "nodes", Scope: node,
			Params: []Param{service}, Status: http.StatusAccepted, Response: NodeAccepted{}, Summary: "Start the node's services"},
		{Method: "DELETE", Pattern: Prefix + "/nodes/{id}/services", Handler: (*Server).nodeServices, Tag: "nodes", Scope: node,
			Params: []Param{service, force}, Status: http.StatusAccepted, Response: NodeAccepted{}, Summary: "Stop the node's services",
			Description: "409 when stopping would leave a quorum type without a majority of its members running (force=true to insist)."},
		{Method: "PUT", Pattern: Prefix + "/nodes/{id}/services", Handler: (*Server).nodeServices, Tag: "nodes", Scope: node,
			Params: []Param{service, force}, Status: http.StatusAccepted, Response: NodeAccepted{}, Summary: "Restart the node's services"},
		{Method: "POST", Pattern: Prefix + "/nodes/{id}/commands", Handler: (*Server).nodeCommand, Tag: "commands", Scope: node,
			Response: NodeCommandResult{}, Summary: "Run a guest command on a node and return its exit status and output",
			Description: "Body {\"command\": \"<group>/<name>\", \"args\": \"...\", \"timeout_seconds\": 25}. An unknown command is a 400 that lists " +
				"every command (assist-cmd/list lists them too); admin-cmd commands are for admins. Output is bounded (64 KiB)."},
		{Method: "POST", Pattern: Prefix + "/nodes/files", Handler: (*Server).putFiles, Tag: "nodes",
			Status: http.StatusAccepted, Response: FanOutAccepted{}, Summary: "Put a stored file on nodes",
			Description: "Body {\"scope\": \"topology|component|node\", \"items\": [ids], \"container\", \"filename\", \"target_path\", " +
				"\"storage_type\" (default swift), \"region\" (default the topology's zone)}: every reachable node fetches " +
				"<storage_type>/regions/<region>/<container>/<filename> from the storage API and writes it to target_path."},
		{Method: "PUT", Pattern: Prefix + "/nodes/scripts", Handler: (*Server).syncScripts, Tag: "nodes",
			Status: http.StatusAccepted, Response: FanOutAccepted{}, Summary: "Sync the script repo to nodes",
			Description: "Body {\"scope\": \"topology|component|node\", \"items\": [ids], \"apply\": false}: agents fetch the script repo at its " +
				"current commit; with apply, a configuration change of each component follows (seed 000 §4.3.7)."},
		{Method: "POST", Pattern: Prefix + "/components/{id}", Handler: (*Server).flexup, Tag: "components", Scope: comp,
			Status: http.StatusAccepted, Response: FlexupAccepted{}, Summary: "Add nodes to a component (flexup)",
			Description: "Body {\"count\": 1, \"role\": \"supervisor\"} (both optional; role picks the submodule's settings, default: the " +
				"type's scalable role). A new node that fails is FAILED and reported; the others join, and the components whose " +
				"configuration lists the members are reconfigured (zookeeper's server list, kafka's zk_list)."},
		{Method: "POST", Pattern: Prefix + "/components/{id}/commands", Handler: (*Server).componentCommand, Tag: "commands", Scope: comp,
			Response: GroupCommandResult{}, Summary: "Run a guest command on every node of a component",
			Description: "One outcome per node; timeout_seconds bounds each node's answer, and the nodes that answered keep their results."},
		{Method: "POST", Pattern: Prefix + "/topologies/{id}/commands", Handler: (*Server).topologyCommand, Tag: "commands", Scope: topo,
			Response: GroupCommandResult{}, Summary: "Run a guest command on every node of a topology"},
		{Method: "POST", Pattern: Prefix + "/components/{id}/status", Handler: (*Server).componentStatus, Tag: "components", Scope: comp,
			Response: StatusReport{}, Summary: "Write back a health check's verdict on a component's nodes",
			Description: "Body {\"<node name>\": \"ACTIVE|INACTIVE|SKIPPED|UNREACHABLE\"}: INACTIVE marks the node FAILED, UNREACHABLE " +
				"UNREACHABLE, ACTIVE restores a node the checks had flagged; nodes in the middle of an operation are left alone."},
		{Method: "GET", Pattern: Prefix + "/components/{id}/dependencies", Handler: (*Server).componentDependencies, Tag: "components", Scope: comp,
			Response: Dependencies{}, Summary: "What a component depends on and what depends on it"},
		{Method: "POST", Pattern: Prefix + "/storage/{storage_type}/regions/{dc}/{path...}", Handler: (*Server).putObject, Tag: "storage",
			Params: storage, RequestMedia: "application/octet-stream", Status: http.StatusCreated, Response: StoredObject{},
			Summary: "Upload a binary file (the whole body is the file)"},
		{Method: "GET", Pattern: Prefix + "/storage/{storage_type}/regions/{dc}/{path...}", Handler: (*Server).listObjects, Tag: "storage",
			Params: append(append([]Param{}, storage...), Param{Name: "urls", In: "query", Type: "boolean", Example: "false",
				Description: "give each object a signed download URL, valid for an hour, that needs no token"}),
			Response: ObjectList{}, Summary: "List the files under a path"},
		{Method: "DELETE", Pattern: Prefix + "/storage/{storage_type}/regions/{dc}/{path...}", Handler: (*Server).deleteObject, Tag: "storage",
			Params: storage, Status: http.StatusNoContent, Summary: "Delete a file (deleting one that is not there is no error, as in S3)"},
		{Method: "GET", Pattern: "/straas/{$}", Handler: (*Server).topologyPage, Tag: "legacy",
			Params: topologyListParams, Response: TopologyList{}, Summary: "Legacy: the topologies of the caller's tenant (as GET /straas/v1.0/topologies)"},
		{Method: "GET", Pattern: "/straas/{topology_name}", Handler: (*Server).legacyTopology, Tag: "legacy",
			// A name@az is resolved (and checked) like any topology branch; a bare name is
			// looked up by the handler among the topologies the caller may see.
			Scope:    Scope{Param: "topology_name", Kind: ScopeBranch},
			Params:   []Param{{Name: "availability_zone", In: "query", Description: "the zone, when the name exists in several", Example: "az1"}},
			Response: TopologyResponse{}, Summary: "Legacy: a topology by name, or name@az (as GET /straas/v1.0/topologies/{id})"},
		{Method: "POST", Pattern: "/straas/guestcmd/{component_id}/{node_name}", Handler: (*Server).legacyGuestCmd, Tag: "legacy",
			Scope:    Scope{Param: "component_id", Kind: ScopeComponent},
			Params:   []Param{{Name: "node_name", Description: "the node's name within the component", Example: "demo-1-zk-1"}},
			Response: NodeCommandResult{}, Summary: "Legacy: run a guest command on a node named within a component (as POST /nodes/{id}/commands)"},
		{Method: "POST", Pattern: "/straas/stormjar/{storm_component_id}", Handler: (*Server).stormJar, Tag: "legacy",
			Scope: Scope{Param: "storm_component_id", Kind: ScopeComponent}, Response: StormJarResult{},
			Summary: "Legacy: submit a storm topology jar (storm jar on nimbus)",
			Description: "Body {\"storage_url\", \"container\", \"filename\", \"main_class\", \"topology_name\", \"args\": []}: nimbus fetches the jar " +
				"(from storage_url/container/filename, or from the storage API when storage_url is empty) and runs storm-cmd/storm_jar."},
	}
	for _, base := range []string{"topologies", "typologies"} {
		p := Prefix + "/" + base + "/{id}/cms"
		tag := "cms"
		routes = append(routes,
			Route{Method: "POST", Pattern: p, Handler: (*Server).createCMS, Tag: tag, Scope: topo, Status: http.StatusCreated, Response: CMSResponse{},
				Summary: "Create the topology's model in the CMDB (409 if it has one)"},
			Route{Method: "GET", Pattern: p, Handler: (*Server).showCMS, Tag: tag, Scope: topo, Response: CMSResponse{},
				Summary: "Read the topology's model from the CMDB"},
			Route{Method: "PUT", Pattern: p, Handler: (*Server).syncCMS, Tag: tag, Scope: topo, Response: CMSResponse{},
				Summary: "Re-sync the topology's model in the CMDB from straas's records"},
			Route{Method: "DELETE", Pattern: p, Handler: (*Server).deleteCMS, Tag: tag, Scope: topo, Status: http.StatusNoContent,
				Summary: "Remove the topology's model from the CMDB"},
		)
	}
	return routes
}

// --- answers -------------------------------------------------------------------------

// NodeResponse is the answer of GET /nodes/{id}.
type NodeResponse struct {
	Node NodeView `json:"node"`
}

// NodeAccepted is the answer of a call that starts an action on a node.
type NodeAccepted struct {
	Node   model.Node `json:"node"`
	Action ActionRef  `json:"action"`
}

// FlexupAccepted is the answer of POST /components/{id}.
type FlexupAccepted struct {
	Component model.Component `json:"component"`
	Count     int             `json:"count"`
	Role      string          `json:"role"`
	Action    ActionRef       `json:"action"`
}

// FanOutAccepted is the answer of the files and scripts routes.
type FanOutAccepted struct {
	Action     ActionRef `json:"action"`
	Nodes      int       `json:"nodes"`                 // reachable nodes of the scope
	Skipped    int       `json:"skipped"`               // nodes not reachable now (being created, deleted, FAILED)
	Object     string    `json:"object,omitempty"`      // files: the storage path fetched
	ScriptsRef string    `json:"scripts_ref,omitempty"` // scripts: the commit synced
}

// --- shared helpers --------------------------------------------------------------------

// scopedAs decodes the record a scoped route addresses (loaded by the middleware).
func scopedAs[T any](r *http.Request) (T, store.Record, error) {
	var v T
	sc, ok := r.Context().Value(scopeKey{}).(*scoped)
	if !ok || sc.Record.ID == "" {
		return v, store.Record{}, errs.E(errs.Other, "scope", "route has no scoped record")
	}
	err := store.Decode(sc.Record, &v)
	return v, sc.Record, err
}

// decodeStrict decodes a JSON body into v, rejecting unknown fields (400 naming it). An
// empty body leaves v as it is when allowEmpty.
func (s *Server) decodeStrict(r *http.Request, v any, allowEmpty bool) error {
	raw, err := s.readBody(r)
	if err != nil {
		if allowEmpty && errs.FieldOf(err) == "body" && r.ContentLength <= 0 {
			var e *errs.Error
			if errors.As(err, &e) && strings.HasPrefix(e.Msg, "empty") {
				return nil
			}
		}
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &ute):
			return errs.Invalidf(ute.Field, "want %s, got %s", ute.Type, ute.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return errs.Invalidf(f, "unknown field")
		}
		return errs.Invalidf("body", "not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errs.Invalidf("body", "more than one JSON value")
	}
	return nil
}

// busy says why a component cannot take another operation now, naming the action that
// holds it; nil when it is free.
func (s *Server) busy(ctx context.Context, t *model.Topology, c *model.Component, allowed ...string) error {
	if t.Status == model.StatusDeleting || t.Status == model.StatusCreating {
		return errs.Conflictf("topology %s is %s (action %s)", t.Name, t.Status, t.Action)
	}
	if l, _, err := stages.LoadLock(ctx, s.DB, c.ID); err == nil {
		if a, _, err := s.DB.Action(ctx, l.ActionID); err == nil && !ended(a.Status) {
			return errs.Conflictf("component %s is busy: action %s (%s) is running", c.Name, a.ID, a.Kind)
		}
	}
	for _, st := range allowed {
		if c.Status == st {
			return nil
		}
	}
	if a, ok := s.runningAction(ctx, t.ID, c.ID); ok {
		return errs.Conflictf("component %s is %s: action %s (%s) is running", c.Name, c.Status, a.ID, a.Kind)
	}
	return errs.Conflictf("component %s is %s; this operation needs it %s", c.Name, c.Status, strings.Join(allowed, " or "))
}

func ended(status string) bool {
	return status == model.ActionSucceeded || status == model.ActionFailed || status == model.ActionCancelled
}

// runningAction finds the most recent unfinished action of a topology on a component
// (or on the whole topology).
func (s *Server) runningAction(ctx context.Context, topologyID, componentID string) (model.Action, bool) {
	recs, _, err := s.DB.S.List(ctx, db.KindAction, store.Query{Index: store.IdxTopology, Part: topologyID, Limit: 1000})
	if err != nil {
		return model.Action{}, false
	}
	for i := len(recs) - 1; i >= 0; i-- {
		var a model.Action
		if store.Decode(recs[i], &a) != nil || ended(a.Status) {
			continue
		}
		if a.ComponentID == componentID || a.ComponentID == "" {
			return a, true
		}
	}
	return model.Action{}, false
}

// submitOp starts a lifecycle action on a component: the component's lock, the action
// and (when setStatus) the component's UPDATING status are written at once, so that two
// operations never change a component together (409 naming the one that runs).
func (s *Server) submitOp(r *http.Request, t *model.Topology, c *model.Component, crec store.Record, a *model.Action, in stages.OpIn, setStatus bool) error {
	ctx := r.Context()
	p := principal(r)
	now := s.DB.Now()
	a.ID, a.Tenant, a.User, a.TopologyID, a.ComponentID, a.CreatedAt = db.NewID("act"), t.Tenant, p.UserID, t.ID, c.ID, now
	in.ActionID, in.TopologyID, in.ComponentID = a.ID, t.ID, c.ID
	a.Input, _ = json.Marshal(in)
	for attempt := 0; attempt < 2; attempt++ {
		lock, err := stages.LockOp(stages.Lock{ComponentID: c.ID, ActionID: a.ID, Kind: a.Kind, At: now})
		if err != nil {
			return err
		}
		ops := []store.Op{lock}
		if setStatus {
			nc := *c
			nc.Status, nc.UpdatedAt = model.StatusUpdating, now
			cr, err := db.ComponentRecord(&nc)
			if err != nil {
				return err
			}
			cr.Version = crec.Version
			ops = append(ops, store.Put(cr, store.AtVersion))
		}
		err = s.Launcher.Submit(ctx, a, ops...)
		if err == nil {
			return nil
		}
		if !errs.Is(err, errs.Conflict) {
			return err
		}
		// Who holds the lock? A lock whose action ended is stale (a crash between the
		// action's end and the release): take it over once.
		l, lrec, lerr := stages.LoadLock(ctx, s.DB, c.ID)
		if lerr != nil {
			return errs.Conflictf("component %s changed meanwhile; retry", c.Name)
		}
		held, _, herr := s.DB.Action(ctx, l.ActionID)
		if herr == nil && !ended(held.Status) {
			return errs.Conflictf("component %s is busy: action %s (%s) is running", c.Name, held.ID, held.Kind)
		}
		if err := s.DB.S.Write(ctx, store.Del(stages.KindComponentLock, c.ID, store.AtVersion, lrec.Version)); err != nil && !errs.Is(err, errs.Conflict) {
			return err
		}
	}
	return errs.Conflictf("component %s changed meanwhile; retry", c.Name)
}

// typeInfo reads a component type's lifecycle facts.
func (s *Server) typeInfo(ctx context.Context, lc *Lifecycle, typ string) (stages.TypeInfo, error) {
	ti, err := lc.Scripts.TypeInfo(ctx, typ)
	if err != nil {
		return ti, fmt.Errorf("component type %s: %w", typ, err)
	}
	return ti, nil
}
