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
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/store"
)

// Replace (seed 000 §4.3.5): the node keeps its identity — id, index, name, role,
// cname, configuration ref, hence broker id and myid — and gets a new server: the old
// one is deleted, a new one boots under the same name, is installed and configured at
// the ref the node ran, and then the nodes that must notice its new address are
// reconfigured: the component's other members one at a time with the leader last (for
// quorum types), and dependents.

// kindReplaceState keeps what the node was before a replace, by action id.
const kindReplaceState = "replace_state"

type replaceState struct {
	ActionID    string   `json:"action_id"`
	NodeID      string   `json:"node_id"`
	OldServerID string   `json:"old_server_id"`
	OldIPs      []string `json:"old_ips"`
	OldHost     string   `json:"old_hypervisor"`
}

func (e *Env) loadReplaceState(ctx context.Context, actionID string) (replaceState, error) {
	st, _, err := store.Load[replaceState](ctx, e.DB.S, kindReplaceState, actionID)
	if errs.Is(err, errs.NotFound) {
		return st, fmt.Errorf("replace %s: the node's previous server was not recorded", actionID)
	}
	return st, err
}

// ReimageNode makes the node new again, once: it remembers the old server, resets the
// node to SPAWNING (generation + 1, created by this action) in the same write, deletes
// the old server and waits until Nova no longer lists it (ServersRemain, retried), and
// empties the node's command queue so that the new server's agent starts clean.
func (e *Env) ReimageNode(ctx context.Context, in OpIn) (Empty, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, StageReimage)
	n, rec, err := e.DB.Node(ctx, in.NodeID)
	if err != nil {
		return Empty{}, err
	}
	if n.CreatedBy != in.ActionID {
		st := replaceState{ActionID: in.ActionID, NodeID: n.ID, OldServerID: n.ServerID, OldIPs: n.IPs, OldHost: n.Hypervisor}
		sr, err := store.Encode(kindReplaceState, in.ActionID, st)
		if err != nil {
			return Empty{}, err
		}
		n.Status, n.Generation, n.CreatedBy = model.NodeSpawning, n.Generation+1, in.ActionID
		n.ServerID, n.Hypervisor, n.IPs, n.Error, n.InstalledVersion = "", "", nil, "", ""
		n.UpdatedAt = e.DB.Now()
		nr, err := db.NodeRecord(&n)
		if err != nil {
			return Empty{}, err
		}
		nr.Version = rec.Version
		if err := e.DB.S.Write(ctx, store.Put(nr, store.AtVersion), store.Put(sr, store.Absent)); err != nil {
			return Empty{}, fmt.Errorf("reset node %s for its new server: %w", n.Name, err)
		}
	}
	st, err := e.loadReplaceState(ctx, in.ActionID)
	if err != nil {
		return Empty{}, err
	}
	compute, err := e.Clouds.Zone(ctx, n.AvailabilityZone)
	if err != nil {
		return Empty{}, err
	}
	if n.ServerID == "" { // the new server is not booted yet: everything under the name is old
		if err := e.deleteServers(ctx, compute, &n, st.OldServerID); err != nil {
			return Empty{}, err
		}
	}
	// Commands left for the old server (a stop, say) must not reach the new one.
	if err := e.Queue.Remove(ctx, queue.NodeQueue(n.ID)); err != nil {
		return Empty{}, fmt.Errorf("empty command queue of node %s: %w", n.Name, err)
	}
	if err := e.DB.S.Write(ctx, store.Del(db.KindLease, n.ID, store.Any, 0)); err != nil {
		return Empty{}, err
	}
	e.stageDone(ctx, in.ActionID, in.ComponentID, StageReimage, "", nil,
		fmt.Sprintf("old server %s of node %s deleted (generation %d)", orNone(st.OldServerID), n.Name, n.Generation))
	e.emit(ctx, model.Event{Type: "node.replacing", TopologyID: n.TopologyID, ComponentID: n.ComponentID, NodeID: n.ID,
		ActionID: in.ActionID, Tenant: n.Tenant, Message: fmt.Sprintf("node %s: old server %s deleted, booting a new one", n.Name, orNone(st.OldServerID))})
	return Empty{}, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// LeaderProbe is how to ask a member of a quorum type whether it leads: a guest command
// whose output holds Marker on the leader (zookeeper's four-letter word srvr prints
// "Mode: leader" or "Mode: follower").
type LeaderProbe struct {
	Command string
	Marker  string
}

// LeaderProbes by component type. A quorum type without a probe is ordered by the
// deterministic rule of PlanRestarts.
var LeaderProbes = map[string]LeaderProbe{
	"zookeeper": {Command: "zk-cmd/srvr", Marker: "Mode: leader"},
}

