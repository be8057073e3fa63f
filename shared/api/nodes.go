package api

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/stages"
	"github.com/straas/straas/shared/store"
)

// The node routes: show, flexdown (DELETE), replace (PUT) and services.

func (s *Server) showNode(w http.ResponseWriter, r *http.Request) error {
	n, _, err := scopedAs[model.Node](r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, NodeResponse{Node: s.nodeView(r.Context(), n)})
	return nil
}

func (s *Server) nodeView(ctx context.Context, n model.Node) NodeView {
	v := NodeView{Node: n}
	if l, err := s.DB.Lease(ctx, n.ID); err == nil {
		seen := l.LastSeen
		v.LastHeartbeat, v.Services, v.Metrics = &seen, l.Services, l.Metrics
	}
	return v
}

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errs.Invalidf(name, "want true or false, got %q", v)
	}
	return b, nil
}

// nodeOp loads what every node operation checks: the node, its topology and component.
type nodeOp struct {
	lc    *Lifecycle
	n     model.Node
	t     model.Topology
	c     model.Component
	crec  store.Record
	ti    stages.TypeInfo
	nodes []model.Node
	force bool
}

func (s *Server) loadNodeOp(r *http.Request) (*nodeOp, error) {
	lc, err := s.lifecycle()
	if err != nil {
		return nil, err
	}
	op := &nodeOp{lc: lc}
	if op.n, _, err = scopedAs[model.Node](r); err != nil {
		return nil, err
	}
	op.t, _, _ = ScopedTopology(r)
	ctx := r.Context()
	if op.c, op.crec, err = s.DB.Component(ctx, op.n.ComponentID); err != nil {
		return nil, err
	}
	if op.force, err = boolParam(r, "force"); err != nil {
		return nil, err
	}
	if op.ti, err = s.typeInfo(ctx, lc, op.c.Type); err != nil {
		return nil, err
	}
	if op.nodes, err = s.DB.Nodes(ctx, op.c.ID); err != nil {
		return nil, err
	}
	if op.n.Status == model.NodeDeleting {
		return nil, errs.Conflictf("node %s is being removed", op.n.Name)
	}
	return op, nil
}

// member: the node counts in its component's configuration.
func member(n *model.Node) bool {
	return n.Status != model.NodeFailed && n.Status != model.NodeDeleting
}

// serving: a member whose service is up.
func serving(n *model.Node) bool {
	return n.Status == model.NodeActive || n.Status == stages.NodeRestartRequired
}

// others counts the members other than n, and those of them serving, in all and of n's role.
func (op *nodeOp) others() (members, up, sameRole, sameRoleUp int) {
	for i := range op.nodes {
		x := &op.nodes[i]
		if x.ID == op.n.ID || !member(x) {
			continue
		}
		members++
		if serving(x) {
			up++
		}
		if x.Role == op.n.Role {
			sameRole++
			if serving(x) {
				sameRoleUp++
			}
		}
	}
	return
}

// majority is how many members of an ensemble of n must be up.
func majority(n int) int { return n/2 + 1 }

// removalRefused says why a member may not go (nil: it may).
func (op *nodeOp) removalRefused() error {
	n, c, ti := &op.n, &op.c, &op.ti
	if !member(n) {
		return nil // a FAILED node is no member: nothing depends on it
	}
	rest, up, sameRole, sameRoleUp := op.others()
	if ti.Quorum {
		safe := max(3, ti.MinSize)
		if rest < safe {
			return errs.Conflictf("removing node %s would shrink the %s ensemble %s from %d to %d members: below %d a single failure loses the quorum (a majority must stay up), so %d is the quorum-safe minimum",
				n.Name, c.Type, c.Name, rest+1, rest, safe, safe)
		}
		if up < majority(rest) {
			return errs.Conflictf("removing node %s would leave %d of the %d remaining members of %s up, fewer than the majority of %d a quorum needs",
				n.Name, up, rest, c.Name, majority(rest))
		}
	}
	if rest < ti.MinSize {
		return errs.Conflictf("removing node %s would leave component %s with %d nodes, below the minimum of %d for %s",
			n.Name, c.Name, rest, ti.MinSize, c.Type)
	}
	if sameRole == 0 && (ti.ReconfigureSelf(n.Role) || ti.ReconfigureDependents(n.Role)) {
		return errs.Conflictf("node %s is the last %s node of %s: configuration lists %s nodes and would list none",
			n.Name, n.Role, c.Name, n.Role)
	}
	if d, ok := ti.DrainFor(n.Role); ok && !op.force {
		if n.Status != model.NodeActive {
			return errs.Conflictf("node %s is %s: its drain (%s) cannot run; pass force=true to remove it without draining (its data is lost)",
				n.Name, n.Status, d.Command)
		}
		if sameRoleUp == 0 {
			return errs.Conflictf("node %s holds data nothing else holds: it is the only serving %s node of %s, so its drain (%s) has nowhere to move it",
				n.Name, n.Role, c.Name, d.Command)
		}
	}
	return nil
}

