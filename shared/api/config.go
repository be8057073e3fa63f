package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/gitrepo"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/stages"
	"github.com/straas/straas/shared/store"
)

// The configuration management API (seed 000 §4.1.1.2), applying configuration to a
// component (§4.1.1.3), component upgrades, and the admins' access to the script repo.
// Permissions follow §4.1.2 rule 3: admins do everything; a user reads master's
// application defaults and his own topologies' branches, changes only the user-changeable
// keys of user.json there, and tags only those branches. Another user's branch is "not
// found" (the ScopeBranch middleware).

// ConfigRepos is what the configuration routes need of the config and script repos.
type ConfigRepos interface {
	Read(ctx context.Context, ref, p string) (gitrepo.Entry, error)
	WriteFile(ctx context.Context, branch, p string, content []byte, message string, author gitrepo.Author) (string, error)
	AuthorizeWrite(ctx context.Context, a gitrepo.Access, branch, p string, content []byte) error
	Tags(ctx context.Context, branch string) ([]gitrepo.Tag, error)
	Tag(ctx context.Context, branch, tag string) (gitrepo.Tag, error)
	CreateTag(ctx context.Context, branch, tag, role, message string, author gitrepo.Author) (gitrepo.Tag, error)
	DeleteTag(ctx context.Context, branch, tag string) error
	ReadScripts(ctx context.Context, ref, p string) (gitrepo.Entry, error)
	CommitScripts(ctx context.Context, branch string, changes []gitrepo.Change, message string, author gitrepo.Author) (string, error)
	Verify(ctx context.Context) error
}

// ConfigPlanner computes what a configuration change would do (a dry run).
type ConfigPlanner interface {
	PlanConfigChange(ctx context.Context, in stages.ConfigChangeIn, opt stages.PlanOptions) (stages.ConfigPlan, error)
}

// configRepos and configPlanner find the backends of these routes. They are optional
// interfaces of the Catalog, so that a deployment wires them by handing the Server one
// value; one without them answers 503.
func (s *Server) configRepos() (ConfigRepos, error) {
	if c, ok := s.Catalog.(ConfigRepos); ok {
		return c, nil
	}
	return nil, errs.E(errs.Unavailable, "configuration", "this deployment has no configuration repository")
}

// configBranch is the config repos and the branch of the path's {ref}; with read, the
// caller must also be allowed to read that branch.
func (s *Server) configBranch(r *http.Request, read bool) (ConfigRepos, string, error) {
	repos, err := s.configRepos()
	if err != nil {
		return nil, "", err
	}
	branch, err := branchOf(r.PathValue("ref"))
	if err != nil {
		return nil, "", err
	}
	if read {
		if err := gitrepo.CheckRead(configAccess(r), branch, ""); err != nil {
			return nil, "", err
		}
	}
	return repos, branch, nil
}

func (s *Server) configPlanner() (ConfigPlanner, error) {
	if c, ok := s.Catalog.(ConfigPlanner); ok {
		return c, nil
	}
	return nil, errs.E(errs.Unavailable, "configuration", "this deployment cannot plan configuration changes")
}

