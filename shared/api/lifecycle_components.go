package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/stages"
)

// Component operations: flexup, the health check's status write-back, dependencies.

// FlexupRequest is the body of POST /components/{id}.
type FlexupRequest struct {
	Count int    `json:"count,omitempty"`
	Role  string `json:"role,omitempty"`
}

// MaxFlexup bounds the nodes one flexup adds.
const MaxFlexup = 100

// flexup is POST /components/{id}.
func (s *Server) flexup(w http.ResponseWriter, r *http.Request) error {
	lc, err := s.lifecycle()
	if err != nil {
		return err
	}
	ctx := r.Context()
	c, crec, err := scopedAs[model.Component](r)
	if err != nil {
		return err
	}
	t, _, _ := ScopedTopology(r)
	req := FlexupRequest{Count: 1}
	if err := s.decodeStrict(r, &req, true); err != nil {
		return err
	}
	if req.Count < 1 || req.Count > MaxFlexup {
		return errs.Invalidf("count", "want 1 to %d, got %d", MaxFlexup, req.Count)
	}
	ti, err := s.typeInfo(ctx, lc, c.Type)
	if err != nil {
		return err
	}
	if req.Role == "" {
		req.Role = ti.FlexRole
	}
	if !ti.HasRole(req.Role) {
		return errs.Invalidf("role", "%s has no role %q (roles: %s)", c.Type, req.Role, strings.Join(ti.Roles, ", "))
	}
	if err := s.busy(ctx, &t, &c, model.StatusActive, model.StatusDegraded); err != nil {
		return err
	}
	a := &model.Action{Kind: stages.ActionFlexup, Machine: "flexup"}
	if err := s.submitOp(r, &t, &c, crec, a, stages.OpIn{Count: req.Count, Role: req.Role}, true); err != nil {
		return err
	}
	c.Status = model.StatusUpdating
	s.event(r, model.Event{Type: "component.flexup", TopologyID: t.ID, ComponentID: c.ID, ActionID: a.ID,
		Message: fmt.Sprintf("%s asked to add %d %s nodes to component %s", principal(r).UserName, req.Count, req.Role, c.Name)})
	writeJSON(w, http.StatusAccepted, FlexupAccepted{Component: c, Count: req.Count, Role: req.Role, Action: actionRef(a.ID)})
	return nil
}

// Health-check verdicts (seed 000 §4.1.1.3 item 8).
const (
	HealthActive      = "ACTIVE"
	HealthInactive    = "INACTIVE"
	HealthSkipped     = "SKIPPED"
	HealthUnreachable = "UNREACHABLE"
)

// StatusReport is the answer of POST /components/{id}/status.
type StatusReport struct {
	ComponentID string             `json:"component_id"`
	Status      string             `json:"status"` // the component's, after the verdicts
	Nodes       []NodeStatusChange `json:"nodes"`
}

// NodeStatusChange is what one verdict did to a node.
type NodeStatusChange struct {
	NodeID   string `json:"node_id"`
	Name     string `json:"name"`
	Reported string `json:"reported"`
	From     string `json:"from"`
	To       string `json:"to"`
	Note     string `json:"note,omitempty"`
}