// flexdown is DELETE /nodes/{id}.
func (s *Server) flexdown(w http.ResponseWriter, r *http.Request) error {
	op, err := s.loadNodeOp(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := s.busy(ctx, &op.t, &op.c, model.StatusActive, model.StatusDegraded, model.StatusFailed); err != nil {
		return err
	}
	if err := op.removalRefused(); err != nil {
		return err
	}
	a := &model.Action{Kind: stages.ActionFlexdown, Machine: "flexdown", NodeID: op.n.ID}
	in := stages.OpIn{NodeID: op.n.ID, Role: op.n.Role, Member: member(&op.n), Force: op.force}
	if err := s.submitOp(r, &op.t, &op.c, op.crec, a, in, true); err != nil {
		return err
	}
	s.event(r, model.Event{Type: "node.delete", TopologyID: op.t.ID, ComponentID: op.c.ID, NodeID: op.n.ID, ActionID: a.ID,
		Message: fmt.Sprintf("%s asked to remove node %s from component %s", principal(r).UserName, op.n.Name, op.c.Name)})
	writeJSON(w, http.StatusAccepted, NodeAccepted{Node: op.n, Action: actionRef(a.ID)})
	return nil
}

// replaceNode is PUT /nodes/{id}.
func (s *Server) replaceNode(w http.ResponseWriter, r *http.Request) error {
	op, err := s.loadNodeOp(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if err := s.busy(ctx, &op.t, &op.c, model.StatusActive, model.StatusDegraded, model.StatusFailed); err != nil {
		return err
	}
	n, c := &op.n, &op.c
	if member(n) {
		rest, up, _, sameRoleUp := op.others()
		if op.ti.Quorum && up < majority(rest+1) {
			return errs.Conflictf("replacing node %s takes it down while only %d of the other %d members of %s are up: the ensemble of %d needs %d up",
				n.Name, up, rest, c.Name, rest+1, majority(rest+1))
		}
		if d, ok := op.ti.DrainFor(n.Role); ok && !op.force && n.Status == model.NodeActive && sameRoleUp == 0 {
			return errs.Conflictf("node %s holds data nothing else holds: it is the only serving %s node of %s, so its drain (%s) has nowhere to move it and its new server starts empty; pass force=true to replace it anyway",
				n.Name, n.Role, c.Name, d.Command)
		}
	}
	a := &model.Action{Kind: stages.ActionReplace, Machine: "replace", NodeID: n.ID}
	in := stages.OpIn{NodeID: n.ID, Role: n.Role, Member: member(n), Force: op.force}
	if err := s.submitOp(r, &op.t, c, op.crec, a, in, true); err != nil {
		return err
	}
	s.event(r, model.Event{Type: "node.replace", TopologyID: op.t.ID, ComponentID: c.ID, NodeID: n.ID, ActionID: a.ID,
		Message: fmt.Sprintf("%s asked to replace node %s of component %s", principal(r).UserName, n.Name, c.Name)})
	writeJSON(w, http.StatusAccepted, NodeAccepted{Node: *n, Action: actionRef(a.ID)})
	return nil
}

// nodeServices is POST (start), DELETE (stop) and PUT (restart) /nodes/{id}/services.
func (s *Server) nodeServices(w http.ResponseWriter, r *http.Request) error {
	op, err := s.loadNodeOp(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	cmd := map[string]string{http.MethodPost: agentproto.CmdStart, http.MethodDelete: agentproto.CmdStop, http.MethodPut: agentproto.CmdRestart}[r.Method]
	n, c := &op.n, &op.c
	service := r.URL.Query().Get("service")
	if known := op.ti.Services[n.Role]; service != "" && len(known) > 0 && !contains(known, service) {
		return errs.Invalidf("service", "%s nodes run %s, not %q", n.Role, strings.Join(known, ", "), service)
	}
	if !stages.Reachable(n) {
		return errs.Conflictf("node %s is %s: its agent cannot take commands", n.Name, n.Status)
	}
	if err := s.busy(ctx, &op.t, c, model.StatusActive, model.StatusDegraded, model.StatusFailed); err != nil {
		return err
	}
	if cmd != agentproto.CmdStart && op.ti.Quorum && serving(n) && !op.force {
		rest, _, _, _ := op.others()
		running := 0
		for i := range op.nodes {
			x := &op.nodes[i]
			if x.ID != n.ID && serving(x) && s.servicesRunning(ctx, x.ID) {
				running++
			}
		}
		if running < majority(rest+1) {
			return errs.Conflictf("%s on node %s would leave %d of the %d members of %s running, fewer than the majority of %d a quorum needs; pass force=true to insist",
				cmd, n.Name, running, rest+1, c.Name, majority(rest+1))
		}
	}
	a := &model.Action{Kind: stages.ActionServices, Machine: "services", NodeID: n.ID}
	in := stages.OpIn{NodeID: n.ID, Role: n.Role, Command: cmd, Service: service}
	if err := s.submitOp(r, &op.t, c, op.crec, a, in, false); err != nil {
		return err
	}
	s.event(r, model.Event{Type: "node.services", TopologyID: op.t.ID, ComponentID: c.ID, NodeID: n.ID, ActionID: a.ID,
		Message: fmt.Sprintf("%s asked to %s the services of node %s", principal(r).UserName, cmd, n.Name)})
	writeJSON(w, http.StatusAccepted, NodeAccepted{Node: *n, Action: actionRef(a.ID)})
	return nil
}

// servicesRunning: the node's last heartbeat reports no stopped or failed service.
func (s *Server) servicesRunning(ctx context.Context, nodeID string) bool {
	l, err := s.DB.Lease(ctx, nodeID)
	if err != nil {
		return true // not heard from yet: its status says it serves
	}
	for _, st := range l.Services {
		if st != "running" {
			return false
		}
	}
	return true
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
