package stages

import (
	"context"
	"fmt"
	"regexp"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/store"
)

// MarkDeleting flags the topology, its components and nodes as being deleted.
func (e *Env) MarkDeleting(ctx context.Context, in Ref) (Empty, error) {
	e.stageRunning(ctx, in.ActionID, "", StageDelete)
	if _, err := e.DB.UpdateAction(ctx, in.ActionID, func(a *model.Action) error {
		if a.Status == model.ActionPending {
			now := e.DB.Now()
			a.Status, a.StartedAt = model.ActionRunning, &now
		}
		return nil
	}); err != nil {
		return Empty{}, err
	}
	if _, err := e.DB.UpdateTopology(ctx, in.TopologyID, func(t *model.Topology) error { t.Status = model.StatusDeleting; return nil }); err != nil {
		return Empty{}, err
	}
	comps, err := e.DB.Components(ctx, in.TopologyID)
	if err != nil {
		return Empty{}, err
	}
	for _, c := range comps {
		if _, err := e.DB.UpdateComponent(ctx, c.ID, func(x *model.Component) error { x.Status = model.StatusDeleting; return nil }); err != nil {
			return Empty{}, err
		}
	}
	return Empty{}, nil
}

// DeleteOut reports what deletion removed.
type DeleteOut struct {
	Servers int `json:"servers"`
	Nodes   int `json:"nodes"`
}

// DeleteNodes deletes every server of the topology from Nova (also servers Nova has that
// the store lost track of), waits until Nova lists none, then removes the nodes' queues
// and records. It fails with ServersRemain (retried) while Nova still lists some.
func (e *Env) DeleteNodes(ctx context.Context, in Ref) (DeleteOut, error) {
	t, _, err := e.DB.Topology(ctx, in.TopologyID)
	if err != nil {
		return DeleteOut{}, err
	}
	compute, err := e.Clouds.Zone(ctx, t.AvailabilityZone)
	if err != nil {
		return DeleteOut{}, err
	}
	nodes, err := e.DB.TopologyNodes(ctx, t.ID)
	if err != nil {
		return DeleteOut{}, err
	}
	servers := map[string]string{} // server id -> node name
	for _, n := range nodes {
		if n.ServerID != "" {
			servers[n.ServerID] = n.Name
		}
	}
	listed, err := e.topologyServers(ctx, compute, &t)
	if err != nil {
		return DeleteOut{}, err
	}
	for _, s := range listed {
		servers[s.ID] = s.Name
	}
	ids := make([]string, 0, len(servers))
	for id := range servers {
		ids = append(ids, id)
	}
	err = e.parallel(ctx, len(ids), func(i int) error {
		if err := compute.DeleteServer(ctx, ids[i]); err != nil {
			return fmt.Errorf("delete server %s of node %s: %w", ids[i], servers[ids[i]], err)
		}
		return nil
	})
	if err != nil {
		return DeleteOut{}, err
	}
	left, err := e.topologyServers(ctx, compute, &t)
	if err != nil {
		return DeleteOut{}, err
	}
	if len(left) > 0 {
		return DeleteOut{}, &ServersRemain{Msg: fmt.Sprintf("%d servers of topology %s are still being deleted by Nova", len(left), t.Name)}
	}
	err = e.parallel(ctx, len(nodes), func(i int) error {
		n := nodes[i]
		if err := e.Queue.Remove(ctx, queue.NodeQueue(n.ID)); err != nil {
			return fmt.Errorf("remove command queue of node %s: %w", n.Name, err)
		}
		return e.DB.S.Write(ctx, store.Del(db.KindNode, n.ID, store.Any, 0), store.Del(db.KindLease, n.ID, store.Any, 0))
	})
	if err != nil {
		return DeleteOut{}, err
	}
	e.stageDone(ctx, in.ActionID, "", StageDelete, "", nil, fmt.Sprintf("%d servers deleted", len(ids)))
	return DeleteOut{Servers: len(ids), Nodes: len(nodes)}, nil
}

// topologyServers lists Nova's servers that belong to the topology, by name and metadata.
func (e *Env) topologyServers(ctx context.Context, compute Compute, t *model.Topology) ([]struct{ ID, Name string }, error) {
	ss, err := compute.ListServers(ctx, "^"+regexp.QuoteMeta(t.Name+"-"))
	if err != nil {
		return nil, err
	}
	var out []struct{ ID, Name string }
	for _, s := range ss {
		if s.Metadata["straas_topology"] == t.ID {
			out = append(out, struct{ ID, Name string }{s.ID, s.Name})
		}
	}
	return out, nil
}

