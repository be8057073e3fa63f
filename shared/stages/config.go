package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
)

// The configuration change (seed 000 §4.3.6) and component upgrades: the stage functions
// of statemachines/config_change.asl.json. A change re-runs pre-config for the component's
// members, compares each node's new configuration with what it last received, and rolls
// the nodes that differ one at a time (install if the version changed, pre_configure,
// configure, restart where needed, validate); a failed step stops the roll.

// MachineConfigChange is the state machine of configuration changes and upgrades.
const MachineConfigChange = "config_change"

// Reasons a configuration change runs (ConfigChangeIn.Reason).
const (
	ReasonApply    = "apply"    // a user applied a ref (PUT /components/{id}/tree/{ref})
	ReasonUpgrade  = "upgrade"  // the component's version changed
	ReasonFlexup   = "flexup"   // nodes were added
	ReasonFlexdown = "flexdown" // nodes are being removed
	ReasonReplace  = "replace"  // a node was replaced
	ReasonScripts  = "scripts"  // the script repo changed
)

// Restart policies (ConfigChangeIn.Restart).
const (
	RestartChanged = "changed" // restart where an option marked restart_required changed
	RestartAll     = "all"     // restart every node rolled, and roll every node
	RestartNone    = "none"    // never restart: such nodes stay RESTART_REQUIRED
)

// NodeRestartRequired is the status of a node whose configuration changed in a way that
// needs a service restart that has not happened yet.
const NodeRestartRequired = model.NodeRestartRequired

// Stage names of a configuration change, as actions show them; each node rolled has its
// own stage, ConfigNodeStage.
const (
	StageConfigWindow = "config_change/wait_window" // only when the change waited for a window
	StageConfigPlan   = "config_change/pre_config"
	StageConfigDone   = "config_change/done"
)

// ConfigNodeStage is the stage that shows one node's roll.
func ConfigNodeStage(nodeName string) string { return "config_change/" + nodeName }

// ConfigChangeIn is the input of the config_change state machine (the shared contract:
// other workflows start it as a child execution).
type ConfigChangeIn struct {
	ActionID    string `json:"action_id"`
	TopologyID  string `json:"topology_id"`
	ComponentID string `json:"component_id"`
	// Ref is the config ref to apply: a branch, branch&tag or commit; "" is the head of
	// the topology's branch.
	Ref     string `json:"ref,omitempty"`
	Reason  string `json:"reason,omitempty"`  // Reason*; default apply
	Restart string `json:"restart,omitempty"` // Restart*; default changed
	// ExcludeNodes are left out of membership and never touched (e.g. nodes being removed).
	ExcludeNodes []string `json:"exclude_nodes,omitempty"`
	// Parallel is how many nodes roll at once (default 1); for a quorum type it is capped
	// so that a majority of the members stays up.
	Parallel int `json:"parallel,omitempty"`
	// WaitForWindow: the change is not urgent, so when the component declares maintenance
	// windows its roll waits for the next opening. The API sets it for a user's apply or
	// upgrade unless asked to ignore_windows; membership-driven changes (children of
	// flexup, flexdown and replace) are urgent and a convergence waited already: neither
	// sets it.
	WaitForWindow bool `json:"wait_for_window,omitempty"`
}

// Normalize fills defaults and checks the enumerations.
func (in *ConfigChangeIn) Normalize() error {
	if in.Reason == "" {
		in.Reason = ReasonApply
	}
	if in.Restart == "" {
		in.Restart = RestartChanged
	}
	switch in.Reason {
	case ReasonApply, ReasonUpgrade, ReasonFlexup, ReasonFlexdown, ReasonReplace, ReasonScripts:
	default:
		return errs.Invalidf("reason", "%q: want apply, upgrade, flexup, flexdown, replace or scripts", in.Reason)
	}
	switch in.Restart {
	case RestartChanged, RestartAll, RestartNone:
	default:
		return errs.Invalidf("restart", "%q: want changed, all or none", in.Restart)
	}
	if in.TopologyID == "" || in.ComponentID == "" {
		return errs.Invalidf("component_id", "topology_id and component_id are required")
	}
	switch {
	case in.Parallel == 0:
		in.Parallel = 1
	case in.Parallel < 0 || in.Parallel > MaxParallel:
		return errs.Invalidf("parallel", "%d: want 1 to %d nodes at once", in.Parallel, MaxParallel)
	}
	return nil
}