// configRoutes are the routes of the config and script repos and of applying them.
func configRoutes() []Route {
	branch := Scope{Param: "ref", Kind: ScopeBranch}
	comp := Scope{Param: "id", Kind: ScopeComponent}
	pathParam := Param{Name: "path", Description: "a file or folder: service[/<file>] or app/<type>/<version>[/<file>]; empty (a trailing /) for the top folder",
		Example: "app/zookeeper/3.4.6/default.json"}
	tagParam := Param{Name: "tag", Description: "the tag as its user named it (the git tag is <role>&<branch>&<tag>)", Example: "v1"}
	branchOnly := Param{Name: "ref", Description: "a branch: master, or a topology's <name>@<az> (not a tag or commit)", Example: "master"}
	ignoreWindowsParam := Param{Name: "ignore_windows", In: "query", Type: "boolean", Example: "true",
		Description: "roll at once instead of in the component's next maintenance window (a change that rolls nodes is not urgent: " +
			"while the component's windows are closed it waits, and its action's stage config_change/wait_window says until when)"}
	applyParams := []Param{
		{Name: "ref", Description: "the config ref to apply: a branch, <branch>&<tag> (rollback: an earlier tag) or a commit (admins)", Example: "master"},
		{Name: "dry_run", In: "query", Type: "boolean", Description: "only say what would change on each node: the answer has the plan and no action, and nothing changes", Example: "true"},
		{Name: "restart", In: "query", Enum: []string{stages.RestartChanged, stages.RestartAll, stages.RestartNone},
			Description: "changed (default): restart nodes where a restart_required option changed; all: roll and restart every node; none: never restart (those nodes stay RESTART_REQUIRED)"},
		{Name: "parallel", In: "query", Type: "integer", Description: "how many nodes roll at once (default 1; a quorum type keeps a majority of its nodes up)"},
		ignoreWindowsParam,
	}
	return []Route{
		{Method: "GET", Pattern: Prefix + "/configurations/tree/{ref}/{path...}", Handler: (*Server).readConfig, Tag: "configurations", Scope: branch,
			Params: []Param{pathParam}, Response: ConfigEntry{},
			Summary:     "List a folder of the config repo, or get a file",
			Description: "ref is master, a topology's branch <name>@<az>, <branch>&<tag>, or (admins) a commit. Users read app/ of master and their own topologies' branches."},
		{Method: "PUT", Pattern: Prefix + "/configurations/tree/{ref}/{path...}", Handler: (*Server).writeConfig, Tag: "configurations", Scope: branch,
			Params: []Param{branchOnly, pathParam}, Request: "config_file", Response: ConfigWritten{},
			Summary: "Commit a file of the config repo (the author is the caller)",
			Description: "A JSON-ini file must pass service/ini_json.schema (400 naming the bad field). Users change only " +
				"app/<type>/<version>/user.json of their own topologies' branches, and there only the user-changeable keys (403 naming the others)."},
		{Method: "GET", Pattern: Prefix + "/configurations/tree/{ref}/tags", Handler: (*Server).listConfigTags, Tag: "configurations", Scope: branch,
			Params: []Param{branchOnly}, Response: ConfigTagList{}, Summary: "List the tags of a branch, oldest first"},
		{Method: "POST", Pattern: Prefix + "/configurations/tree/{ref}/tags", Handler: (*Server).createConfigTag, Tag: "configurations", Scope: branch,
			Params: []Param{branchOnly}, Request: "config_tag", Status: http.StatusCreated, Response: ConfigTagResponse{},
			Summary: "Tag the head of a branch", Description: "The git tag is user&<branch>&<tag> for users, admin&<branch>&<tag> for admins; a tag name is unique within its branch (409)."},
		{Method: "GET", Pattern: Prefix + "/configurations/tree/{ref}/tags/{tag}", Handler: (*Server).showConfigTag, Tag: "configurations", Scope: branch,
			Params: []Param{branchOnly, tagParam}, Response: ConfigTagResponse{}, Summary: "Show a tag of a branch"},
		{Method: "DELETE", Pattern: Prefix + "/configurations/tree/{ref}/tags/{tag}", Handler: (*Server).deleteConfigTag, Tag: "configurations", Scope: branch,
			Params: []Param{branchOnly, tagParam}, Status: http.StatusNoContent, Summary: "Delete a tag of a branch",
			Description: "Users delete only user tags of their own topologies' branches."},
		{Method: "PUT", Pattern: Prefix + "/components/{id}/tree/{ref}", Handler: (*Server).applyConfig, Tag: "configurations", Scope: comp,
			Params: applyParams, Status: http.StatusAccepted, Response: ConfigApplied{},
			Summary: "Apply a config ref to a component (rolling, node by node)",
			Description: "Starts the configuration-change workflow: pre-config with the current membership, then node by node pre_configure, " +
				"configure, restart where needed, validate; a failed validate stops the roll and the action names the node. " +
				"The answer carries the plan (the diff per node). With dry_run=true the answer has the plan and no action, and nothing changes. " +
				"A change that rolls nodes waits for the component's next maintenance window, if it declares any, unless ignore_windows=true."},
		{Method: "PUT", Pattern: Prefix + "/components/{id}", Handler: (*Server).updateComponent, Tag: "components", Scope: comp,
			Params:  []Param{ignoreWindowsParam},
			Request: "component_update", Status: http.StatusAccepted, Response: ComponentUpdated{},
			Summary: "Upgrade a component to another version",
			Description: "Rolls the component's nodes one at a time through install, configuration and validate at the new version (400 for a version the script repo does not have). " +
				"The roll waits for the component's next maintenance window, if it declares any, unless ignore_windows=true."},
		{Method: "GET", Pattern: Prefix + "/scripts/tree/{ref}/{path...}", Handler: (*Server).readScripts, Tag: "scripts", Admin: true,
			Params: []Param{{Name: "ref", Description: "a branch (master) or commit of the script repo", Example: "master"},
				{Name: "path", Description: "a file or folder of the script repo; empty (a trailing /) for the top folder", Example: "components/zookeeper.json"}},
			Summary: "List a folder of the script repo, or get a file", Response: ConfigEntry{}},
		{Method: "POST", Pattern: Prefix + "/scripts/commits", Handler: (*Server).commitScripts, Tag: "scripts", Admin: true,
			Request: "scripts_commit", Status: http.StatusCreated, Response: ScriptsCommitted{},
			Summary: "Commit files to the script repo in one commit (e.g. a new component type)",
			Description: "Component types, versions, scripts, pre-config data and puppet code are files of the script repo; " +
				"the catalog picks a commit up at once. The answer lists what the repos still lack (Verify)."},
	}
}

