package stages

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/store"
)

// Flexdown (seed 000 §4.3.4): drain the node when its type says how (the script repo's
// drain guest command, e.g. kafka moves the broker's partitions away), delete it from
// Nova and the store, then reconfigure whoever listed it.

// NodeIn is the input of a callback stage about one node.
type NodeIn struct {
	Callback
	NodeID string `json:"node_id"`
}

// DrainNode sends the node its type's drain guest command; the batch's answer completes
// the task. A failed drain fails the operation before anything is removed, and does not
// change the node's status.
func (e *Env) DrainNode(ctx context.Context, in NodeIn) (Empty, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, StageDrain)
	sp := batch.Spec{
		ID: batch.ID(in.ActionID, in.ComponentID, StageDrain), Token: in.Token, ActionID: in.ActionID, TopologyID: in.TopologyID,
		ComponentID: in.ComponentID, Stage: StageDrain, Command: agentproto.CmdGuest, OnOK: batch.Keep, OnFail: batch.Keep,
		Timeout: e.Settings.StageTimeout,
	}
	n, _, err := e.DB.Node(ctx, in.NodeID)
	if err != nil {
		return Empty{}, err
	}
	t, _, err := e.DB.Topology(ctx, in.TopologyID)
	if err != nil {
		return Empty{}, err
	}
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	si, err := e.scriptInfo()
	if err != nil {
		return Empty{}, err
	}
	ti, err := si.TypeInfo(ctx, c.Type)
	if err != nil {
		return Empty{}, err
	}
	if d, ok := ti.DrainFor(n.Role); ok && d.TimeoutSeconds > 0 {
		sp.Timeout = time.Duration(d.TimeoutSeconds) * time.Second
	}
	pin, err := e.preConfigInput(ctx, &t, &c)
	if err != nil {
		return Empty{}, err
	}
	op, ok, err := si.DrainCommand(ctx, pin, n)
	if err != nil {
		return Empty{}, fmt.Errorf("drain command of node %s: %w", n.Name, err)
	}
	if ok {
		sp.Targets = []batch.Target{{NodeID: n.ID, NodeName: n.Name, Command: &agentproto.Command{
			ID: batch.CommandID(sp.ID, n.ID), Kind: agentproto.CmdGuest, Role: n.Role, Type: c.Type, Version: c.Version,
			Command: op.Cmd, Args: op.Args,
		}}}
		e.stageNote(ctx, in.ActionID, in.ComponentID, StageDrain, op.Cmd+" "+op.Args)
	}
	_, err = e.Batches.Open(ctx, sp)
	return Empty{}, err
}

// RemoveNode deletes the node's server from Nova (also one Nova has under the node's
// name that the store lost track of), waits until Nova lists none, then removes the
// node's queue, lease and record. It fails with ServersRemain (retried) while Nova still
// lists one. A re-run after the record went is a no-op. When the deletion policy keeps
// servers (lifecycle_keep.go) nothing is deleted in the cloud: the node is DELETING,
// its services are stopped first when Begin said so (StopServices asks the state
// machine to, and RemoveNode runs again), and it is detached.
func (e *Env) RemoveNode(ctx context.Context, in RemoveIn) (RemoveOut, error) {
	n, _, err := e.DB.Node(ctx, in.NodeID)
	if errs.Is(err, errs.NotFound) {
		e.stageDone(ctx, in.ActionID, in.ComponentID, StageRemove, "", nil)
		return RemoveOut{}, nil
	}
	if err != nil {
		return RemoveOut{}, err
	}
	if n.Status != model.NodeDeleting {
		if n, err = e.DB.UpdateNode(ctx, n.ID, func(x *model.Node) error { x.Status = model.NodeDeleting; return nil }); err != nil {
			return RemoveOut{}, err
		}
	}
	keep := in.Begin != nil && in.Begin.Keep
	if keep && in.Begin.StopServices {
		stopped, err := e.servicesStopped(ctx, in.OpIn)
		if err != nil {
			return RemoveOut{}, err
		}
		if !stopped {
			return RemoveOut{StopServices: true}, nil
		}
	}
	e.stageRunning(ctx, in.ActionID, in.ComponentID, StageRemove)
	detail := fmt.Sprintf("server %s of node %s deleted", n.ServerID, n.Name)
	if keep {
		detail = keptDetail(in, &n)
	} else {
		compute, err := e.Clouds.Zone(ctx, n.AvailabilityZone)
		if err != nil {
			return RemoveOut{}, err
		}
		if err := e.deleteServers(ctx, compute, &n, n.ServerID); err != nil {
			return RemoveOut{}, err
		}
	}
	if err := e.Queue.Remove(ctx, queue.NodeQueue(n.ID)); err != nil {
		return RemoveOut{}, fmt.Errorf("remove command queue of node %s: %w", n.Name, err)
	}
	if err := e.DB.S.Write(ctx, store.Del(db.KindNode, n.ID, store.Any, 0), store.Del(db.KindLease, n.ID, store.Any, 0)); err != nil {
		return RemoveOut{}, err
	}
	e.stageDone(ctx, in.ActionID, in.ComponentID, StageRemove, "", nil, detail)
	if keep {
		e.emit(ctx, detachedEvent(in, &n, detail))
		return RemoveOut{}, nil
	}
	e.emit(ctx, model.Event{Type: "node.deleted", TopologyID: n.TopologyID, ComponentID: n.ComponentID, NodeID: n.ID,
		ActionID: in.ActionID, Tenant: n.Tenant, Message: fmt.Sprintf("node %s (%s) removed", n.Name, n.Role)})
	return RemoveOut{}, nil
}

// deleteServers deletes serverID and any server Nova lists under the node's name for
// this node, and reports ServersRemain while Nova still lists one.
func (e *Env) deleteServers(ctx context.Context, compute Compute, n *model.Node, serverID string) error {
	ids := map[string]bool{}
	if serverID != "" {
		ids[serverID] = true
	}
	mine := func() ([]string, error) {
		ss, err := compute.ListServers(ctx, "^"+regexp.QuoteMeta(n.Name)+"$")
		if err != nil {
			return nil, err
		}
		var out []string
		for _, s := range ss {
			if s.Name == n.Name && (s.Metadata["straas_node"] == n.ID || ids[s.ID]) {
				out = append(out, s.ID)
			}
		}
		return out, nil
	}
	listed, err := mine()
	if err != nil {
		return err
	}
	for _, id := range listed {
		ids[id] = true
	}
	for id := range ids {
		if err := compute.DeleteServer(ctx, id); err != nil {
			return fmt.Errorf("delete server %s of node %s: %w", id, n.Name, err)
		}
	}
	left, err := mine()
	if err != nil {
		return err
	}
	if len(left) > 0 {
		return &ServersRemain{Msg: fmt.Sprintf("Nova is still deleting the server of node %s", n.Name)}
	}
	return nil
}
