package stages

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
)

// probeTimeout bounds how long a leader probe waits for members.
const probeTimeout = 30 * time.Second

// NodeCommandIn is the input of NodeCommand.
type NodeCommandIn struct {
	Callback        // Command: start|stop|restart|validate
	NodeID   string `json:"node_id"`
	Service  string `json:"service,omitempty"` // start/stop/restart: one service ("" = the role's)
}

// NodeCommand sends one node a service command (start, stop, restart) or validate; the
// answer completes the task. The node's status does not change: its service status
// follows in its heartbeats, and a failure is the operation's to report.
func (e *Env) NodeCommand(ctx context.Context, in NodeCommandIn) (Empty, error) {
	switch in.Command {
	case agentproto.CmdStart, agentproto.CmdStop, agentproto.CmdRestart, agentproto.CmdValidate:
	default:
		return Empty{}, errs.Invalidf("command", "want start, stop, restart or validate, got %q", in.Command)
	}
	e.stageRunning(ctx, in.ActionID, in.ComponentID, in.Stage)
	n, _, err := e.DB.Node(ctx, in.NodeID)
	if err != nil {
		return Empty{}, err
	}
	c, _, err := e.DB.Component(ctx, n.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	// One stage may send a node several commands (restart, then validate): one batch each.
	id := batch.ID(in.ActionID, in.ComponentID, in.Stage+"/"+in.Command)
	cmd := &agentproto.Command{ID: batch.CommandID(id, n.ID), Kind: in.Command, Role: n.Role, Type: c.Type, Version: c.Version}
	if in.Service != "" {
		cmd.Params = map[string]string{"service": in.Service}
	}
	onOK := batch.Keep
	if in.Command == agentproto.CmdRestart && in.Service == "" {
		onOK = batch.Restarted // restarting all its services is what a RESTART_REQUIRED node waits for
	}
	_, err = e.Batches.Open(ctx, batch.Spec{
		ID: id, Token: in.Token, ActionID: in.ActionID, TopologyID: in.TopologyID, ComponentID: in.ComponentID,
		Stage: in.Stage, Command: in.Command, OnOK: onOK, OnFail: batch.Keep, Timeout: e.Settings.StageTimeout,
		Targets: []batch.Target{{NodeID: n.ID, NodeName: n.Name, Command: cmd}},
	})
	return Empty{}, err
}

// Scopes of files and script sync (seed 000 §4.1.1.3 items 3 and 9).
const (
	ScopeTopology  = "topology"
	ScopeComponent = "component"
	ScopeNode      = "node"
)

// ScopeNodes resolves a scope and its items (ids) to nodes, in item order; an unknown
// id is an errs.NotFound error naming it.
func ScopeNodes(ctx context.Context, d *db.DB, scope string, items []string) ([]model.Node, error) {
	var out []model.Node
	seen := map[string]bool{}
	add := func(ns ...model.Node) {
		for _, n := range ns {
			if !seen[n.ID] {
				seen[n.ID] = true
				out = append(out, n)
			}
		}
	}
	for _, id := range items {
		switch scope {
		case ScopeTopology:
			if _, _, err := d.Topology(ctx, id); err != nil {
				return nil, err
			}
			ns, err := d.TopologyNodes(ctx, id)
			if err != nil {
				return nil, err
			}
			add(ns...)
		case ScopeComponent:
			if _, _, err := d.Component(ctx, id); err != nil {
				return nil, err
			}
			ns, err := d.Nodes(ctx, id)
			if err != nil {
				return nil, err
			}
			add(ns...)
		case ScopeNode:
			n, _, err := d.Node(ctx, id)
			if err != nil {
				return nil, err
			}
			add(n)
		default:
			return nil, errs.Invalidf("scope", "want topology, component or node, got %q", scope)
		}
	}
	return out, nil
}

// Reachable reports whether a node has an agent that can take commands: it has a server
// and is neither being created, deleted, nor FAILED.
func Reachable(n *model.Node) bool {
	switch n.Status {
	case model.NodeSpawning, model.NodeDeleting, model.NodeFailed:
		return false
	}
	return n.ServerID != ""
}

// FanOutIn is the input of FanOut.
type FanOutIn struct {
	Callback                  // Command: put_file or sync_scripts
	Scope    string           `json:"scope"`
	Items    []string         `json:"items"`
	File     *agentproto.File `json:"file,omitempty"`
	Scripts  string           `json:"scripts_ref,omitempty"` // sync_scripts: "" = the script repo's current commit
}

// FanOut sends one command to every reachable node of a scope: put_file (the agent
// fetches the object from the URL and writes it to the target path) or sync_scripts
// (the agent fetches the script repo at a ref). Every node must succeed; a failed node
// is reported with its error, and its status does not change.
func (e *Env) FanOut(ctx context.Context, in FanOutIn) (Empty, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, in.Stage)
	nodes, err := ScopeNodes(ctx, e.DB, in.Scope, in.Items)
	if err != nil {
		return Empty{}, err
	}
	id := batch.ID(in.ActionID, in.ComponentID, in.Stage)
	sp := batch.Spec{ID: id, Token: in.Token, ActionID: in.ActionID, TopologyID: in.TopologyID, ComponentID: in.ComponentID,
		Stage: in.Stage, Command: in.Command, OnOK: batch.Keep, OnFail: batch.Keep, Timeout: e.Settings.StageTimeout}
	ref := in.Scripts
	if in.Command == agentproto.CmdSyncScripts && ref == "" {
		if ref, err = e.Repos.ScriptsRef(ctx); err != nil {
			return Empty{}, err
		}
	}
	skipped := 0
	for i := range nodes {
		n := &nodes[i]
		if !Reachable(n) {
			skipped++
			continue
		}
		cmd := &agentproto.Command{ID: batch.CommandID(id, n.ID), Kind: in.Command, Role: n.Role}
		switch in.Command {
		case agentproto.CmdPutFile:
			if in.File == nil {
				return Empty{}, errs.Invalidf("file", "put_file needs a file")
			}
			f := *in.File
			cmd.File = &f
		case agentproto.CmdSyncScripts:
			cmd.Ref = ref
		default:
			return Empty{}, errs.Invalidf("command", "fan-out of %q: want put_file or sync_scripts", in.Command)
		}
		sp.Targets = append(sp.Targets, batch.Target{NodeID: n.ID, NodeName: n.Name, Command: cmd})
	}
	detail := fmt.Sprintf("%d nodes", len(sp.Targets))
	if in.Command == agentproto.CmdSyncScripts {
		detail += " to scripts " + ref
	}
	if skipped > 0 {
		detail += fmt.Sprintf(", %d skipped (not reachable)", skipped)
	}
	e.stageNote(ctx, in.ActionID, in.ComponentID, in.Stage, detail)
	_, err = e.Batches.Open(ctx, sp)
	return Empty{}, err
}

