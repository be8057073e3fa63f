package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/stages"
)

// Guest commands (seed 000 §4.4.3) answer synchronously: the API sends the command to
// each node through a batch without a task token and polls the batch until every node
// answered or the timeout passed. Nodes that answered keep their results when others
// time out.

// CommandRequest is the body of the guest command routes.
type CommandRequest struct {
	Command        string `json:"command"`
	Args           string `json:"args,omitempty"`
	TimeoutSeconds int    `json:"timeout_seconds,omitempty"`
}

// NodeOutcome is one node's answer to a command.
type NodeOutcome struct {
	NodeID     string     `json:"node_id"`
	Name       string     `json:"name"`
	Status     string     `json:"status"`      // ok, failed, timeout or skipped
	ExitStatus int        `json:"exit_status"` // -1 when the node did not answer
	Output     string     `json:"output"`
	Error      string     `json:"error,omitempty"`
	Truncated  bool       `json:"truncated,omitempty"`
	AnsweredAt *time.Time `json:"answered_at,omitempty"`
}

// Outcome statuses.
const (
	OutcomeOK      = "ok"
	OutcomeFailed  = "failed"
	OutcomeTimeout = "timeout"
	OutcomeSkipped = "skipped"
)

// NodeCommandResult is the answer of a guest command on one node.
type NodeCommandResult struct {
	Command string      `json:"command"`
	Args    string      `json:"args"`
	Result  NodeOutcome `json:"result"`
}

// GroupCommandResult is the answer of a guest command on a component or topology.
type GroupCommandResult struct {
	Command  string        `json:"command"`
	Args     string        `json:"args"`
	Results  []NodeOutcome `json:"results"`
	OK       int           `json:"ok"`
	Failed   int           `json:"failed"`
	TimedOut int           `json:"timed_out"`
	Skipped  int           `json:"skipped"`
}

// maxArgs bounds a guest command's arguments.
const maxArgs = 4096

// parseCommand reads and checks a command request: the command must be one of the
// script repo's (400 listing them all otherwise), admin-cmd is for admins.
func (s *Server) parseCommand(r *http.Request, lc *Lifecycle) (CommandRequest, time.Duration, error) {
	var req CommandRequest
	if err := s.decodeStrict(r, &req, false); err != nil {
		return req, 0, err
	}
	if len(req.Args) > maxArgs || strings.ContainsAny(req.Args, "\x00\n\r") {
		return req, 0, errs.Invalidf("args", "at most %d bytes on one line", maxArgs)
	}
	timeout := lc.CommandTimeout
	if req.TimeoutSeconds < 0 || time.Duration(req.TimeoutSeconds)*time.Second > MaxCommandTimeout {
		return req, 0, errs.Invalidf("timeout_seconds", "want 1 to %d", int(MaxCommandTimeout/time.Second))
	}
	if req.TimeoutSeconds > 0 {
		timeout = time.Duration(req.TimeoutSeconds) * time.Second
	}
	if err := s.checkGuestCommand(r.Context(), lc, principal(r).Admin, req.Command); err != nil {
		return req, 0, err
	}
	return req, timeout, nil
}

func (s *Server) checkGuestCommand(ctx context.Context, lc *Lifecycle, admin bool, command string) error {
	cmds, err := lc.Scripts.GuestCommands(ctx)
	if err != nil {
		return err
	}
	group, name, ok := strings.Cut(command, "/")
	if !ok || !contains(cmds[group], name) {
		var all []string
		for _, g := range sortedKeys(cmds) {
			names := append([]string(nil), cmds[g]...)
			sort.Strings(names)
			for _, n := range names {
				all = append(all, g+"/"+n)
			}
		}
		what := "unknown guest command"
		if command == "" {
			what = "no guest command"
		}
		return errs.Invalidf("command", "%s %q; the script repo has: %s", what, command, strings.Join(all, ", "))
	}
	if group == "admin-cmd" && !admin {
		return errs.Permissionf("%s is an admin command", command)
	}
	return nil
}

