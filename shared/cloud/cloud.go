// Package cloud is the compute provider: Nova and Keystone through gophercloud, against
// the mock cloud or any OpenStack.
package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/straas/straas/shared/errs"
)

// Options says how to reach a cloud.
type Options struct {
	AuthURL  string // Keystone v3, e.g. http://127.0.0.1:8090/identity/v3
	Username string
	Password string
	Project  string
	Domain   string // default "Default"
	Region   string
}

// Cloud is an authenticated client of one cloud's compute service.
type Cloud struct {
	provider *gophercloud.ProviderClient
	compute  *gophercloud.ServiceClient

	mu      sync.Mutex
	flavors map[string]Flavor // by name
	flavAt  time.Time
}

// Flavor is a Nova flavor.
type Flavor struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	VCPUs int    `json:"vcpus"`
	RAM   int    `json:"ram"`  // MiB
	Disk  int    `json:"disk"` // GiB
}

// Server is what straas needs of a Nova server.
type Server struct {
	ID         string
	Name       string
	Status     string // BUILD, ACTIVE, ERROR, SHUTOFF, ...
	Fault      string
	Hypervisor string
	AZ         string
	IPs        []string
	Metadata   map[string]string
}

// Connect authenticates (re-authenticating when the token expires) and finds compute.
func Connect(ctx context.Context, o Options) (*Cloud, error) {
	if o.Domain == "" {
		o.Domain = "Default"
	}
	ao := gophercloud.AuthOptions{
		IdentityEndpoint: o.AuthURL,
		Username:         o.Username,
		Password:         o.Password,
		DomainName:       o.Domain,
		AllowReauth:      true,
		Scope:            &gophercloud.AuthScope{ProjectName: o.Project, DomainName: o.Domain},
	}
	p, err := openstack.AuthenticatedClient(ctx, ao)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, "connect to cloud "+o.AuthURL, err)
	}
	p.HTTPClient = http.Client{Timeout: 30 * time.Second}
	c, err := openstack.NewComputeV2(p, gophercloud.EndpointOpts{Region: o.Region})
	if err != nil {
		return nil, fmt.Errorf("find compute endpoint: %w", err)
	}
	return &Cloud{provider: p, compute: c}, nil
}

// Flavors lists flavors (cached for a minute).
func (c *Cloud) Flavors(ctx context.Context) ([]Flavor, error) {
	m, err := c.flavorMap(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Flavor, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	sortFlavors(out)
	return out, nil
}

func (c *Cloud) flavorMap(ctx context.Context) (map[string]Flavor, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.flavors != nil && time.Since(c.flavAt) < time.Minute {
		return c.flavors, nil
	}
	pages, err := flavors.ListDetail(c.compute, flavors.ListOpts{AccessType: flavors.AllAccess}).AllPages(ctx)
	if err != nil {
		return nil, classify("list flavors", err)
	}
	fs, err := flavors.ExtractFlavors(pages)
	if err != nil {
		return nil, fmt.Errorf("list flavors: %w", err)
	}
	m := make(map[string]Flavor, len(fs))
	for _, f := range fs {
		m[f.Name] = Flavor{ID: f.ID, Name: f.Name, VCPUs: f.VCPUs, RAM: f.RAM, Disk: f.Disk}
	}
	c.flavors, c.flavAt = m, time.Now()
	return m, nil
}

// Zones lists availability zones that are available.
func (c *Cloud) Zones(ctx context.Context) ([]string, error) {
	pages, err := availabilityzones.List(c.compute).AllPages(ctx)
	if err != nil {
		return nil, classify("list availability zones", err)
	}
	zs, err := availabilityzones.ExtractAvailabilityZones(pages)
	if err != nil {
		return nil, fmt.Errorf("list availability zones: %w", err)
	}
	var out []string
	for _, z := range zs {
		if z.ZoneState.Available {
			out = append(out, z.ZoneName)
		}
	}
	return out, nil
}

// ServerSpec is what CreateServer boots.
type ServerSpec struct {
	Name        string
	Flavor      string // name
	Image       string
	AZ          string
	UserData    []byte
	Metadata    map[string]string
	ServerGroup string // id, for (anti-)affinity
}

// CreateServer boots a server and returns its id.
func (c *Cloud) CreateServer(ctx context.Context, s ServerSpec) (string, error) {
	fm, err := c.flavorMap(ctx)
	if err != nil {
		return "", err
	}
	f, ok := fm[s.Flavor]
	if !ok {
		return "", errs.Invalidf("flavor", "unknown flavor %q", s.Flavor)
	}
	opts := servers.CreateOpts{
		Name: s.Name, FlavorRef: f.ID, ImageRef: s.Image, AvailabilityZone: s.AZ,
		UserData: s.UserData, Metadata: s.Metadata,
	}
	var hints servers.SchedulerHintOptsBuilder
	if s.ServerGroup != "" {
		hints = servers.SchedulerHintOpts{Group: s.ServerGroup}
	}
	srv, err := servers.Create(ctx, c.compute, opts, hints).Extract()
	if err != nil {
		return "", classify("create server "+s.Name, err)
	}
	return srv.ID, nil
}

// ListServers lists servers whose name matches the regular expression (Nova semantics),
// with details.
func (c *Cloud) ListServers(ctx context.Context, nameRegex string) ([]Server, error) {
	pages, err := servers.List(c.compute, servers.ListOpts{Name: nameRegex}).AllPages(ctx)
	if err != nil {
		return nil, classify("list servers", err)
	}
	ss, err := servers.ExtractServers(pages)
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	out := make([]Server, 0, len(ss))
	for i := range ss {
		out = append(out, convert(&ss[i]))
	}
	return out, nil
}

// FindServer returns the server named exactly name, or an errs.NotFound error.
func (c *Cloud) FindServer(ctx context.Context, name string) (Server, error) {
	ss, err := c.ListServers(ctx, "^"+regexp.QuoteMeta(name)+"$")
	if err != nil {
		return Server{}, err
	}
	for _, s := range ss {
		if s.Name == name {
			return s, nil
		}
	}
	return Server{}, errs.NotFoundf("server %s not found", name)
}

// GetServer returns a server by id, or an errs.NotFound error.
func (c *Cloud) GetServer(ctx context.Context, id string) (Server, error) {
	s, err := servers.Get(ctx, c.compute, id).Extract()
	if err != nil {
		return Server{}, classify("get server "+id, err)
	}
	return convert(s), nil
}

// DeleteServer deletes a server; a server already gone is not an error.
func (c *Cloud) DeleteServer(ctx context.Context, id string) error {
	err := servers.Delete(ctx, c.compute, id).ExtractErr()
	if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return classify("delete server "+id, err)
	}
	return nil
}

