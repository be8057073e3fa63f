package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
)

// AwaitHello is verify spawn: it opens a batch that each node's hello fills (the conductor
// records hellos; nodes that said hello before the batch existed are filled here).
func (e *Env) AwaitHello(ctx context.Context, in Callback) (Empty, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, in.Stage)
	nodes, err := e.actionNodes(ctx, in.ActionID, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	targets := make([]batch.Target, len(nodes))
	for i, n := range nodes {
		targets[i] = batch.Target{NodeID: n.ID, NodeName: n.Name}
	}
	id := batch.ID(in.ActionID, in.ComponentID, in.Stage)
	if _, err := e.Batches.Open(ctx, batch.Spec{
		ID: id, Token: in.Token, ActionID: in.ActionID, TopologyID: in.TopologyID, ComponentID: in.ComponentID,
		Stage: in.Stage, Timeout: e.Settings.StageTimeout, Targets: targets,
	}); err != nil {
		return Empty{}, err
	}
	for _, n := range nodes {
		if n.Status != model.NodeSpawning { // booted already
			if _, err := e.Batches.Record(ctx, id, n.ID, batch.Result{OK: true}); err != nil {
				return Empty{}, err
			}
		}
	}
	return Empty{}, nil
}

// HelloBatch is the id of the verify-spawn batch a node's hello fills.
func HelloBatch(n *model.Node) string { return batch.ID(n.CreatedBy, n.ComponentID, StageVerify) }