// ComponentsOut lists the components a script sync reconfigures.
type ComponentsOut struct {
	Components []DepChange `json:"components"`
}

// ScopeComponents lists the serving components of a scope's nodes, each with the ref its
// members run: after a script sync, each gets a configuration change (seed 000 §4.3.7).
func (e *Env) ScopeComponents(ctx context.Context, in FanOutIn) (ComponentsOut, error) {
	nodes, err := ScopeNodes(ctx, e.DB, in.Scope, in.Items)
	if err != nil {
		return ComponentsOut{}, err
	}
	ids := map[string]bool{}
	for _, n := range nodes {
		ids[n.ComponentID] = true
	}
	out := ComponentsOut{Components: []DepChange{}}
	for id := range ids {
		c, _, err := e.DB.Component(ctx, id)
		if err != nil {
			return out, err
		}
		if c.Status != model.StatusActive && c.Status != model.StatusDegraded {
			continue
		}
		t, _, err := e.DB.Topology(ctx, c.TopologyID)
		if err != nil {
			return out, err
		}
		ns, err := e.DB.Nodes(ctx, id)
		if err != nil {
			return out, err
		}
		out.Components = append(out.Components, DepChange{TopologyID: t.ID, ComponentID: id, Ref: appliedRef(&t, members(ns))})
	}
	sort.Slice(out.Components, func(i, j int) bool { return out.Components[i].ComponentID < out.Components[j].ComponentID })
	return out, nil
}