// runSync sends each node the command mk makes and waits up to timeout for the
// answers. Nodes that cannot take commands are skipped.
func (s *Server) runSync(ctx context.Context, stage string, nodes []model.Node, timeout time.Duration,
	mk func(n *model.Node) *agentproto.Command) ([]NodeOutcome, error) {
	opID := db.NewID("cmd")
	id := batch.ID(opID, "", stage)
	deadline := s.DB.Now().Add(timeout)
	sp := batch.Spec{ID: id, ActionID: opID, Stage: stage, Tolerate: true, OnOK: batch.Keep, OnFail: batch.Keep, Timeout: timeout}
	out := make([]NodeOutcome, 0, len(nodes))
	index := map[string]int{}
	for i := range nodes {
		n := &nodes[i]
		index[n.ID] = len(out)
		o := NodeOutcome{NodeID: n.ID, Name: n.Name, Status: OutcomeTimeout, ExitStatus: -1}
		if !stages.Reachable(n) {
			o.Status, o.Error = OutcomeSkipped, fmt.Sprintf("node is %s: its agent cannot take commands", n.Status)
			out = append(out, o)
			continue
		}
		out = append(out, o)
		cmd := mk(n)
		cmd.ID, cmd.Deadline = batch.CommandID(id, n.ID), deadline
		sp.Command = cmd.Kind
		sp.Targets = append(sp.Targets, batch.Target{NodeID: n.ID, NodeName: n.Name, Command: cmd})
	}
	if len(sp.Targets) == 0 {
		return out, nil
	}
	if _, err := s.Batches.Open(ctx, sp); err != nil {
		return nil, err
	}
	wait := 5 * time.Millisecond
	until := time.Now().Add(timeout)
	for {
		b, err := s.Batches.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if b.Completed || time.Now().After(until) {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(wait, time.Until(until))):
		}
		wait = min(wait*2, 200*time.Millisecond)
	}
	entries, err := s.Batches.Entries(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		i, ok := index[e.NodeID]
		if !ok || e.Status == batch.Pending {
			if ok {
				out[i].Error = fmt.Sprintf("no answer within %s", timeout)
			}
			continue
		}
		o := &out[i]
		at := e.At
		o.AnsweredAt, o.ExitStatus, o.Error = &at, e.ExitStatus, e.Error
		o.Output, o.Truncated = bound(e.Output)
		o.Status = OutcomeOK
		if e.Status != batch.OK {
			o.Status = OutcomeFailed
			if e.Code == "TIMEOUT" {
				o.Status = OutcomeTimeout
			}
		}
	}
	return out, nil
}

// bound cuts output at agentproto.MaxOutput.
func bound(s string) (string, bool) {
	if len(s) <= agentproto.MaxOutput {
		return s, false
	}
	return s[:agentproto.MaxOutput], true
}

func guestCmd(req CommandRequest, c *model.Component) func(n *model.Node) *agentproto.Command {
	return func(n *model.Node) *agentproto.Command {
		cmd := &agentproto.Command{Kind: agentproto.CmdGuest, Role: n.Role, Command: req.Command, Args: req.Args}
		if c != nil {
			cmd.Type, cmd.Version = c.Type, c.Version
		}
		return cmd
	}
}

// nodeCommand is POST /nodes/{id}/commands.
func (s *Server) nodeCommand(w http.ResponseWriter, r *http.Request) error {
	n, _, err := scopedAs[model.Node](r)
	if err != nil {
		return err
	}
	return s.oneNodeCommand(w, r, n)
}

func (s *Server) oneNodeCommand(w http.ResponseWriter, r *http.Request, n model.Node) error {
	lc, err := s.lifecycle()
	if err != nil {
		return err
	}
	req, timeout, err := s.parseCommand(r, lc)
	if err != nil {
		return err
	}
	if !stages.Reachable(&n) {
		return errs.Conflictf("node %s is %s: its agent cannot take commands", n.Name, n.Status)
	}
	c, _, err := s.DB.Component(r.Context(), n.ComponentID)
	if err != nil {
		return err
	}
	out, err := s.runSync(r.Context(), "guestcmd", []model.Node{n}, timeout, guestCmd(req, &c))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, NodeCommandResult{Command: req.Command, Args: req.Args, Result: out[0]})
	return nil
}

