package conductor

import (
	"context"
	"fmt"
	"strings"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy/actions"
	"github.com/straas/straas/shared/policy/records"
)

// resume handles an agent's resume event (seed 001): the application restarted or the
// node rebooted and is back in its previous state. The maintenance wave waiting for it
// learns it first (its batch entry; the first answer wins, so a redelivered event is
// harmless), then the node's maintenance flag — and with it the autohealing hold — is
// cleared and its status restored.
func (c *Conductor) resume(ctx context.Context, env *agentproto.Envelope) error {
	n, _, err := c.DB.Node(ctx, env.Node)
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	detail := env.Event.Detail
	flags, err := records.New(c.DB).NodeFlags(ctx, &n)
	if err != nil {
		return err
	}
	if flags.Maintenance == "" {
		// Nobody waits for it (a duplicate, or maintenance was set off meanwhile).
		return c.DB.Emit(ctx, model.Event{Type: "agent." + env.Event.Name, TopologyID: n.TopologyID, ComponentID: n.ComponentID,
			NodeID: n.ID, Tenant: n.Tenant, Message: fmt.Sprintf("node %s: %s %s (no maintenance in progress)", n.Name, env.Event.Name, detail)})
	}
	ok := !strings.Contains(detail, "failed")
	if flags.MaintenanceBatch != "" {
		res := batch.Result{OK: ok, Output: "resumed: " + detail}
		if !ok {
			res.Error = detail
		}
		if _, err := c.Batches.Record(ctx, flags.MaintenanceBatch, n.ID, res); err != nil && !errs.Is(err, errs.NotFound) {
			return fmt.Errorf("resume of node %s: %w", n.Name, err)
		}
	}
	svc := actions.New(c.DB, nil, c.Log)
	why := "resume event: " + detail
	if _, err := svc.EndNodeMaintenance(ctx, &n, why); err != nil {
		return fmt.Errorf("resume of node %s: %w", n.Name, err)
	}
	lvl := model.LevelInfo
	if !ok {
		lvl = model.LevelWarning
	}
	return c.DB.Emit(ctx, model.Event{Type: "agent." + env.Event.Name, Level: lvl, TopologyID: n.TopologyID, ComponentID: n.ComponentID,
		NodeID: n.ID, ActionID: flags.MaintenanceAction, Tenant: n.Tenant,
		Message: fmt.Sprintf("node %s resumed after maintenance %s (%s)", n.Name, flags.Maintenance, detail)})
}

// helloAgain restores a node flagged UNREACHABLE whose agent said hello again (it
// rebooted, or restarted): its heartbeats that follow come without a gap, so the
// heartbeat path would never notice.
func (c *Conductor) helloAgain(ctx context.Context, n *model.Node) error {
	if n.Status != model.NodeUnreachable || n.InstalledVersion == "" {
		return nil // a node still being created is its creation's business
	}
	return c.reachable(ctx, n.ID)
}
