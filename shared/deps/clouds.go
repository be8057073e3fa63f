package deps

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/straas/straas/shared/cloud"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/stages"
)

// Clouds maps availability zones to the clouds serving them (seed 000 §4.5): several
// zones may share one cloud (the embedded mock serves all of them), or each zone may
// have its own OpenStack. Connections are made lazily and kept.
type Clouds struct {
	byZone map[string]cloud.Options

	mu   sync.Mutex
	conn map[string]*cloud.Cloud // by AuthURL+project
}

// NewClouds returns a zone map.
func NewClouds(byZone map[string]cloud.Options) *Clouds {
	return &Clouds{byZone: byZone, conn: map[string]*cloud.Cloud{}}
}

// Zone returns the compute service of az.
func (c *Clouds) Zone(ctx context.Context, az string) (stages.Compute, error) {
	return c.cloud(ctx, az)
}

func (c *Clouds) cloud(ctx context.Context, az string) (*cloud.Cloud, error) {
	o, ok := c.byZone[az]
	if !ok {
		return nil, errs.Invalidf("availability_zone", "no cloud is configured for availability zone %q", az)
	}
	key := o.AuthURL + "|" + o.Project + "|" + o.Region
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.conn[key]; ok {
		return cl, nil
	}
	cl, err := cloud.Connect(ctx, o)
	if err != nil {
		return nil, fmt.Errorf("cloud of zone %s: %w", az, err)
	}
	c.conn[key] = cl
	return cl, nil
}

// Zones lists the configured zones.
func (c *Clouds) Zones(context.Context) ([]string, error) {
	out := make([]string, 0, len(c.byZone))
	for z := range c.byZone {
		out = append(out, z)
	}
	sort.Strings(out)
	return out, nil
}

// Flavors lists the flavors of az's cloud.
func (c *Clouds) Flavors(ctx context.Context, az string) ([]cloud.Flavor, error) {
	cl, err := c.cloud(ctx, az)
	if err != nil {
		return nil, err
	}
	return cl.Flavors(ctx)
}

// catalog is the API's view of the world: component types from the script repo,
// zones and flavors from the clouds.
type catalog struct {
	*Clouds
	repos gitRepos
}

func (c catalog) ComponentTypes(ctx context.Context) ([]model.ComponentType, error) {
	return c.repos.r.ComponentTypes(ctx)
}