// componentCommand is POST /components/{id}/commands.
func (s *Server) componentCommand(w http.ResponseWriter, r *http.Request) error {
	c, _, err := scopedAs[model.Component](r)
	if err != nil {
		return err
	}
	nodes, err := s.DB.Nodes(r.Context(), c.ID)
	if err != nil {
		return err
	}
	return s.groupCommand(w, r, nodes, map[string]*model.Component{c.ID: &c})
}

// topologyCommand is POST /topologies/{id}/commands.
func (s *Server) topologyCommand(w http.ResponseWriter, r *http.Request) error {
	t, _, _ := ScopedTopology(r)
	ctx := r.Context()
	comps, err := s.DB.Components(ctx, t.ID)
	if err != nil {
		return err
	}
	byID := map[string]*model.Component{}
	var nodes []model.Node
	for i := range comps {
		byID[comps[i].ID] = &comps[i]
		ns, err := s.DB.Nodes(ctx, comps[i].ID)
		if err != nil {
			return err
		}
		nodes = append(nodes, ns...)
	}
	return s.groupCommand(w, r, nodes, byID)
}

func (s *Server) groupCommand(w http.ResponseWriter, r *http.Request, nodes []model.Node, comps map[string]*model.Component) error {
	lc, err := s.lifecycle()
	if err != nil {
		return err
	}
	req, timeout, err := s.parseCommand(r, lc)
	if err != nil {
		return err
	}
	out, err := s.runSync(r.Context(), "guestcmd", nodes, timeout, func(n *model.Node) *agentproto.Command {
		return guestCmd(req, comps[n.ComponentID])(n)
	})
	if err != nil {
		return err
	}
	res := GroupCommandResult{Command: req.Command, Args: req.Args, Results: out}
	for _, o := range out {
		switch o.Status {
		case OutcomeOK:
			res.OK++
		case OutcomeFailed:
			res.Failed++
		case OutcomeTimeout:
			res.TimedOut++
		case OutcomeSkipped:
			res.Skipped++
		}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// legacyGuestCmd is POST /straas/guestcmd/{component_id}/{node_name}.
func (s *Server) legacyGuestCmd(w http.ResponseWriter, r *http.Request) error {
	c, _, err := scopedAs[model.Component](r)
	if err != nil {
		return err
	}
	nodes, err := s.DB.Nodes(r.Context(), c.ID)
	if err != nil {
		return err
	}
	name := r.PathValue("node_name")
	for _, n := range nodes {
		if n.Name == name {
			return s.oneNodeCommand(w, r, n)
		}
	}
	return errs.NotFoundf("component %s has no node named %s", c.Name, name)
}

// StormJarRequest is the legacy body of POST /straas/stormjar/{storm_component_id}.
type StormJarRequest struct {
	StorageURL   string   `json:"storage_url,omitempty"`
	Container    string   `json:"container"`
	Filename     string   `json:"filename"`
	MainClass    string   `json:"main_class"`
	TopologyName string   `json:"topology_name"`
	Args         []string `json:"args,omitempty"`
}

// StormJarResult is its answer: where the jar went and what storm jar said.
type StormJarResult struct {
	Nimbus string      `json:"nimbus"`
	Jar    string      `json:"jar"` // the jar's path on nimbus
	Upload NodeOutcome `json:"upload"`
	Submit NodeOutcome `json:"submit"`
}

// JarDir is where storm jars go on nimbus.
const JarDir = "/opt/straas/jars"

// stormJar is the legacy POST /straas/stormjar/{storm_component_id}: nimbus fetches the
// jar, then storm-cmd/storm_jar submits it.
func (s *Server) stormJar(w http.ResponseWriter, r *http.Request) error {
	lc, err := s.lifecycle()
	if err != nil {
		return err
	}
	c, _, err := scopedAs[model.Component](r)
	if err != nil {
		return err
	}
	t, _, _ := ScopedTopology(r)
	var req StormJarRequest
	if err := s.decodeStrict(r, &req, false); err != nil {
		return err
	}
	for f, v := range map[string]string{"container": req.Container, "filename": req.Filename, "main_class": req.MainClass, "topology_name": req.TopologyName} {
		if strings.TrimSpace(v) == "" {
			return errs.Invalidf(f, "required")
		}
	}
	for i, a := range append([]string{req.MainClass, req.TopologyName}, req.Args...) {
		if strings.ContainsAny(a, "\x00\n\r \t") {
			field := fmt.Sprintf("args[%d]", i-2)
			if i < 2 {
				field = []string{"main_class", "topology_name"}[i]
			}
			return errs.Invalidf(field, "must be one word")
		}
	}
	if c.Type != "storm" {
		return errs.Invalidf("storm_component_id", "component %s is a %s component, not storm", c.Name, c.Type)
	}
	const submit = "storm-cmd/storm_jar"
	if err := s.checkGuestCommand(r.Context(), lc, true, submit); err != nil {
		return err
	}
	nodes, err := s.DB.Nodes(r.Context(), c.ID)
	if err != nil {
		return err
	}
	var nimbus *model.Node
	for i := range nodes {
		if nodes[i].Role == "nimbus" && serving(&nodes[i]) {
			nimbus = &nodes[i]
			break
		}
	}
	if nimbus == nil {
		return errs.Conflictf("component %s has no serving nimbus node", c.Name)
	}
	file := path.Base(req.Filename)
	var src string
	if req.StorageURL != "" {
		u, err := url.Parse(req.StorageURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errs.Invalidf("storage_url", "want an http(s) URL, got %q", req.StorageURL)
		}
		src = strings.TrimRight(req.StorageURL, "/") + "/" + url.PathEscape(req.Container) + "/" + escapePath(req.Filename)
	} else {
		key, err := objectKey(principal(r).ProjectID, "swift", t.AvailabilityZone, req.Container+"/"+req.Filename)
		if err != nil {
			return err
		}
		if err := s.objectExists(r.Context(), lc, key); err != nil {
			return err
		}
		if src, err = lc.Files.URL(key, time.Hour); err != nil {
			return err
		}
	}
	jar := JarDir + "/" + file
	res := StormJarResult{Nimbus: nimbus.Name, Jar: jar}
	up, err := s.runSync(r.Context(), "put_file", []model.Node{*nimbus}, lc.CommandTimeout, func(n *model.Node) *agentproto.Command {
		return &agentproto.Command{Kind: agentproto.CmdPutFile, Role: n.Role, File: &agentproto.File{Key: req.Container + "/" + req.Filename, URL: src, TargetPath: jar}}
	})
	if err != nil {
		return err
	}
	res.Upload = up[0]
	res.Submit = NodeOutcome{NodeID: nimbus.ID, Name: nimbus.Name, Status: OutcomeSkipped, ExitStatus: -1, Error: "the jar did not reach nimbus"}
	if res.Upload.Status == OutcomeOK {
		args := strings.Join(append([]string{jar, req.MainClass, req.TopologyName}, req.Args...), " ")
		sub, err := s.runSync(r.Context(), "guestcmd", []model.Node{*nimbus}, lc.CommandTimeout,
			guestCmd(CommandRequest{Command: submit, Args: args}, &c))
		if err != nil {
			return err
		}
		res.Submit = sub[0]
	}
	s.event(r, model.Event{Type: "storm.jar", TopologyID: t.ID, ComponentID: c.ID, NodeID: nimbus.ID,
		Message: fmt.Sprintf("%s submitted %s (%s) as storm topology %s: %s", principal(r).UserName, file, req.MainClass, req.TopologyName, res.Submit.Status)})
	writeJSON(w, http.StatusOK, res)
	return nil
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i := range parts {
		parts[i] = url.PathEscape(parts[i])
	}
	return strings.Join(parts, "/")
}