// RunCommand sends one command to every node of the stage and returns; the batch's last
// answer completes the task.
func (e *Env) RunCommand(ctx context.Context, in Callback) (Empty, error) {
	if in.Stage != StagePreOps {
		e.stageRunning(ctx, in.ActionID, in.ComponentID, in.Stage)
	}
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	id := batch.ID(in.ActionID, in.ComponentID, in.Stage)
	sp := batch.Spec{
		ID: id, Token: in.Token, ActionID: in.ActionID, TopologyID: in.TopologyID, ComponentID: in.ComponentID,
		Stage: in.Stage, Command: in.Command, Timeout: e.Settings.StageTimeout,
	}
	if in.Command == "operations" {
		e.stageRunning(ctx, in.ActionID, in.ComponentID, in.Stage)
		ops, err := e.loadOps(ctx, id)
		if err != nil {
			return Empty{}, err
		}
		sp.OnOK, sp.OnFail = batch.Keep, batch.Keep // an operation on a dependency node does not change its status
		for _, op := range ops {
			sp.Targets = append(sp.Targets, batch.Target{NodeID: op.NodeID, NodeName: op.Name, Command: &agentproto.Command{
				ID: batch.CommandID(id, op.NodeID), Kind: agentproto.CmdGuest, Role: op.Role, Type: op.Type, Command: op.Cmd, Args: op.Args,
			}})
		}
		_, err = e.Batches.Open(ctx, sp)
		return Empty{}, err
	}
	nodes, err := e.actionNodes(ctx, in.ActionID, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	switch in.Command {
	case agentproto.CmdInstall:
		sp.OnOK = model.NodeInstalled
	case agentproto.CmdConfigure:
		sp.OnOK = model.NodeConfigured
	case agentproto.CmdValidate:
		sp.OnOK = model.NodeActive
	case agentproto.CmdPreConfigure:
		sp.OnOK = batch.Keep
	default:
		return Empty{}, errs.Invalidf("command", "stage %s: unknown command %q", in.Stage, in.Command)
	}
	for i := range nodes {
		n := &nodes[i]
		cmd := &agentproto.Command{ID: batch.CommandID(id, n.ID), Kind: in.Command, Role: n.Role, Type: c.Type, Version: c.Version}
		switch in.Command {
		case agentproto.CmdInstall:
			pkg, err := e.Repos.Package(ctx, c.Type, n.Role, c.Version)
			if err != nil {
				return Empty{}, fmt.Errorf("install metadata of %s %s role %s: %w", c.Type, c.Version, n.Role, err)
			}
			cmd.Package = &pkg
		case agentproto.CmdPreConfigure:
			if n.Config == nil {
				return Empty{}, fmt.Errorf("node %s has no configuration: pre-config did not run", n.Name)
			}
			cmd.Sections, cmd.SitePP, cmd.Ref = n.Config.Sections, n.Config.SitePP, n.Config.Ref
		case agentproto.CmdConfigure:
			if n.Config != nil {
				cmd.Ref = n.Config.Ref
			}
		}
		sp.Targets = append(sp.Targets, batch.Target{NodeID: n.ID, NodeName: n.Name, Command: cmd})
	}
	_, err = e.Batches.Open(ctx, sp)
	return Empty{}, err
}

// ops of pre-config are kept under the id of the batch that runs them.
const kindOps = "preconfig_ops"

func (e *Env) saveOps(ctx context.Context, batchID string, ops []Operation) error {
	r, err := store.Encode(kindOps, batchID, ops)
	if err != nil {
		return err
	}
	return e.DB.S.Write(ctx, store.Put(r, store.Any))
}

func (e *Env) loadOps(ctx context.Context, batchID string) ([]Operation, error) {
	ops, _, err := store.Load[[]Operation](ctx, e.DB.S, kindOps, batchID)
	if errs.Is(err, errs.NotFound) {
		return nil, nil
	}
	return ops, err
}

// --- dependencies ----------------------------------------------------------------

type depWait struct {
	ActionID   string `json:"action_id"`
	Waiter     string `json:"waiter"` // component id
	Dependency string `json:"dependency"`
	Token      string `json:"token"`
}

func depWaitRecord(w *depWait) (store.Record, error) {
	r, err := store.Encode(db.KindDepWait, w.ActionID+"/"+w.Waiter+"/"+w.Dependency, w)
	r.Index = map[string]store.IndexKey{store.IdxParent: {Part: w.ActionID + "/" + w.Dependency}}
	return r, err
}

// AwaitDependencies holds a component before pre-config until every component it
// depends on has validated in this job (or is ACTIVE already, outside it). The token is
// stored per dependency; FinishComponent/FailComponent of a dependency release it.
func (e *Env) AwaitDependencies(ctx context.Context, in Callback) (Empty, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, StageWaitDeps)
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	deps, err := e.dependencies(ctx, &c)
	if err != nil {
		return Empty{}, err
	}
	// Register first, then check: a dependency finishing in between sees the
	// registration, or this check sees it finished.
	for _, d := range deps {
		r, err := depWaitRecord(&depWait{ActionID: in.ActionID, Waiter: c.ID, Dependency: d.ID, Token: in.Token})
		if err != nil {
			return Empty{}, err
		}
		if err := e.DB.S.Write(ctx, store.Put(r, store.Any)); err != nil {
			return Empty{}, err
		}
	}
	return Empty{}, e.releaseIfReady(ctx, in.ActionID, &c, in.Token)
}

// dependencies resolves a component's depends_on names.
func (e *Env) dependencies(ctx context.Context, c *model.Component) ([]model.Component, error) {
	if len(c.DependsOn) == 0 {
		return nil, nil
	}
	all, err := e.DB.Components(ctx, c.TopologyID)
	if err != nil {
		return nil, err
	}
	byName := map[string]model.Component{}
	for _, x := range all {
		byName[x.Name] = x
	}
	var out []model.Component
	for _, n := range c.DependsOn {
		d, ok := byName[n]
		if !ok {
			return nil, &DependencyFailed{Msg: fmt.Sprintf("component %s depends on %s, which does not exist", c.Name, n)}
		}
		out = append(out, d)
	}
	return out, nil
}

