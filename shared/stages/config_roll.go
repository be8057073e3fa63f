package stages

import (
	"context"
	"fmt"
	"strings"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/store"
)

// kindConfigRoll holds one node's plan within a run of a configuration change.
const kindConfigRoll = "config_roll"

func rollRecord(nr *nodeRoll) (store.Record, error) {
	r, err := store.Encode(kindConfigRoll, nr.Run+"/"+nr.NodeID, nr)
	r.Index = map[string]store.IndexKey{store.IdxParent: {Part: nr.Run, Sort: fmt.Sprintf("%08d", nr.Index)}}
	return r, err
}

func (e *Env) putRoll(ctx context.Context, nr *nodeRoll) error {
	r, err := rollRecord(nr)
	if err != nil {
		return err
	}
	return e.DB.S.Write(ctx, store.Put(r, store.Any))
}

func (e *Env) loadRoll(ctx context.Context, run, nodeID string) (nodeRoll, error) {
	nr, _, err := store.Load[nodeRoll](ctx, e.DB.S, kindConfigRoll, run+"/"+nodeID)
	if errs.Is(err, errs.NotFound) {
		return nr, errs.NotFoundf("no plan for node %s in configuration change %s", nodeID, run)
	}
	return nr, err
}

func (e *Env) rolls(ctx context.Context, run string) ([]nodeRoll, error) {
	return store.All[nodeRoll](ctx, e.DB.S, kindConfigRoll, store.Query{Index: store.IdxParent, Part: run})
}

// rollBatch is the id of the batch that runs one step of one node's roll: the batches
// also tell how far each node got, should the roll stop.
func rollBatch(actionID, componentID, run, nodeID, command string) string {
	return batch.ID(actionID, componentID, "config_change/"+run+"/"+nodeID+"/"+command)
}

// rollProgress is how far a node's roll got: the steps whose batch succeeded, and the
// step that failed or is in flight ("" when none).
func (e *Env) rollProgress(ctx context.Context, actionID, componentID string, nr *nodeRoll) (ok []string, at string, failed bool, err error) {
	for _, step := range rollSteps(nr) {
		b, err := e.Batches.Get(ctx, rollBatch(actionID, componentID, nr.Run, nr.NodeID, step))
		switch {
		case errs.Is(err, errs.NotFound):
			return ok, "", false, nil
		case err != nil:
			return nil, "", false, err
		case !b.Completed:
			return ok, step, false, nil
		case b.Failed > 0:
			return ok, step, true, nil
		}
		ok = append(ok, step)
	}
	return ok, "", false, nil
}

// stageStep marks a node's stage running a step, in one write.
func (e *Env) stageStep(ctx context.Context, actionID, componentID, stage, detail string) {
	_, err := e.DB.UpdateStage(ctx, actionID, componentID, stage, func(s *model.Stage) {
		if s.Status == "" || s.Status == "FAILED" {
			s.StartedAt = e.DB.Now()
		}
		s.Status, s.FinishedAt, s.Detail = "RUNNING", nil, detail
	})
	if err != nil {
		e.Log.Warn("record stage step", "action", actionID, "stage", stage, "err", err)
	}
}

// RollCommandIn is the payload of one roll step (a .waitForTaskToken task).
type RollCommandIn struct {
	Token       string `json:"token"`
	ActionID    string `json:"action_id"`
	TopologyID  string `json:"topology_id"`
	ComponentID string `json:"component_id"`
	NodeID      string `json:"node_id"`
	Run         string `json:"run"`
	Command     string `json:"command"` // install, pre_configure, configure, restart or validate
}

