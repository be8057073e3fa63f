package deps

import (
	"context"

	"github.com/straas/straas/shared/gitrepo"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/stages"
)

// What lifecycle operations read of the script repo (stages.ScriptInfo, api.Scripts):
// methods of the repos adapter, so that stages find them on the one Repos port.

var _ stages.ScriptInfo = gitRepos{}

// TypeInfo describes a component type for flexup, flexdown and replace: membership, the
// drain, services, and the role a flexup adds by default (the default layout's "rest").
func (g gitRepos) TypeInfo(ctx context.Context, typ string) (stages.TypeInfo, error) {
	d, err := g.r.TypeDef(ctx, typ)
	if err != nil {
		return stages.TypeInfo{}, err
	}
	ti := stages.TypeInfo{ComponentType: d.ComponentType, Self: d.Membership.Self, Dependents: d.Membership.Dependents,
		Services: d.Services, FlexRole: d.DefaultRole()}
	for _, lr := range d.DefaultLayout {
		if lr.Rest {
			ti.FlexRole = lr.Role
		}
	}
	if d.Drain != nil {
		ti.Drain = &stages.DrainInfo{Roles: d.Drain.Roles, Command: d.Drain.Command, TimeoutSeconds: d.Drain.TimeoutSeconds}
	}
	return ti, nil
}

// DrainCommand renders a node's drain guest command from the type's drain template.
func (g gitRepos) DrainCommand(ctx context.Context, in stages.PreConfigInput, n model.Node) (stages.Operation, bool, error) {
	gin := gitrepo.PreConfigInput{Topology: gitrepo.TopologyInfoOf(&in.Topology), Component: gitrepo.ComponentInfoOf(&in.Component, in.Nodes)}
	for _, d := range in.Dependencies {
		gin.Dependencies = append(gin.Dependencies, gitrepo.ComponentInfoOf(&d.Component, d.Nodes))
	}
	op, ok, err := g.r.DrainOperation(ctx, gin, gitrepo.NodeInfoOf(&n))
	if err != nil || !ok {
		return stages.Operation{}, ok, err
	}
	return stages.Operation{NodeID: n.ID, Name: n.Name, Role: n.Role, Type: in.Component.Type, Cmd: op.Command, Args: op.Args}, true, nil
}

// GuestCommands lists the script repo's guest commands by group.
func (g gitRepos) GuestCommands(ctx context.Context) (map[string][]string, error) {
	return g.r.GuestCommands(ctx)
}