// ConfigEntry is a folder listing or a file of a repo.
type ConfigEntry struct {
	Path    string             `json:"path"`
	Ref     string             `json:"ref"`
	Commit  string             `json:"commit"`
	Type    string             `json:"type"` // file or folder
	Files   []gitrepo.FileInfo `json:"files,omitempty"`
	Content *string            `json:"content,omitempty"`
}

func entryView(e gitrepo.Entry) ConfigEntry {
	v := ConfigEntry{Path: e.Path, Ref: e.Ref, Commit: e.Commit, Type: e.Type, Files: e.Files}
	if e.Type == gitrepo.EntryFile {
		c := string(e.Content)
		v.Content = &c
	}
	return v
}

// ConfigWritten is the answer of a file write.
type ConfigWritten struct {
	Branch string `json:"branch"`
	Path   string `json:"path"`
	Commit string `json:"commit"`
}

// ConfigTagList is the answer of GET .../tags.
type ConfigTagList struct {
	Branch string        `json:"branch"`
	Tags   []gitrepo.Tag `json:"tags"`
}

// ConfigTagResponse is one tag.
type ConfigTagResponse struct {
	Tag gitrepo.Tag `json:"tag"`
}

// ConfigApplied is the answer of PUT /components/{id}/tree/{ref}: the action (unless a
// dry run) and the plan.
type ConfigApplied struct {
	Action *ActionRef        `json:"action,omitempty"`
	DryRun bool              `json:"dry_run"`
	Plan   stages.ConfigPlan `json:"plan"`
}

// ComponentUpdated is the answer of PUT /components/{id}.
type ComponentUpdated struct {
	Component model.Component   `json:"component"`
	Action    ActionRef         `json:"action"`
	Plan      stages.ConfigPlan `json:"plan"`
}

// ScriptsCommitted is the answer of POST /scripts/commits.
type ScriptsCommitted struct {
	Branch string `json:"branch"`
	Commit string `json:"commit"`
	Files  int    `json:"files"`
	// Problems are what Verify finds missing in the repos after the commit (e.g. a type's
	// default.json not yet in the config repo); empty when all is well.
	Problems []string `json:"problems"`
}

