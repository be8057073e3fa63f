package deps

import (
	"context"
	"fmt"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/gitrepo"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/stages"
)

// gitRepos adapts the git repositories to what stages need.
type gitRepos struct{ r *gitrepo.Repos }

var _ stages.Repos = gitRepos{}

func (g gitRepos) ComponentType(ctx context.Context, typ string) (model.ComponentType, error) {
	d, err := g.r.TypeDef(ctx, typ)
	if err != nil {
		return model.ComponentType{}, err
	}
	return d.ComponentType, nil
}

func (g gitRepos) Layout(ctx context.Context, c *model.Component) (model.Layout, error) {
	d, err := g.r.TypeDef(ctx, c.Type)
	if err != nil {
		return nil, err
	}
	return d.Layout(c), nil
}

func (g gitRepos) Package(ctx context.Context, typ, role, version string) (agentproto.Package, error) {
	return g.r.Install(ctx, typ, role, version)
}

func (g gitRepos) ScriptsRef(ctx context.Context) (string, error) { return g.r.ScriptsRef(ctx) }

func (g gitRepos) CreateBranch(ctx context.Context, branch string) error {
	_, err := g.r.CreateBranch(ctx, branch)
	return err
}

func (g gitRepos) DeleteBranch(ctx context.Context, branch string) error {
	return g.r.DeleteBranch(ctx, branch)
}

// PreConfig evaluates pre-config and renders every node's site.pp: effective sections of
// the node's role (default overridden by user.json on the topology branch), then the
// component- and node-level parameters.
func (g gitRepos) PreConfig(ctx context.Context, in stages.PreConfigInput) (stages.PreConfigOutput, error) {
	c := &in.Component
	// Templates read ports and other options from the components' effective sections:
	// without them a changed client_port would still produce the default in zk_list.
	info := func(comp *model.Component, nodes []model.Node) (gitrepo.ComponentInfo, error) {
		ci := gitrepo.ComponentInfoOf(comp, nodes)
		secs, err := g.r.EffectiveSections(ctx, in.Ref, comp.Type, comp.Version)
		if err != nil {
			return ci, fmt.Errorf("configuration of %s: %w", comp.Name, err)
		}
		ci.Sections = secs
		return ci, nil
	}
	self, err := info(c, in.Nodes)
	if err != nil {
		return stages.PreConfigOutput{}, err
	}
	gin := gitrepo.PreConfigInput{Topology: gitrepo.TopologyInfoOf(&in.Topology), Component: self}
	for _, d := range in.Dependencies {
		di, err := info(&d.Component, d.Nodes)
		if err != nil {
			return stages.PreConfigOutput{}, err
		}
		gin.Dependencies = append(gin.Dependencies, di)
	}
	out, err := g.r.PreConfig(ctx, c.Type, c.Version, gin)
	if err != nil {
		return stages.PreConfigOutput{}, err
	}
	ref, err := g.r.ResolveRef(ctx, in.Ref)
	if err != nil {
		return stages.PreConfigOutput{}, fmt.Errorf("resolve config ref %s: %w", in.Ref, err)
	}
	// The commit itself is the ref recorded on nodes: it stays readable after the branch moves.
	res := stages.PreConfigOutput{Ref: ref, Nodes: map[string]model.NodeConfig{}}
	base := map[string]gitrepo.Sections{}
	for _, n := range in.Nodes {
		b, ok := base[n.Role]
		if !ok {
			b, err = g.r.EffectiveSectionsFor(ctx, in.Ref, c.Type, c.Version, n.Role)
			if err != nil {
				return stages.PreConfigOutput{}, err
			}
			base[n.Role] = b
		}
		secs := out.ForNode(b, n.ID)
		res.Nodes[n.ID] = model.NodeConfig{Sections: secs, SitePP: gitrepo.RenderSitePP(n.Role, secs)}
	}
	for _, op := range out.Operations {
		res.Operations = append(res.Operations, stages.Operation{NodeID: op.NodeID, Name: op.NodeName, Role: op.Role, Cmd: op.Command, Args: op.Args})
	}
	return res, nil
}

var _ stages.RestartKeys = gitRepos{}

// RestartKeys maps the options of typ at version, read at ref, to their restart_required.
func (g gitRepos) RestartKeys(ctx context.Context, ref, typ, version string) (map[string]bool, error) {
	f, err := g.r.EffectiveConfig(ctx, ref, typ, version)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, s := range f.Content {
		for _, o := range s.Options {
			out[s.Section+"."+o.Key] = o.RestartRequired
		}
	}
	return out, nil
}

// apiCatalog is the embedded API's catalog, which also serves the configuration routes:
// the config and script repos, and the planner of configuration changes.
type apiCatalog struct {
	catalog
	*gitrepo.Repos
	env *stages.Env
}

var (
	_ api.Catalog       = apiCatalog{}
	_ api.ConfigRepos   = apiCatalog{}
	_ api.ConfigPlanner = apiCatalog{}
)

func (c apiCatalog) ComponentTypes(ctx context.Context) ([]model.ComponentType, error) {
	return c.catalog.ComponentTypes(ctx)
}

func (c apiCatalog) ReadScripts(ctx context.Context, ref, p string) (gitrepo.Entry, error) {
	return c.Repos.Scripts.Read(ctx, ref, p)
}

func (c apiCatalog) CommitScripts(ctx context.Context, branch string, changes []gitrepo.Change, message string, author gitrepo.Author) (string, error) {
	return c.Repos.Scripts.Commit(ctx, branch, changes, message, author)
}

func (c apiCatalog) PlanConfigChange(ctx context.Context, in stages.ConfigChangeIn, opt stages.PlanOptions) (stages.ConfigPlan, error) {
	return c.env.PlanConfigChange(ctx, in, opt)
}