// MaxParallel bounds how many nodes a configuration change rolls at once.
const MaxParallel = 100

// RestartKeys is implemented by Repos that know the options' metadata. Without it,
// every changed option is taken to need a restart.
type RestartKeys interface {
	// RestartKeys maps every option declared for typ at version, read at ref, as
	// "section.key", to whether changing it needs a service restart (restart_required).
	RestartKeys(ctx context.Context, ref, typ, version string) (map[string]bool, error)
}

// ConfigPlan is what a configuration change will do: per node, what changes and how it
// is rolled. It is the answer of a dry run.
type ConfigPlan struct {
	TopologyID  string     `json:"topology_id"`
	ComponentID string     `json:"component_id"`
	Component   string     `json:"component"`
	Type        string     `json:"type"`
	Version     string     `json:"version"`
	Ref         string     `json:"ref"`    // as asked ("" resolved to the topology's branch)
	Commit      string     `json:"commit"` // the config commit the ref resolved to
	Restart     string     `json:"restart"`
	Parallel    int        `json:"parallel"` // nodes rolled at once
	Nodes       []NodePlan `json:"nodes"`
	ToRoll      int        `json:"nodes_to_roll"`
	ToRestart   int        `json:"nodes_to_restart"`
	Unchanged   int        `json:"nodes_unchanged"`
	Skipped     int        `json:"nodes_skipped"`
}

// Changed reports whether applying the plan touches any node.
func (p *ConfigPlan) Changed() bool { return p.ToRoll > 0 }

// NodePlan is one node's part of a configuration change.
type NodePlan struct {
	NodeID string `json:"node_id"`
	Name   string `json:"name"`
	Role   string `json:"role"`
	Index  int    `json:"index"`
	Status string `json:"status"`     // now
	From   string `json:"config_ref"` // the ref applied now
	// Changes are the options whose value differs from what the node last received.
	Changes []KeyChange `json:"changes,omitempty"`
	// RestartRequired: the change needs a service restart (an option marked
	// restart_required changed, a computed option changed, the version changed, or a
	// restart is still pending).
	RestartRequired bool `json:"restart_required"`
	Roll            bool `json:"roll"`    // the node is rolled
	Restart         bool `json:"restart"` // the roll restarts its services
	// Install is the version the roll installs ("" when the version does not change).
	Install string `json:"install,omitempty"`
	// First: the node has never been configured (a node a flexup added).
	First bool `json:"first_configuration,omitempty"`
	// Incomplete: the node received configuration it never validated (a roll stopped on it).
	Incomplete bool `json:"incomplete,omitempty"`
	// Skipped says why a node that differs is not rolled (unreachable, maintenance, ...).
	Skipped string           `json:"skipped,omitempty"`
	Config  model.NodeConfig `json:"-"`
}

// KeyChange is one option's change on a node.
type KeyChange struct {
	Key  string `json:"key"` // section.key
	From any    `json:"from,omitempty"`
	To   any    `json:"to,omitempty"`
}

// PlanOptions adjust a plan.
type PlanOptions struct {
	// Version plans as if the component were at this version (an upgrade's dry run).
	Version string
}