// configAccess is what the config repo's permission checks need of the caller.
func configAccess(r *http.Request) gitrepo.Access {
	_, _, owner := ScopedTopology(r)
	return gitrepo.Access{Admin: principal(r).Admin, Owner: owner}
}

// branchOf parses a path's ref that must name a branch.
func branchOf(ref string) (string, error) {
	p, err := gitrepo.ParseRef(ref)
	if err != nil {
		return "", err
	}
	if p.Commit != "" || p.Tag != "" {
		return "", errs.Invalidf("ref", "%q: name a branch, not a tag or commit", ref)
	}
	return p.Branch, nil
}

func author(r *http.Request) gitrepo.Author {
	p := principal(r)
	return gitrepo.Author{Name: p.UserName}
}

func (s *Server) readConfig(w http.ResponseWriter, r *http.Request) error {
	repos, err := s.configRepos()
	if err != nil {
		return err
	}
	ref, p := r.PathValue("ref"), r.PathValue("path")
	if err := gitrepo.CheckRead(configAccess(r), ref, p); err != nil {
		return err
	}
	e, err := repos.Read(r.Context(), ref, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, entryView(e))
	return nil
}

func (s *Server) writeConfig(w http.ResponseWriter, r *http.Request) error {
	repos, branch, err := s.configBranch(r, false)
	if err != nil {
		return err
	}
	ctx := r.Context()
	p := r.PathValue("path")
	var body struct {
		Content string `json:"content"`
		Message string `json:"message"`
	}
	if err := decodeConfigBody(r, &body); err != nil {
		return err
	}
	content := []byte(body.Content)
	if err := repos.AuthorizeWrite(ctx, configAccess(r), branch, p, content); err != nil {
		return err
	}
	commit, err := repos.WriteFile(ctx, branch, p, content, body.Message, author(r))
	if err != nil {
		return err
	}
	t, _, _ := ScopedTopology(r)
	s.event(r, model.Event{Type: "config.write", TopologyID: t.ID,
		Message: fmt.Sprintf("%s committed %s to branch %s (%s)", principal(r).UserName, p, branch, short10(commit))})
	writeJSON(w, http.StatusOK, ConfigWritten{Branch: branch, Path: strings.Trim(path.Clean("/"+p), "/"), Commit: commit})
	return nil
}

func (s *Server) listConfigTags(w http.ResponseWriter, r *http.Request) error {
	repos, branch, err := s.configBranch(r, true)
	if err != nil {
		return err
	}
	tags, err := repos.Tags(r.Context(), branch)
	if err != nil {
		return err
	}
	if tags == nil {
		tags = []gitrepo.Tag{}
	}
	writeJSON(w, http.StatusOK, ConfigTagList{Branch: branch, Tags: tags})
	return nil
}