// RebootServer reboots a server (hard or soft).
func (c *Cloud) RebootServer(ctx context.Context, id string, hard bool) error {
	how := servers.SoftReboot
	if hard {
		how = servers.HardReboot
	}
	if err := servers.Reboot(ctx, c.compute, id, servers.RebootOpts{Type: how}).ExtractErr(); err != nil {
		return classify("reboot server "+id, err)
	}
	return nil
}

// EnsureServerGroup returns the id of the server group named name with policy
// ("anti-affinity", "soft-anti-affinity", "affinity"), creating it when missing.
func (c *Cloud) EnsureServerGroup(ctx context.Context, name, policy string) (string, error) {
	pages, err := servergroups.List(c.compute, servergroups.ListOpts{}).AllPages(ctx)
	if err != nil {
		return "", classify("list server groups", err)
	}
	gs, err := servergroups.ExtractServerGroups(pages)
	if err != nil {
		return "", fmt.Errorf("list server groups: %w", err)
	}
	for _, g := range gs {
		if g.Name == name {
			return g.ID, nil
		}
	}
	g, err := servergroups.Create(ctx, c.compute, servergroups.CreateOpts{Name: name, Policies: []string{policy}}).Extract()
	if err != nil {
		return "", classify("create server group "+name, err)
	}
	return g.ID, nil
}

// DeleteServerGroup deletes a server group; a missing one is not an error.
func (c *Cloud) DeleteServerGroup(ctx context.Context, id string) error {
	err := servergroups.Delete(ctx, c.compute, id).ExtractErr()
	if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return classify("delete server group "+id, err)
	}
	return nil
}

func convert(s *servers.Server) Server {
	out := Server{
		ID: s.ID, Name: s.Name, Status: s.Status, Fault: s.Fault.Message,
		Hypervisor: s.HypervisorHostname, AZ: s.AvailabilityZone, Metadata: s.Metadata,
	}
	// Addresses: {"net": [{"addr": "10.0.0.5", "version": 4}, ...]}
	for _, v := range s.Addresses {
		b, _ := json.Marshal(v)
		var as []struct {
			Addr string `json:"addr"`
		}
		if json.Unmarshal(b, &as) == nil {
			for _, a := range as {
				out.IPs = append(out.IPs, a.Addr)
			}
		}
	}
	return out
}

// classify maps gophercloud errors to error kinds.
func classify(op string, err error) error {
	switch {
	case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
		return errs.Wrap(errs.NotFound, op, err)
	case gophercloud.ResponseCodeIs(err, http.StatusBadRequest):
		return errs.Wrap(errs.Invalid, op, err)
	case gophercloud.ResponseCodeIs(err, http.StatusConflict):
		return errs.Wrap(errs.Conflict, op, err)
	case gophercloud.ResponseCodeIs(err, http.StatusForbidden), gophercloud.ResponseCodeIs(err, http.StatusUnauthorized):
		return errs.Wrap(errs.Permission, op, err)
	case gophercloud.ResponseCodeIs(err, http.StatusTooManyRequests),
		gophercloud.ResponseCodeIs(err, http.StatusServiceUnavailable),
		gophercloud.ResponseCodeIs(err, http.StatusBadGateway),
		gophercloud.ResponseCodeIs(err, http.StatusGatewayTimeout),
		gophercloud.ResponseCodeIs(err, http.StatusInternalServerError):
		return errs.Wrap(errs.Transient, op, err)
	}
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) {
		return errs.Wrap(errs.Other, op, err)
	}
	// Connection refused, timeouts: the cloud is unavailable for now.
	return errs.Wrap(errs.Transient, op, err)
}