// ConfigChangeCommand sends one step of a node's roll to its agent; the answer completes
// the task. A failed step leaves the node's status alone: the failure handler records it.
func (e *Env) ConfigChangeCommand(ctx context.Context, in RollCommandIn) (Empty, error) {
	nr, err := e.loadRoll(ctx, in.Run, in.NodeID)
	if err != nil {
		return Empty{}, err
	}
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	n, _, err := e.DB.Node(ctx, in.NodeID)
	if err != nil {
		return Empty{}, err
	}
	stage := ConfigNodeStage(n.Name)
	e.stageStep(ctx, in.ActionID, in.ComponentID, stage, "running "+in.Command)
	id := rollBatch(in.ActionID, in.ComponentID, in.Run, n.ID, in.Command)
	cmd := &agentproto.Command{ID: batch.CommandID(id, n.ID), Kind: in.Command, Role: n.Role, Type: c.Type, Version: c.Version}
	switch in.Command {
	case agentproto.CmdInstall:
		pkg, err := e.Repos.Package(ctx, c.Type, n.Role, c.Version)
		if err != nil {
			return Empty{}, fmt.Errorf("install metadata of %s %s role %s: %w", c.Type, c.Version, n.Role, err)
		}
		cmd.Package = &pkg
	case agentproto.CmdPreConfigure:
		cmd.Sections, cmd.SitePP, cmd.Ref = nr.Config.Sections, nr.Config.SitePP, nr.Config.Ref
		// The node's record says what it received (its config_ref stays what it validated
		// until NodeDone): should the roll stop here, the next change compares with this.
		if _, err := e.DB.UpdateNode(ctx, n.ID, func(x *model.Node) error {
			cfg := nr.Config
			x.Config = &cfg
			if nr.RestartRequired && !nr.First && x.Status == model.NodeActive {
				x.Status = NodeRestartRequired // configuration that needs a restart to take effect
			}
			return nil
		}); err != nil {
			return Empty{}, err
		}
	case agentproto.CmdConfigure:
		cmd.Ref = nr.Config.Ref
	case agentproto.CmdRestart, agentproto.CmdValidate:
	default:
		return Empty{}, errs.Invalidf("command", "configuration change: unknown step %q", in.Command)
	}
	_, err = e.Batches.Open(ctx, batch.Spec{
		ID: id, Token: in.Token, ActionID: in.ActionID, TopologyID: in.TopologyID, ComponentID: in.ComponentID,
		Stage: stage, Command: in.Command, OnOK: batch.Keep, OnFail: batch.Keep, Timeout: e.Settings.StageTimeout,
		Targets: []batch.Target{{NodeID: n.ID, NodeName: n.Name, Command: cmd}},
	})
	return Empty{}, err
}

// RollNodeIn is the input of ConfigChangeNodeDone.
type RollNodeIn struct {
	ActionID    string `json:"action_id"`
	TopologyID  string `json:"topology_id"`
	ComponentID string `json:"component_id"`
	NodeID      string `json:"node_id"`
	Run         string `json:"run"`
}

// ConfigChangeNodeDone records a node's successful roll: its configuration and the ref
// applied, its version, and its status (RESTART_REQUIRED if it still needs a restart).
func (e *Env) ConfigChangeNodeDone(ctx context.Context, in RollNodeIn) (Empty, error) {
	nr, err := e.loadRoll(ctx, in.Run, in.NodeID)
	if err != nil {
		return Empty{}, err
	}
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	pending := nr.RestartRequired && !nr.Restart && !nr.First
	n, err := e.DB.UpdateNode(ctx, in.NodeID, func(x *model.Node) error {
		cfg := nr.Config
		x.Config, x.ConfigRef, x.Error = &cfg, cfg.Ref, ""
		if nr.Install != "" || nr.First || x.InstalledVersion == "" {
			x.InstalledVersion = c.Version
		}
		if x.Status != model.NodeDeleting {
			x.Status = model.NodeActive
			if pending {
				x.Status = NodeRestartRequired
			}
		}
		return nil
	})
	if err != nil {
		return Empty{}, err
	}
	steps := rollSteps(&nr)
	detail := strings.Join(steps, ", ") + " ok"
	if len(nr.Changed) > 0 {
		detail += "; changed " + strings.Join(nr.Changed, ", ")
	}
	if pending {
		detail += "; RESTART_REQUIRED (restart: none)"
	}
	e.stageDone(ctx, in.ActionID, in.ComponentID, ConfigNodeStage(n.Name), "", nil, detail)
	return Empty{}, nil
}

// rollSteps are the commands a node's roll runs, in order.
func rollSteps(nr *nodeRoll) []string {
	var s []string
	if nr.Install != "" {
		s = append(s, agentproto.CmdInstall)
	}
	s = append(s, agentproto.CmdPreConfigure, agentproto.CmdConfigure)
	if nr.Restart {
		s = append(s, agentproto.CmdRestart)
	}
	return append(s, agentproto.CmdValidate)
}

