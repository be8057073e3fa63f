package stages

import (
	"context"
	"fmt"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy"
)

// Flexdown under a deletion policy with destroy_after_deletion false (Senlin: the node
// is removed from the cluster, its server is not destroyed). The node leaves the
// component, the store and every configuration like any other; its server stays in
// the cloud, running, and straas no longer manages it (no queue, no lease, no record).
// Before it is detached its application's services are stopped, so that it neither
// serves nor rejoins the cluster it left — unless the flexdown was forced or the node
// cannot answer, in which case the server is kept as it is. The node is DELETING while
// its services stop (health policies leave it alone); a stop that fails fails the
// flexdown before anything is removed, and the node is ACTIVE again.

// StageStopServices is the flexdown stage that stops a kept server's services.
const StageStopServices = "stop_services"

// beginKeep reads the component's deletion policy: with destroy_after_deletion false
// the server is kept (and its services stopped when the node can answer). It returns
// what Begin's stage says about it.
func (e *Env) beginKeep(ctx context.Context, in OpIn, out *BeginOut) (string, error) {
	if in.ComponentID == "" {
		return "", nil
	}
	p, err := e.policyService().Spec(ctx, in.ComponentID, policy.TypeDeletion)
	if err != nil {
		return "", fmt.Errorf("deletion policy of component %s: %w", in.ComponentID, err)
	}
	if p == nil || p.Deletion().Destroy() {
		return "", nil
	}
	out.Keep = true
	n, _, err := e.DB.Node(ctx, in.NodeID)
	if errs.Is(err, errs.NotFound) {
		return "", nil // a re-run after the node went
	}
	if err != nil {
		return "", err
	}
	note := fmt.Sprintf("the deletion policy keeps servers (destroy_after_deletion false): node %s leaves the component, its server %s stays in the cloud", n.Name, n.ServerID)
	switch {
	case in.Force:
		note += " as it is (forced: its services are not stopped)"
	case !up(n.Status):
		note += fmt.Sprintf(" as it is (the node is %s: its services cannot be stopped)", n.Status)
	default:
		out.StopServices = true
		note += " with its services stopped"
	}
	return note, nil
}

// RemoveIn is the input of RemoveNode: the flexdown's state.
type RemoveIn struct {
	OpIn
	Begin *BeginOut `json:"begin,omitempty"`
}

// RemoveOut tells the state machine to stop the node's services first (StopServices),
// after which RemoveNode runs again.
type RemoveOut struct {
	StopServices bool `json:"stop_services"`
}

// stopBatch is the batch NodeCommand opens for the stop_services stage.
func stopBatch(in OpIn) string {
	return batch.ID(in.ActionID, in.ComponentID, StageStopServices+"/"+agentproto.CmdStop)
}

// servicesStopped reports whether the stop_services stage's batch succeeded.
func (e *Env) servicesStopped(ctx context.Context, in OpIn) (bool, error) {
	b, err := e.Batches.Get(ctx, stopBatch(in))
	if errs.Is(err, errs.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return b.Completed && b.Failed == 0, nil
}

// keptDetail says what became of a kept node's server.
func keptDetail(in RemoveIn, n *model.Node) string {
	how := "running as it was"
	if in.Begin.StopServices {
		how = "running with its services stopped"
	}
	return fmt.Sprintf("node %s detached: its server %s is kept in the cloud, %s (the deletion policy's destroy_after_deletion is false); straas no longer manages it",
		n.Name, n.ServerID, how)
}

// detachedEvent records a kept node's detachment.
func detachedEvent(in RemoveIn, n *model.Node, detail string) model.Event {
	return model.Event{Type: "node.detached", TopologyID: n.TopologyID, ComponentID: n.ComponentID, NodeID: n.ID,
		ActionID: in.ActionID, Tenant: n.Tenant, Message: detail,
		Data: map[string]any{"server_id": n.ServerID, "hypervisor": n.Hypervisor, "services_stopped": in.Begin.StopServices}}
}

// restoreKept gives a node whose services could not be stopped its place back: it was
// serving (that is why the stop was tried) and the flexdown removed nothing.
func (e *Env) restoreKept(ctx context.Context, nodeID string) error {
	_, err := e.DB.UpdateNode(ctx, nodeID, func(n *model.Node) error {
		if n.Status == model.NodeDeleting {
			n.Status = model.NodeActive
		}
		return nil
	})
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	return err
}
