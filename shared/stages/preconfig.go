package stages

import (
	"context"
	"fmt"

	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/model"
)

// PreConfig computes every node's configuration: the config repo's default and user
// sections, then component- and node-level parameters from the script repo's pre_config
// data (kafka: zk_list, broker_id). It stores the result on each node and the other
// operations for the next stage.
func (e *Env) PreConfig(ctx context.Context, in Ref) (Empty, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, StagePreConfig)
	t, _, err := e.DB.Topology(ctx, in.TopologyID)
	if err != nil {
		return Empty{}, err
	}
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	nodes, err := e.serving(ctx, c.ID)
	if err != nil {
		return Empty{}, err
	}
	deps, err := e.dependencies(ctx, &c)
	if err != nil {
		return Empty{}, err
	}
	pin := PreConfigInput{Ref: t.ConfigBranch, Topology: t, Component: c, Nodes: nodes}
	for _, d := range deps {
		dn, err := e.serving(ctx, d.ID)
		if err != nil {
			return Empty{}, err
		}
		pin.Dependencies = append(pin.Dependencies, Dependency{Component: d, Nodes: dn})
	}
	out, err := e.Repos.PreConfig(ctx, pin)
	if err != nil {
		return Empty{}, fmt.Errorf("pre-config of component %s: %w", c.Name, err)
	}
	for _, n := range nodes {
		cfg, ok := out.Nodes[n.ID]
		if !ok {
			continue
		}
		cfg.Ref = out.Ref
		if _, err := e.DB.UpdateNode(ctx, n.ID, func(x *model.Node) error { x.Config = &cfg; return nil }); err != nil {
			return Empty{}, err
		}
	}
	if err := e.saveOps(ctx, batch.ID(in.ActionID, in.ComponentID, StagePreOps), out.Operations); err != nil {
		return Empty{}, err
	}
	return Empty{}, nil
}

// serving lists a component's nodes that are (or are becoming) members: all but failed
// and deleting ones. Membership in configuration (zk server lists) is computed from them.
func (e *Env) serving(ctx context.Context, componentID string) ([]model.Node, error) {
	all, err := e.DB.Nodes(ctx, componentID)
	if err != nil {
		return nil, err
	}
	var out []model.Node
	for _, n := range all {
		if n.Status != model.NodeFailed && n.Status != model.NodeDeleting {
			out = append(out, n)
		}
	}
	return out, nil
}