// ConfigResult is the outcome of a configuration change: the execution's output, or
// what its Fail state reports.
type ConfigResult struct {
	Status string `json:"status"`
	Commit string `json:"commit,omitempty"`
	Rolled int    `json:"rolled"`
	Error  string `json:"error,omitempty"`
	Cause  string `json:"cause,omitempty"`
}

// ConfigChangeFinish ends a successful change: nodes whose configuration already was the
// target get the new ref too; an own action succeeds and its component is ACTIVE again.
func (e *Env) ConfigChangeFinish(ctx context.Context, in ConfigRunIn) (ConfigResult, error) {
	req := in.Request
	run := runKey(in)
	commit := ""
	var unchanged []string
	if req.Plan != nil {
		commit, unchanged = req.Plan.Commit, req.Plan.Unchanged
	}
	for _, id := range unchanged {
		if _, err := e.DB.UpdateNode(ctx, id, func(x *model.Node) error {
			if x.Config != nil {
				x.Config.Ref = commit
			}
			x.ConfigRef = commit
			return nil
		}); err != nil && !errs.Is(err, errs.NotFound) {
			return ConfigResult{}, err
		}
	}
	rolls, err := e.rolls(ctx, run)
	if err != nil {
		return ConfigResult{}, err
	}
	restarted := 0
	for _, nr := range rolls {
		if nr.Restart {
			restarted++
		}
	}
	c, _, err := e.DB.Component(ctx, req.ComponentID)
	if err != nil {
		return ConfigResult{}, err
	}
	detail := fmt.Sprintf("%d nodes rolled (%d restarted), %d unchanged, at %s", len(rolls), restarted, len(unchanged), shortHash(commit))
	// The action's status comes last: whoever sees it SUCCEEDED sees all its stages.
	e.stageDone(ctx, req.ActionID, req.ComponentID, StageConfigDone, "", nil, detail)
	what := "configuration"
	if req.Reason == ReasonUpgrade {
		what = "upgrade to " + c.Version
	}
	e.emit(ctx, model.Event{Type: "component.config_changed", TopologyID: c.TopologyID, ComponentID: c.ID, ActionID: req.ActionID,
		Tenant: c.Tenant, Message: fmt.Sprintf("%s of component %s applied (%s, reason %s): %s", what, c.Name, refOr(req.Ref), req.Reason, detail)})
	own, err := e.ownAction(ctx, req.ActionID)
	if err != nil {
		return ConfigResult{}, err
	}
	if own {
		if _, err := e.DB.UpdateComponent(ctx, c.ID, func(x *model.Component) error {
			if x.Status == model.StatusUpdating || x.Status == model.StatusDegraded {
				x.Status = model.StatusActive
			}
			return nil
		}); err != nil {
			return ConfigResult{}, err
		}
		if _, err := e.DB.UpdateAction(ctx, req.ActionID, func(a *model.Action) error {
			now := e.DB.Now()
			a.Status, a.FinishedAt, a.Error = model.ActionSucceeded, &now, nil
			return nil
		}); err != nil {
			return ConfigResult{}, err
		}
	}
	return ConfigResult{Status: model.ActionSucceeded, Commit: commit, Rolled: len(rolls)}, nil
}

func refOr(ref string) string {
	if ref == "" {
		return "the topology's branch"
	}
	return ref
}