// componentStatus is POST /components/{id}/status: a health check's verdict per node.
// Nodes in the middle of an operation (being created, replaced, deleted, or under
// maintenance) keep their status; the component's status follows its members'.
func (s *Server) componentStatus(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	c, _, err := scopedAs[model.Component](r)
	if err != nil {
		return err
	}
	var verdicts map[string]string
	if err := s.decodeStrict(r, &verdicts, false); err != nil {
		return err
	}
	if len(verdicts) == 0 {
		return errs.Invalidf("body", "want {\"<node name>\": \"ACTIVE|INACTIVE|SKIPPED|UNREACHABLE\", ...}")
	}
	nodes, err := s.DB.Nodes(ctx, c.ID)
	if err != nil {
		return err
	}
	byName := map[string]model.Node{}
	for _, n := range nodes {
		byName[n.Name] = n
	}
	for _, name := range sortedKeys(verdicts) {
		if _, ok := byName[name]; !ok {
			return errs.Invalidf(name, "component %s has no node named %s", c.Name, name)
		}
		switch verdicts[name] {
		case HealthActive, HealthInactive, HealthSkipped, HealthUnreachable:
		default:
			return errs.Invalidf(name, "want ACTIVE, INACTIVE, SKIPPED or UNREACHABLE, got %q", verdicts[name])
		}
	}
	rep := StatusReport{ComponentID: c.ID, Nodes: []NodeStatusChange{}}
	for _, name := range sortedKeys(verdicts) {
		n := byName[name]
		ch := NodeStatusChange{NodeID: n.ID, Name: n.Name, Reported: verdicts[name], From: n.Status, To: n.Status}
		settled := n.Status == model.NodeActive || n.Status == model.NodeUnreachable || n.Status == model.NodeFailed || n.Status == stages.NodeRestartRequired
		want := ""
		switch verdicts[name] {
		case HealthActive:
			if n.Status == model.NodeUnreachable || n.Status == model.NodeFailed {
				want = model.NodeActive
			}
		case HealthInactive:
			want = model.NodeFailed
		case HealthUnreachable:
			want = model.NodeUnreachable
		}
		switch {
		case verdicts[name] == HealthSkipped:
			ch.Note = "not checked"
		case !settled:
			ch.Note = "left alone: the node is " + n.Status
		case want != "" && want != n.Status:
			verdict := verdicts[name]
			updated, err := s.DB.UpdateNode(ctx, n.ID, func(x *model.Node) error {
				x.Status = want
				x.Error = ""
				if want != model.NodeActive {
					x.Error = "health check: " + verdict
				}
				return nil
			})
			if err != nil {
				return err
			}
			ch.To = updated.Status
			s.event(r, model.Event{Type: "node.health", Level: levelOf(want), TopologyID: c.TopologyID, ComponentID: c.ID, NodeID: n.ID,
				Message: fmt.Sprintf("health check: node %s is %s (was %s)", n.Name, verdict, n.Status)})
		}
		rep.Nodes = append(rep.Nodes, ch)
	}
	// The component follows its members, unless an operation owns its status.
	updated, err := s.DB.UpdateComponent(ctx, c.ID, func(x *model.Component) error {
		if x.Status != model.StatusActive && x.Status != model.StatusDegraded {
			return nil
		}
		fresh, err := s.DB.Nodes(ctx, c.ID)
		if err != nil {
			return err
		}
		x.Status = model.StatusActive
		for _, n := range fresh {
			if member(&n) && !serving(&n) {
				x.Status = model.StatusDegraded
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	rep.Status = updated.Status
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func levelOf(status string) string {
	if status == model.NodeActive {
		return model.LevelInfo
	}
	return model.LevelWarning
}

// ComponentSummary names a component in a dependency listing.
type ComponentSummary struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Type    string `json:"type"`
	Version string `json:"version"`
	Status  string `json:"status"`
}

// Dependencies is the answer of GET /components/{id}/dependencies.
type Dependencies struct {
	Component  ComponentSummary   `json:"component"`
	DependsOn  []ComponentSummary `json:"depends_on"`
	Dependents []ComponentSummary `json:"dependents"`
}

func summary(c *model.Component) ComponentSummary {
	return ComponentSummary{ID: c.ID, Name: c.Name, Type: c.Type, Version: c.Version, Status: c.Status}
}

// componentDependencies is GET /components/{id}/dependencies.
func (s *Server) componentDependencies(w http.ResponseWriter, r *http.Request) error {
	c, _, err := scopedAs[model.Component](r)
	if err != nil {
		return err
	}
	comps, err := s.DB.Components(r.Context(), c.TopologyID)
	if err != nil {
		return err
	}
	out := Dependencies{Component: summary(&c), DependsOn: []ComponentSummary{}, Dependents: []ComponentSummary{}}
	byName := map[string]*model.Component{}
	for i := range comps {
		byName[comps[i].Name] = &comps[i]
	}
	for _, name := range c.DependsOn {
		if d, ok := byName[name]; ok {
			out.DependsOn = append(out.DependsOn, summary(d))
		}
	}
	for i := range comps {
		if contains(comps[i].DependsOn, c.Name) {
			out.Dependents = append(out.Dependents, summary(&comps[i]))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