func (s *Server) showConfigTag(w http.ResponseWriter, r *http.Request) error {
	repos, branch, err := s.configBranch(r, true)
	if err != nil {
		return err
	}
	t, err := repos.Tag(r.Context(), branch, r.PathValue("tag"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ConfigTagResponse{Tag: t})
	return nil
}

func (s *Server) createConfigTag(w http.ResponseWriter, r *http.Request) error {
	repos, branch, err := s.configBranch(r, false)
	if err != nil {
		return err
	}
	var body struct {
		Tag     string `json:"tag"`
		Message string `json:"message"`
	}
	if err := decodeConfigBody(r, &body); err != nil {
		return err
	}
	a := configAccess(r)
	if err := gitrepo.CheckTag(a, branch, a.TagRole()); err != nil {
		return err
	}
	t, err := repos.CreateTag(r.Context(), branch, body.Tag, a.TagRole(), body.Message, author(r))
	if err != nil {
		return err
	}
	st, _, _ := ScopedTopology(r)
	s.event(r, model.Event{Type: "config.tag", TopologyID: st.ID,
		Message: fmt.Sprintf("%s tagged %s of branch %s (%s)", principal(r).UserName, t.Name, branch, short10(t.Commit))})
	w.Header().Set("Location", Prefix+"/configurations/tree/"+branch+"/tags/"+t.Name)
	writeJSON(w, http.StatusCreated, ConfigTagResponse{Tag: t})
	return nil
}

func (s *Server) deleteConfigTag(w http.ResponseWriter, r *http.Request) error {
	repos, branch, err := s.configBranch(r, false)
	if err != nil {
		return err
	}
	ctx := r.Context()
	a := configAccess(r)
	if err := gitrepo.CheckRead(a, branch, ""); err != nil {
		return err
	}
	t, err := repos.Tag(ctx, branch, r.PathValue("tag"))
	if err != nil {
		return err
	}
	if err := gitrepo.CheckTag(a, branch, t.Role); err != nil {
		return err
	}
	if err := repos.DeleteTag(ctx, branch, t.Name); err != nil {
		return err
	}
	st, _, _ := ScopedTopology(r)
	s.event(r, model.Event{Type: "config.untag", TopologyID: st.ID,
		Message: fmt.Sprintf("%s deleted tag %s of branch %s", principal(r).UserName, t.Name, branch)})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// decodeConfigBody decodes a body the middleware has validated against its schema.
func decodeConfigBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		return errs.Invalidf("body", "not valid JSON: %v", err)
	}
	return nil
}