// ConfigChangeFailed records where and why a change stopped: the node in flight and
// its agent's answer, or the planning error. An own action fails with that cause and its
// component is DEGRADED when nodes were touched.
func (e *Env) ConfigChangeFailed(ctx context.Context, in ConfigRunIn) (ConfigResult, error) {
	req := in.Request
	run := runKey(in)
	se := StatesError{Error: "ConfigChangeFailed", Cause: "unknown"}
	if req.Error != nil {
		se = *req.Error
	}
	c, _, err := e.DB.Component(ctx, req.ComponentID)
	if err != nil {
		return ConfigResult{}, err
	}
	rolls, err := e.rolls(ctx, run)
	if err != nil {
		return ConfigResult{}, err
	}
	// How far each node got, from its batches: the node whose step failed (else the one
	// in flight, when a step timed out) is the cause; nodes whose validate passed are done.
	var failing *nodeRoll
	var step string
	done, sawFailure := 0, false
	for i := range rolls {
		ok, at, failed, err := e.rollProgress(ctx, req.ActionID, c.ID, &rolls[i])
		if err != nil {
			return ConfigResult{}, err
		}
		switch {
		case len(ok) > 0 && ok[len(ok)-1] == agentproto.CmdValidate:
			done++
		case failed && !sawFailure:
			failing, step, sawFailure = &rolls[i], at, true
		case at != "" && failing == nil:
			failing, step = &rolls[i], at
		}
	}
	out := ConfigResult{Status: model.ActionFailed, Error: se.Error, Cause: se.Cause, Rolled: done}
	aerr := &model.ActionError{Component: c.Name, Stage: "pre_config", Error: se.Error, Cause: se.Cause}
	if failing != nil {
		why := e.nodeFailure(ctx, req.ActionID, c.ID, failing.Name, se)
		if se.Error != "States.Timeout" {
			out.Error = "NodeCommandFailed"
		}
		out.Cause = fmt.Sprintf("%s failed on node %s: %s; the roll stopped after %d of %d nodes", step, failing.Name, why, done, len(rolls))
		aerr = &model.ActionError{Component: c.Name, Stage: step, Node: failing.Name, Error: out.Error, Cause: out.Cause}
		if _, err := e.DB.UpdateNode(ctx, failing.NodeID, func(x *model.Node) error {
			x.Error = "configuration change: " + step + ": " + why
			return nil
		}); err != nil && !errs.Is(err, errs.NotFound) {
			return ConfigResult{}, err
		}
		stage := ConfigNodeStage(failing.Name)
		e.stageDone(ctx, req.ActionID, c.ID, stage, "FAILED",
			[]model.NodeFailure{{Node: failing.NodeID, Name: failing.Name, Error: step + ": " + why}}, out.Cause)
	} else if s, _, err := store.Load[model.Stage](ctx, e.DB.S, db.KindStage, db.StageID(req.ActionID, c.ID, StageConfigPlan)); err == nil && s.Status != "SUCCEEDED" {
		e.stageDone(ctx, req.ActionID, c.ID, StageConfigPlan, "FAILED", nil, se.Cause)
	}
	e.stageDone(ctx, req.ActionID, c.ID, StageConfigDone, "FAILED", nil, out.Cause)
	e.emit(ctx, model.Event{Type: "component.config_change_failed", Level: model.LevelError, TopologyID: c.TopologyID,
		ComponentID: c.ID, ActionID: req.ActionID, Tenant: c.Tenant,
		Message: fmt.Sprintf("configuration change of component %s (%s) failed: %s", c.Name, refOr(req.Ref), out.Cause)})
	own, err := e.ownAction(ctx, req.ActionID)
	if err != nil {
		return ConfigResult{}, err
	}
	if own {
		touched := done > 0 || failing != nil || req.Reason == ReasonUpgrade
		if _, err := e.DB.UpdateComponent(ctx, c.ID, func(x *model.Component) error {
			if x.Status == model.StatusUpdating || x.Status == model.StatusDegraded {
				x.Status = model.StatusActive
				if touched {
					x.Status = model.StatusDegraded
				}
			}
			return nil
		}); err != nil {
			return ConfigResult{}, err
		}
		if _, err := e.DB.UpdateAction(ctx, req.ActionID, func(a *model.Action) error {
			now := e.DB.Now()
			a.Status, a.FinishedAt, a.Error = model.ActionFailed, &now, aerr
			return nil
		}); err != nil {
			return ConfigResult{}, err
		}
	}
	return out, nil
}

// nodeFailure is why a node's step failed: its agent's answer, or the workflow's error.
func (e *Env) nodeFailure(ctx context.Context, actionID, componentID, nodeName string, se StatesError) string {
	if se.Error == "States.Timeout" {
		return "no answer within the stage timeout"
	}
	st, _, err := store.Load[model.Stage](ctx, e.DB.S, db.KindStage, db.StageID(actionID, componentID, ConfigNodeStage(nodeName)))
	if err == nil {
		for _, f := range st.Failures {
			if f.Error != "" {
				return f.Error
			}
		}
	}
	return se.Cause
}