// ProbeLeader asks every other serving member of the component whether it leads; nodes
// that do not answer or fail are simply not the leader (the batch tolerates them).
func (e *Env) ProbeLeader(ctx context.Context, in NodeIn) (Empty, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, StageLeaderProbe)
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	sp := batch.Spec{
		ID: batch.ID(in.ActionID, in.ComponentID, StageLeaderProbe), Token: in.Token, ActionID: in.ActionID, TopologyID: in.TopologyID,
		ComponentID: in.ComponentID, Stage: StageLeaderProbe, Command: agentproto.CmdGuest, Tolerate: true,
		OnOK: batch.Keep, OnFail: batch.Keep, Timeout: min(e.Settings.StageTimeout, probeTimeout),
	}
	if probe, ok := LeaderProbes[c.Type]; ok {
		all, err := e.DB.Nodes(ctx, in.ComponentID)
		if err != nil {
			return Empty{}, err
		}
		for _, n := range all {
			if n.ID == in.NodeID || !up(n.Status) {
				continue
			}
			sp.Targets = append(sp.Targets, batch.Target{NodeID: n.ID, NodeName: n.Name, Command: &agentproto.Command{
				ID: batch.CommandID(sp.ID, n.ID), Kind: agentproto.CmdGuest, Role: n.Role, Type: c.Type, Version: c.Version, Command: probe.Command,
			}})
		}
	}
	_, err = e.Batches.Open(ctx, sp)
	return Empty{}, err
}

// up reports whether a node's status is serving: ACTIVE, or ACTIVE with configuration
// that waits for a restart.
func up(status string) bool { return status == model.NodeActive || status == NodeRestartRequired }

// RestartPlan is the ordered rolling restart.
type RestartPlan struct {
	Steps []RestartStepIn `json:"steps"`
}

// RestartStepIn is one member's turn in a rolling restart.
type RestartStepIn struct {
	Ref
	NodeID string `json:"node_id"`
	Name   string `json:"name"`
	Stage  string `json:"stage,omitempty"` // restart:<name>
	Phase  string `json:"phase,omitempty"` // begin|end, set by the state machine
}

// PlanRestarts orders, for a one-at-a-time restart, the other members whose new
// configuration waits for one (RESTART_REQUIRED after the configuration change): the
// followers first, by index, the leader last. The leader is the member whose probe
// output says so; when none does (no probe for the type, or no answer), it is the member
// with the highest index — ZooKeeper's election picks the highest myid among equally
// up-to-date servers, and myid is the index.
func (e *Env) PlanRestarts(ctx context.Context, in OpIn) (RestartPlan, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, StageRestartPlan)
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return RestartPlan{}, err
	}
	all, err := e.DB.Nodes(ctx, in.ComponentID)
	if err != nil {
		return RestartPlan{}, err
	}
	var targets []model.Node
	for _, n := range sortedByIndex(all) {
		if n.ID != in.NodeID && n.Status == NodeRestartRequired {
			targets = append(targets, n)
		}
	}
	leader, how := "", "highest index"
	if probe, ok := LeaderProbes[c.Type]; ok {
		entries, err := e.Batches.Entries(ctx, batch.ID(in.ActionID, in.ComponentID, StageLeaderProbe))
		if err != nil && !errs.Is(err, errs.NotFound) {
			return RestartPlan{}, err
		}
		for _, en := range entries {
			if en.Status == batch.OK && strings.Contains(en.Output, probe.Marker) {
				leader, how = en.NodeID, "probe "+probe.Command
			}
		}
	}
	var order []model.Node
	var last *model.Node
	for i := range targets {
		if targets[i].ID == leader {
			last = &targets[i]
			continue
		}
		order = append(order, targets[i])
	}
	switch {
	case last != nil:
		order = append(order, *last)
	case leader != "":
		how += " (the leader needs no restart)"
	default:
		how = "highest index"
	}
	out := RestartPlan{Steps: []RestartStepIn{}}
	var names []string
	for _, n := range order {
		out.Steps = append(out.Steps, RestartStepIn{Ref: in.Ref, NodeID: n.ID, Name: n.Name, Stage: StageRestartPre + n.Name})
		names = append(names, n.Name)
	}
	detail := "no member waits for a restart"
	if len(names) > 0 {
		detail = fmt.Sprintf("one at a time: %s (leader last, by %s)", strings.Join(names, ", "), how)
	}
	e.stageDone(ctx, in.ActionID, in.ComponentID, StageRestartPlan, "", nil, detail)
	return out, nil
}

// RestartStep records the start (phase begin) and end (phase end) of one member's turn
// in a rolling restart as the stage "restart:<node name>" — their timestamps show that
// turns never overlap — and, at the end, that the member runs its new configuration.
func (e *Env) RestartStep(ctx context.Context, in RestartStepIn) (Empty, error) {
	stage := StageRestartPre + in.Name
	switch in.Phase {
	case "begin":
		e.stageRunning(ctx, in.ActionID, in.ComponentID, stage)
	case "end":
		if _, err := e.DB.UpdateNode(ctx, in.NodeID, func(x *model.Node) error {
			if x.Status == NodeRestartRequired {
				x.Status, x.Error = model.NodeActive, ""
			}
			return nil
		}); err != nil {
			return Empty{}, err
		}
		e.stageDone(ctx, in.ActionID, in.ComponentID, stage, "", nil, "restarted and validated")
	default:
		return Empty{}, errs.Invalidf("phase", "want begin or end, got %q", in.Phase)
	}
	return Empty{}, nil
}