// DeleteConfig removes the topology's branch and tags from the config repo, and the
// server groups made for fault domains.
func (e *Env) DeleteConfig(ctx context.Context, in Ref) (Empty, error) {
	e.stageRunning(ctx, in.ActionID, "", StageDeleteConf)
	t, _, err := e.DB.Topology(ctx, in.TopologyID)
	if err != nil {
		return Empty{}, err
	}
	if err := e.Repos.DeleteBranch(ctx, t.ConfigBranch); err != nil && !errs.Is(err, errs.NotFound) {
		return Empty{}, fmt.Errorf("delete config branch %s: %w", t.ConfigBranch, err)
	}
	comps, err := e.DB.Components(ctx, t.ID)
	if err != nil {
		return Empty{}, err
	}
	compute, err := e.Clouds.Zone(ctx, t.AvailabilityZone)
	if err != nil {
		return Empty{}, err
	}
	for _, c := range comps {
		// Groups named by users (anti_affinity_group) may be shared: leave them.
		if c.ServerGroupID != "" && c.AntiAffinityGroup == "" {
			if err := compute.DeleteServerGroup(ctx, c.ServerGroupID); err != nil {
				return Empty{}, err
			}
		}
	}
	e.stageDone(ctx, in.ActionID, "", StageDeleteConf, "", nil)
	return Empty{}, nil
}

// FinishDeletion removes the topology's records; its actions and events stay as history.
func (e *Env) FinishDeletion(ctx context.Context, in Ref) (Empty, error) {
	t, _, err := e.DB.Topology(ctx, in.TopologyID)
	if errs.Is(err, errs.NotFound) {
		return Empty{}, nil // a re-run after the records went
	}
	if err != nil {
		return Empty{}, err
	}
	comps, err := e.DB.Components(ctx, t.ID)
	if err != nil {
		return Empty{}, err
	}
	ops := []store.Op{
		store.Del(db.KindTopology, t.ID, store.Any, 0),
		store.Del(db.KindTopologyName, model.Branch(t.Name, t.AvailabilityZone), store.Any, 0),
	}
	for _, c := range comps {
		ops = append(ops, store.Del(db.KindComponent, c.ID, store.Any, 0))
	}
	if err := e.DB.S.Write(ctx, ops...); err != nil {
		return Empty{}, err
	}
	if _, err := e.DB.UpdateAction(ctx, in.ActionID, func(a *model.Action) error {
		now := e.DB.Now()
		a.Status, a.FinishedAt = model.ActionSucceeded, &now
		return nil
	}); err != nil {
		return Empty{}, err
	}
	e.emit(ctx, model.Event{Type: "topology.deleted", TopologyID: t.ID, ActionID: in.ActionID, Tenant: t.Tenant,
		Message: fmt.Sprintf("topology %s@%s deleted", t.Name, t.AvailabilityZone)})
	return Empty{}, nil
}

// DeletionFailed records why deletion failed; the topology stays, FAILED, for a retry.
func (e *Env) DeletionFailed(ctx context.Context, in FailIn) (JobOut, error) {
	if _, err := e.DB.UpdateTopology(ctx, in.TopologyID, func(t *model.Topology) error { t.Status = model.StatusFailed; return nil }); err != nil && !errs.Is(err, errs.NotFound) {
		return JobOut{}, err
	}
	cause := in.Error.Cause
	a, err := e.DB.UpdateAction(ctx, in.ActionID, func(a *model.Action) error {
		now := e.DB.Now()
		a.Status, a.FinishedAt = model.ActionFailed, &now
		a.Error = &model.ActionError{Stage: StageDelete, Error: in.Error.Error, Cause: cause}
		return nil
	})
	if err != nil {
		return JobOut{}, err
	}
	e.emit(ctx, model.Event{Type: "topology.delete_failed", Level: model.LevelError, TopologyID: in.TopologyID, ActionID: in.ActionID,
		Tenant: a.Tenant, Message: "deletion failed: " + cause})
	return JobOut{Status: model.ActionFailed, Error: in.Error.Error, Cause: cause}, nil
}