// PlanConfigChange computes what a configuration change would do, changing nothing: the
// dry run of the API and the first step of the workflow.
func (e *Env) PlanConfigChange(ctx context.Context, in ConfigChangeIn, opt PlanOptions) (ConfigPlan, error) {
	if err := in.Normalize(); err != nil {
		return ConfigPlan{}, err
	}
	t, _, err := e.DB.Topology(ctx, in.TopologyID)
	if err != nil {
		return ConfigPlan{}, err
	}
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return ConfigPlan{}, err
	}
	if c.TopologyID != t.ID {
		return ConfigPlan{}, errs.Invalidf("component_id", "component %s is not part of topology %s", c.ID, t.ID)
	}
	if opt.Version != "" {
		c.Version = opt.Version
	}
	exclude := map[string]bool{}
	for _, id := range in.ExcludeNodes {
		exclude[id] = true
	}
	members, err := e.members(ctx, c.ID, exclude)
	if err != nil {
		return ConfigPlan{}, err
	}
	deps, err := e.dependencies(ctx, &c)
	if err != nil {
		return ConfigPlan{}, err
	}
	ref := in.Ref
	if ref == "" {
		ref = t.ConfigBranch
	}
	pin := PreConfigInput{Ref: ref, Topology: t, Component: c, Nodes: members}
	for _, d := range deps {
		dn, err := e.members(ctx, d.ID, exclude)
		if err != nil {
			return ConfigPlan{}, err
		}
		pin.Dependencies = append(pin.Dependencies, Dependency{Component: d, Nodes: dn})
	}
	out, err := e.Repos.PreConfig(ctx, pin)
	if err != nil {
		return ConfigPlan{}, fmt.Errorf("pre-config of component %s at %s: %w", c.Name, ref, err)
	}
	var restartKeys map[string]bool
	if rk, ok := e.Repos.(RestartKeys); ok {
		if restartKeys, err = rk.RestartKeys(ctx, out.Ref, c.Type, c.Version); err != nil {
			return ConfigPlan{}, fmt.Errorf("option metadata of %s %s: %w", c.Type, c.Version, err)
		}
	}
	plan := ConfigPlan{TopologyID: t.ID, ComponentID: c.ID, Component: c.Name, Type: c.Type, Version: c.Version,
		Ref: ref, Commit: out.Ref, Restart: in.Restart, Parallel: in.Parallel, Nodes: []NodePlan{}}
	if ct, err := e.Repos.ComponentType(ctx, c.Type); err == nil && ct.Quorum {
		// Rolling takes nodes down: a quorum type keeps a majority of its members up.
		plan.Parallel = max(1, min(plan.Parallel, (len(members)-1)/2))
	}
	for i := range members {
		n := &members[i]
		cfg, ok := out.Nodes[n.ID]
		if !ok {
			return ConfigPlan{}, fmt.Errorf("pre-config of component %s computed no configuration for node %s", c.Name, n.Name)
		}
		cfg.Ref = out.Ref
		np := planNode(n, cfg, c.Version, in.Restart, restartKeys)
		switch {
		case np.Roll:
			plan.ToRoll++
			if np.Restart {
				plan.ToRestart++
			}
		case np.Skipped != "":
			plan.Skipped++
		default:
			plan.Unchanged++
		}
		plan.Nodes = append(plan.Nodes, np)
	}
	return plan, nil
}

// members are a component's nodes that count in its configuration (the serving ones),
// without the excluded.
func (e *Env) members(ctx context.Context, componentID string, exclude map[string]bool) ([]model.Node, error) {
	all, err := e.serving(ctx, componentID)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, n := range all {
		if !exclude[n.ID] {
			out = append(out, n)
		}
	}
	return out, nil
}