// depState says whether a dependency is done for this action: "ok", "failed" or "".
func (e *Env) depState(ctx context.Context, actionID string, d *model.Component) (string, string, error) {
	s, _, err := store.Load[model.Stage](ctx, e.DB.S, db.KindStage, db.StageID(actionID, d.ID, StageDone))
	switch {
	case err == nil && s.Status == "SUCCEEDED":
		return "ok", "", nil
	case err == nil && s.Status == "FAILED":
		return "failed", s.Detail, nil
	case err == nil:
		return "", "", nil
	case errs.Is(err, errs.NotFound):
		// Not part of this job: ready if it is serving.
		if d.Status == model.StatusActive || d.Status == model.StatusDegraded || d.Status == model.StatusUpdating {
			return "ok", "", nil
		}
		if d.Status == model.StatusFailed || d.Status == model.StatusDeleting {
			return "failed", "it is " + d.Status, nil
		}
		return "", "", nil
	default:
		return "", "", err
	}
}

// releaseIfReady completes the waiter's token when all its dependencies are done, or
// fails it when one failed.
func (e *Env) releaseIfReady(ctx context.Context, actionID string, waiter *model.Component, token string) error {
	deps, err := e.dependencies(ctx, waiter)
	if err != nil {
		return err
	}
	var pending []string
	for i := range deps {
		d := &deps[i]
		// Re-read: the caller's copy may predate the dependency's end.
		fresh, _, err := e.DB.Component(ctx, d.ID)
		if err != nil {
			return err
		}
		st, why, err := e.depState(ctx, actionID, &fresh)
		if err != nil {
			return err
		}
		switch st {
		case "failed":
			cause := fmt.Sprintf("component %s depends on %s, which failed", waiter.Name, d.Name)
			if why != "" {
				cause += ": " + why
			}
			e.stageDone(ctx, actionID, waiter.ID, StageWaitDeps, "FAILED", nil, cause)
			return e.sendFailure(ctx, token, "DependencyFailed", cause)
		case "":
			pending = append(pending, d.Name)
		}
	}
	if len(pending) > 0 {
		e.stageNote(ctx, actionID, waiter.ID, StageWaitDeps, "waiting for "+strings.Join(pending, ", "))
		return nil
	}
	e.stageDone(ctx, actionID, waiter.ID, StageWaitDeps, "", nil)
	return e.sendSuccess(ctx, token, []byte(`{}`))
}

// releaseDependents re-evaluates every component of the action waiting on dep.
func (e *Env) releaseDependents(ctx context.Context, actionID, depID string) error {
	waits, err := store.All[depWait](ctx, e.DB.S, db.KindDepWait, store.Query{Index: store.IdxParent, Part: actionID + "/" + depID})
	if err != nil {
		return err
	}
	for _, w := range waits {
		c, _, err := e.DB.Component(ctx, w.Waiter)
		if err != nil {
			return err
		}
		if err := e.releaseIfReady(ctx, actionID, &c, w.Token); err != nil {
			return err
		}
	}
	return nil
}

func (e *Env) sendSuccess(ctx context.Context, token string, out []byte) error {
	err := e.Workflow.SendTaskSuccess(ctx, token, out)
	if errs.Is(err, errs.NotFound) || errs.Is(err, errs.Conflict) {
		return nil // already released, or nothing waits any more
	}
	return err
}

func (e *Env) sendFailure(ctx context.Context, token, name, cause string) error {
	err := e.Workflow.SendTaskFailure(ctx, token, name, cause)
	if errs.Is(err, errs.NotFound) || errs.Is(err, errs.Conflict) {
		return nil
	}
	return err
}

func (e *Env) stageNote(ctx context.Context, actionID, componentID, stage, detail string) {
	if _, err := e.DB.UpdateStage(ctx, actionID, componentID, stage, func(s *model.Stage) { s.Detail = detail }); err != nil {
		e.Log.Warn("record stage detail", "stage", stage, "err", err)
	}
}

func marshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