// applyConfig is PUT /components/{id}/tree/{ref}.
func (s *Server) applyConfig(w http.ResponseWriter, r *http.Request) error {
	planner, err := s.configPlanner()
	if err != nil {
		return err
	}
	ctx := r.Context()
	p := principal(r)
	c, crec, err := s.DB.Component(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	t, _, _ := ScopedTopology(r)
	ref := r.PathValue("ref")
	q := r.URL.Query()
	dryRun := false
	if v := q.Get("dry_run"); v != "" {
		if dryRun, err = strconv.ParseBool(v); err != nil {
			return errs.Invalidf("dry_run", "want true or false, got %q", v)
		}
	}
	ignoreWindows, err := boolParam(r, "ignore_windows")
	if err != nil {
		return err
	}
	in := stages.ConfigChangeIn{TopologyID: t.ID, ComponentID: c.ID, Ref: ref, Reason: stages.ReasonApply, Restart: q.Get("restart"),
		WaitForWindow: !ignoreWindows}
	if v := q.Get("parallel"); v != "" {
		if in.Parallel, err = strconv.Atoi(v); err != nil || in.Parallel < 1 {
			return errs.Invalidf("parallel", "want a number of nodes from 1 to %d, got %q", stages.MaxParallel, v)
		}
	}
	if err := in.Normalize(); err != nil {
		return err
	}
	pr, err := gitrepo.ParseRef(ref)
	if err != nil {
		return err
	}
	if !p.Admin {
		switch {
		case pr.Commit != "":
			return errs.Permissionf("only admins apply a commit; apply a branch or a tag")
		case pr.Branch != gitrepo.Master && pr.Branch != t.ConfigBranch:
			return errs.Permissionf("apply a ref of this topology's branch %s (or master), not %s", t.ConfigBranch, pr.Branch)
		}
	}
	plan, err := planner.PlanConfigChange(ctx, in, stages.PlanOptions{})
	if err != nil {
		return err
	}
	if dryRun {
		writeJSON(w, http.StatusAccepted, ConfigApplied{DryRun: true, Plan: plan})
		return nil
	}
	a, err := s.submitConfigChange(r, &t, &c, crec, in, "change_config", nil)
	if err != nil {
		return err
	}
	s.event(r, model.Event{Type: "component.apply_config", TopologyID: t.ID, ComponentID: c.ID, ActionID: a.ID,
		Message: fmt.Sprintf("%s asked to apply %s to component %s: %d nodes to roll", p.UserName, ref, c.Name, plan.ToRoll)})
	ar := actionRef(a.ID)
	writeJSON(w, http.StatusAccepted, ConfigApplied{Action: &ar, Plan: plan})
	return nil
}

// submitConfigChange starts a configuration change of c as an action of its own; mutate
// changes the component in the same atomic write (an upgrade's version).
func (s *Server) submitConfigChange(r *http.Request, t *model.Topology, c *model.Component, crec store.Record,
	in stages.ConfigChangeIn, kind string, mutate func(*model.Component)) (*model.Action, error) {
	if t.Status == model.StatusDeleting {
		return nil, errs.Conflictf("topology %s is being deleted", t.Name)
	}
	switch c.Status {
	case model.StatusActive, model.StatusDegraded:
	default:
		return nil, errs.Conflictf("component %s is %s: wait until it is ACTIVE (or DEGRADED) again", c.Name, c.Status)
	}
	p := principal(r)
	now := s.DB.Now()
	a := &model.Action{ID: db.NewID("act"), Kind: kind, Tenant: t.Tenant, User: p.UserID, TopologyID: t.ID, ComponentID: c.ID,
		Machine: stages.MachineConfigChange, CreatedAt: now}
	in.ActionID = a.ID
	a.Input, _ = json.Marshal(in)
	nc := *c
	nc.Status, nc.UpdatedAt = model.StatusUpdating, now
	if mutate != nil {
		mutate(&nc)
	}
	cr, err := db.ComponentRecord(&nc)
	if err != nil {
		return nil, err
	}
	cr.Version = crec.Version
	if err := s.Launcher.Submit(r.Context(), a, store.Put(cr, store.AtVersion)); err != nil {
		if errs.Is(err, errs.Conflict) {
			return nil, errs.Conflictf("component %s changed meanwhile; retry", c.Name)
		}
		return nil, err
	}
	*c = nc
	return a, nil
}

// updateComponent is PUT /components/{id}: today, a version change (an upgrade).
func (s *Server) updateComponent(w http.ResponseWriter, r *http.Request) error {
	planner, err := s.configPlanner()
	if err != nil {
		return err
	}
	ctx := r.Context()
	c, crec, err := s.DB.Component(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	t, _, _ := ScopedTopology(r)
	var body struct {
		Version string `json:"version"`
	}
	if err := decodeConfigBody(r, &body); err != nil {
		return err
	}
	types, err := s.Catalog.ComponentTypes(ctx)
	if err != nil {
		return err
	}
	var ct *model.ComponentType
	for i := range types {
		if types[i].Type == c.Type {
			ct = &types[i]
		}
	}
	switch {
	case ct == nil:
		return errs.Invalidf("version", "component type %q is no longer in the script repo", c.Type)
	case !ct.HasVersion(body.Version):
		return errs.Invalidf("version", "unknown version %q of %s (versions: %s)", body.Version, c.Type, strings.Join(ct.Versions, ", "))
	}
	ignoreWindows, err := boolParam(r, "ignore_windows")
	if err != nil {
		return err
	}
	in := stages.ConfigChangeIn{TopologyID: t.ID, ComponentID: c.ID, Reason: stages.ReasonUpgrade, Restart: stages.RestartChanged,
		WaitForWindow: !ignoreWindows}
	plan, err := planner.PlanConfigChange(ctx, in, stages.PlanOptions{Version: body.Version})
	if err != nil {
		if errs.Is(err, errs.NotFound) || errs.Is(err, errs.Invalid) {
			return &errs.Error{Kind: errs.Invalid, Field: "version", Msg: fmt.Sprintf("cannot configure %s %s: %v", c.Type, body.Version, err)}
		}
		return err
	}
	if body.Version == c.Version && !installs(&plan) {
		return errs.Invalidf("version", "component %s is at version %s already", c.Name, c.Version)
	}
	from := c.Version
	a, err := s.submitConfigChange(r, &t, &c, crec, in, "upgrade_component", func(x *model.Component) { x.Version = body.Version })
	if err != nil {
		return err
	}
	s.event(r, model.Event{Type: "component.upgrade", TopologyID: t.ID, ComponentID: c.ID, ActionID: a.ID,
		Message: fmt.Sprintf("%s asked to upgrade component %s from %s to %s", principal(r).UserName, c.Name, from, body.Version)})
	writeJSON(w, http.StatusAccepted, ComponentUpdated{Component: c, Action: actionRef(a.ID), Plan: plan})
	return nil
}

// installs reports whether a plan installs a version on some node: the same version
// again finishes an upgrade that stopped half way.
func installs(p *stages.ConfigPlan) bool {
	for _, n := range p.Nodes {
		if n.Install != "" && n.Roll {
			return true
		}
	}
	return false
}

func (s *Server) readScripts(w http.ResponseWriter, r *http.Request) error {
	repos, err := s.configRepos()
	if err != nil {
		return err
	}
	e, err := repos.ReadScripts(r.Context(), r.PathValue("ref"), r.PathValue("path"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, entryView(e))
	return nil
}

func (s *Server) commitScripts(w http.ResponseWriter, r *http.Request) error {
	repos, err := s.configRepos()
	if err != nil {
		return err
	}
	ctx := r.Context()
	var body struct {
		Branch  string `json:"branch"`
		Message string `json:"message"`
		Files   []struct {
			Path       string `json:"path"`
			Content    string `json:"content"`
			Executable *bool  `json:"executable"`
			Delete     bool   `json:"delete"`
		} `json:"files"`
	}
	if err := decodeConfigBody(r, &body); err != nil {
		return err
	}
	if body.Branch == "" {
		body.Branch = gitrepo.Master
	}
	if err := gitrepo.ValidateBranch(body.Branch); err != nil {
		return err
	}
	seen := map[string]int{}
	changes := make([]gitrepo.Change, 0, len(body.Files))
	for i, f := range body.Files {
		field := fmt.Sprintf("files[%d].path", i)
		p := strings.TrimPrefix(f.Path, "./")
		clean := path.Clean(p)
		switch {
		case p == "" || clean != p || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "../") || p == "..":
			return errs.Invalidf(field, "%q: a relative path without . or .. parts", f.Path)
		case p == ".git" || strings.HasPrefix(p, ".git/"):
			return errs.Invalidf(field, "%q: not a file of the repository", f.Path)
		}
		if j, dup := seen[p]; dup {
			return errs.Invalidf(field, "%q repeats files[%d]", f.Path, j)
		}
		seen[p] = i
		ch := gitrepo.Change{Path: p, Content: []byte(f.Content), Delete: f.Delete}
		exec := strings.HasSuffix(p, ".sh") || strings.HasPrefix(p, "guestcmds/")
		if f.Executable != nil {
			exec = *f.Executable
		}
		if !f.Delete {
			ch.Mode = filemode.Regular
			if exec {
				ch.Mode = filemode.Executable
			}
		}
		changes = append(changes, ch)
	}
	if body.Message == "" {
		body.Message = fmt.Sprintf("Update %d files", len(changes))
	}
	commit, err := repos.CommitScripts(ctx, body.Branch, changes, body.Message, author(r))
	if err != nil {
		return err
	}
	out := ScriptsCommitted{Branch: body.Branch, Commit: commit, Files: len(changes), Problems: []string{}}
	if verr := repos.Verify(ctx); verr != nil {
		if u, ok := verr.(interface{ Unwrap() []error }); ok {
			for _, e := range u.Unwrap() {
				out.Problems = append(out.Problems, e.Error())
			}
		} else {
			out.Problems = append(out.Problems, verr.Error())
		}
	}
	s.event(r, model.Event{Type: "scripts.commit",
		Message: fmt.Sprintf("%s committed %d files to the script repo's %s (%s)", principal(r).UserName, len(changes), body.Branch, short10(commit))})
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func short10(h string) string {
	if len(h) > 10 {
		return h[:10]
	}
	return h
}