// planNode decides one node's part of a change.
func planNode(n *model.Node, cfg model.NodeConfig, version, restart string, restartKeys map[string]bool) NodePlan {
	np := NodePlan{NodeID: n.ID, Name: n.Name, Role: n.Role, Index: n.Index, Status: n.Status, From: n.ConfigRef, Config: cfg}
	eligible := false
	switch n.Status {
	case model.NodeActive, NodeRestartRequired, model.NodeInstalled, model.NodeConfigured:
		eligible = true
	}
	np.First = n.Config == nil || n.Status == model.NodeInstalled || n.Status == model.NodeConfigured
	if n.InstalledVersion != "" && n.InstalledVersion != version {
		np.Install = version
	}
	if !np.First {
		np.Changes = diffSections(n.Config.Sections, cfg.Sections)
		for _, ch := range np.Changes {
			if need, known := restartKeys[ch.Key]; need || !known {
				np.RestartRequired = true // computed options (server lists) are unknown: restart to be safe
				break
			}
		}
		// A node that received configuration it did not validate (a roll stopped on it)
		// is rolled again whatever it received, and restarted to be safe.
		np.Incomplete = n.Config.Ref != n.ConfigRef
		if np.Install != "" || n.Status == NodeRestartRequired || np.Incomplete {
			np.RestartRequired = true
		}
	}
	wants := np.First || len(np.Changes) > 0 || np.Install != "" || np.Incomplete || restart == RestartAll ||
		(n.Status == NodeRestartRequired && restart != RestartNone)
	switch {
	case !wants:
	case !eligible:
		np.Skipped = "node is " + n.Status
	default:
		np.Roll = true
		np.Restart = !np.First && restart != RestartNone && (restart == RestartAll || np.RestartRequired)
	}
	return np
}

// diffSections lists the options whose values differ between what a node has and what it
// gets, sorted. Values are compared after a JSON round trip: a node's stored sections
// have float64 numbers where fresh ones have int64.
func diffSections(have, want map[string]map[string]any) []KeyChange {
	h, w := normalize(have), normalize(want)
	keys := map[string]bool{}
	for s, opts := range h {
		for k := range opts {
			keys[s+"."+k] = true
		}
	}
	for s, opts := range w {
		for k := range opts {
			keys[s+"."+k] = true
		}
	}
	var out []KeyChange
	for sk := range keys {
		s, k, _ := strings.Cut(sk, ".")
		a, aok := h[s][k]
		b, bok := w[s][k]
		if aok == bok && reflect.DeepEqual(a, b) {
			continue
		}
		out = append(out, KeyChange{Key: sk, From: a, To: b})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func normalize(s map[string]map[string]any) map[string]map[string]any {
	var out map[string]map[string]any
	b, _ := json.Marshal(s)
	_ = json.Unmarshal(b, &out)
	return out
}

// --- the workflow's stages ---------------------------------------------------------------

// ConfigRunIn is the input of the workflow's own stages: the execution input (the
// contract, plus what earlier states added) and the execution's name, which keys the
// records of this run (one action may run several changes of the same component).
type ConfigRunIn struct {
	Request ConfigRunState `json:"request"`
	Run     string         `json:"run"`
}

// ConfigRunState is the execution's state as the stages see it.
type ConfigRunState struct {
	ConfigChangeIn
	Plan  *PlanOut     `json:"plan,omitempty"`
	Error *StatesError `json:"error,omitempty"`
}

// RollItem is one node of the roll (an item of the Map).
type RollItem struct {
	NodeID  string `json:"node_id"`
	Install bool   `json:"install"`
	Restart bool   `json:"restart"`
}

// PlanOut is what the plan stage hands the roll.
type PlanOut struct {
	Run       string     `json:"run"`
	Commit    string     `json:"commit"`
	Nodes     []RollItem `json:"nodes"`
	Unchanged []string   `json:"unchanged,omitempty"` // member node ids whose configuration is already the target
	Parallel  int        `json:"parallel"`            // the Map's MaxConcurrency
	Timeouts  Timeouts   `json:"timeouts"`
	// WindowWait: nothing was planned; the change waits for the component's maintenance
	// window, which opens at WindowUntil (RFC 3339), and plans again then.
	WindowWait  bool   `json:"window_wait"`
	WindowUntil string `json:"window_until,omitempty"`
}

// nodeRoll is one node's plan, kept for the roll's steps (written once, by the plan).
type nodeRoll struct {
	Run             string           `json:"run"`
	ActionID        string           `json:"action_id"`
	ComponentID     string           `json:"component_id"`
	NodeID          string           `json:"node_id"`
	Name            string           `json:"name"`
	Role            string           `json:"role"`
	Index           int              `json:"index"`
	Install         string           `json:"install,omitempty"`
	Restart         bool             `json:"restart"`
	RestartRequired bool             `json:"restart_required"`
	First           bool             `json:"first,omitempty"`
	Changed         []string         `json:"changed,omitempty"`
	Config          model.NodeConfig `json:"config"`
}

// ConfigChangePlan is the workflow's first stage: it plans the change, keeps each rolled
// node's plan, and returns the nodes to roll, in index order.
func (e *Env) ConfigChangePlan(ctx context.Context, in ConfigRunIn) (PlanOut, error) {
	req := in.Request.ConfigChangeIn
	run := runKey(in)
	if err := req.Normalize(); err != nil {
		return PlanOut{}, err
	}
	if own, err := e.ownAction(ctx, req.ActionID); err != nil {
		return PlanOut{}, err
	} else if own {
		if _, err := e.DB.UpdateAction(ctx, req.ActionID, func(a *model.Action) error {
			if a.Status == model.ActionPending {
				now := e.DB.Now()
				a.Status, a.StartedAt = model.ActionRunning, &now
			}
			return nil
		}); err != nil {
			return PlanOut{}, err
		}
	}
	if req.waitsForWindow() {
		if wait, err := e.configWindow(ctx, &req, run); err != nil || wait.WindowWait {
			return wait, err
		}
	}
	e.stageRunning(ctx, req.ActionID, req.ComponentID, StageConfigPlan)
	plan, err := e.PlanConfigChange(ctx, req, PlanOptions{})
	if err != nil {
		return PlanOut{}, err
	}
	out := PlanOut{Run: run, Commit: plan.Commit, Nodes: []RollItem{}, Parallel: plan.Parallel,
		Timeouts: Timeouts{Stage: int(e.Settings.StageTimeout/time.Second) + 60}}
	for _, np := range plan.Nodes {
		if !np.Roll {
			if np.Skipped == "" {
				out.Unchanged = append(out.Unchanged, np.NodeID)
			}
			continue
		}
		nr := &nodeRoll{Run: run, ActionID: req.ActionID, ComponentID: req.ComponentID, NodeID: np.NodeID, Name: np.Name,
			Role: np.Role, Index: np.Index, Install: np.Install, Restart: np.Restart, RestartRequired: np.RestartRequired,
			First: np.First, Config: np.Config}
		for _, ch := range np.Changes {
			nr.Changed = append(nr.Changed, ch.Key)
		}
		if err := e.putRoll(ctx, nr); err != nil {
			return PlanOut{}, err
		}
		out.Nodes = append(out.Nodes, RollItem{NodeID: np.NodeID, Install: np.Install != "", Restart: np.Restart})
	}
	e.stageDone(ctx, req.ActionID, req.ComponentID, StageConfigPlan, "", nil, planSummary(&plan))
	return out, nil
}

func planSummary(p *ConfigPlan) string {
	keys := map[string]bool{}
	for _, n := range p.Nodes {
		for _, ch := range n.Changes {
			keys[ch.Key] = true
		}
	}
	s := fmt.Sprintf("%s at %s: %d nodes to roll (%d with a restart), %d unchanged, %d skipped",
		p.Ref, shortHash(p.Commit), p.ToRoll, p.ToRestart, p.Unchanged, p.Skipped)
	if len(keys) > 0 {
		s += "; changed: " + strings.Join(sortedSet(keys), ", ")
	}
	return s
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func shortHash(h string) string {
	if len(h) > 10 {
		return h[:10]
	}
	return h
}

// runKey is the execution's name, or the action's id when a caller gave none.
func runKey(in ConfigRunIn) string {
	if in.Run != "" {
		return in.Run
	}
	return in.Request.ActionID + "/" + in.Request.ComponentID
}

// ownAction reports whether the action is a configuration change of its own (as opposed
// to a flexup, flexdown or replace running one as a child): only then do its stages
// decide the action's and the component's status.
func (e *Env) ownAction(ctx context.Context, actionID string) (bool, error) {
	a, _, err := e.DB.Action(ctx, actionID)
	if errs.Is(err, errs.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return a.Machine == MachineConfigChange, nil
}
