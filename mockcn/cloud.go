package mockcn

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/straas/straas/agent"
	"github.com/straas/straas/agent/dummy"
	"github.com/straas/straas/mockcn/identity"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
)

// Hardware is a CN's capacity.
type Hardware struct {
	CPUs   int `json:"cpus"`
	RAMMB  int `json:"ram_mb"`
	DiskGB int `json:"disk_gb"`
}

// DefaultHardware is a 32-core, 128 GiB, 2 TB compute node.
var DefaultHardware = Hardware{CPUs: 32, RAMMB: 128 * 1024, DiskGB: 2000}

// Latency is a uniform distribution of boot times.
type Latency struct {
	Min dummy.Duration `json:"min"`
	Max dummy.Duration `json:"max"`
}

// DefaultBootLatency lets a 10-node topology be ACTIVE well within two seconds.
var DefaultBootLatency = Latency{Min: dummy.Duration(20 * time.Millisecond), Max: dummy.Duration(80 * time.Millisecond)}

func (l Latency) validate() error {
	if l.Min < 0 || l.Max < l.Min {
		return errs.Invalidf("boot_latency", "want 0 <= min <= max, got min %v max %v", time.Duration(l.Min), time.Duration(l.Max))
	}
	return nil
}

func (l Latency) sample() time.Duration {
	if l.Max <= l.Min {
		return time.Duration(l.Min)
	}
	return time.Duration(l.Min) + time.Duration(rand.Int64N(int64(l.Max-l.Min)))
}

// Quota limits each project; zero means unlimited.
type Quota struct {
	Instances int `json:"instances"`
	Cores     int `json:"cores"`
	RAMMB     int `json:"ram"`
}

// Config configures a Cloud. Root is required; everything else has a default.
type Config struct {
	Root       string   // SERVER_ROOT: CNs, VMs and identity state live here
	AZs        []string // default ["az1"]
	CNsPerAZ   int      // CNs created at start in each AZ that has fewer; default 4
	RacksPerAZ int      // racks (fault domains) new CNs are spread over; default 2
	Hardware   Hardware // profile of CNs created at start; default DefaultHardware
	Region     string   // default "RegionOne"

	// Queue is what the VMs' agents talk to; nil boots VMs without agents.
	Queue  queue.Queue
	Clock  clock.Clock  // default: the wall clock
	Logger *slog.Logger // default: slog.Default()
	// PublicURL is the base URL put in the catalog (e.g. "http://127.0.0.1:8774");
	// "" uses the scheme and host of each request.
	PublicURL string

	Users    []identity.User // default identity.DefaultUsers
	TokenTTL time.Duration   // default identity.DefaultTTL

	BootLatency        Latency  // default DefaultBootLatency
	Flavors            []Flavor // default DefaultFlavors
	CPUAllocationRatio float64  // default 1
	RAMAllocationRatio float64  // default 1
	Quota              Quota

	Knobs dummy.Knobs // behaviour of the mock agents
	// Scripts reads the script repo, so that the mock agents decide outcomes from the
	// scripts at their node's ref (a missing runpuppet.sh fails configure); nil: every
	// script counts as present.
	Scripts dummy.ScriptReader
	Fleet   agent.FleetConfig // tuning of the agents' fleet (Queue, Clock, Logger are set here)
	AgentIP string            // "Agent IP" in sysinfo; default 127.0.0.1
}

// Cloud is the mock cloud. Its methods are safe for concurrent use.
type Cloud struct {
	cfg     Config
	clock   clock.Clock
	log     *slog.Logger
	id      *identity.Service
	fleet   *agent.Fleet
	profile *dummy.Profile
	agents  bool
	flavors map[string]*Flavor
	flist   []*Flavor

	mu      sync.Mutex
	azs     []string
	cns     map[string]*cn
	cnSeq   int
	vms     map[string]*vm
	groups  map[string]*group
	ipSeq   uint32
	latency Latency
	handler http.Handler
}

type cn struct {
	ID        string   `json:"UUID"`
	Hostname  string   `json:"Hostname"`
	SystemTyp string   `json:"System Type"`
	AdminIP   string   `json:"Admin IP"`
	AgentIP   string   `json:"Agent IP"`
	AgentPort int      `json:"CN Agent Port"`
	CPUs      int      `json:"CPU Total Cores"`
	RAMMB     int      `json:"MiB of Memory"`
	DiskGB    int      `json:"Disk GiB"`
	Rack      string   `json:"Rack Identifier"`
	AZ        string   `json:"Availability Zone"`
	DC        string   `json:"Datacenter Name"`
	Seq       int      `json:"Hypervisor ID"`
	Boot      int64    `json:"Boot Time"`
	Setup     bool     `json:"Setup"`
	Vendor    string   `json:"Manufacturer"`
	Product   string   `json:"Product"`
	CPUType   string   `json:"CPU Type"`
	Profile   Hardware `json:"Hardware Profile"`

	down, disabled             bool
	usedCPU, usedRAM, usedDisk int
	vms                        map[string]*vm
}

// vm is both the in-memory server and its JSON file.
type vm struct {
	ID          string            `json:"uuid"`
	Name        string            `json:"alias"`
	Project     string            `json:"owner_uuid"`
	User        string            `json:"user_id"`
	CN          string            `json:"server_uuid,omitempty"`
	State       string            `json:"state"` // Triton's view: provisioning, running, stopped, failed
	Status      string            `json:"nova_status"`
	Task        string            `json:"task_state,omitempty"`
	VMState     string            `json:"vm_state"`
	Power       int               `json:"power_state"`
	FlavorID    string            `json:"flavor_id"`
	FlavorName  string            `json:"flavor_name"`
	CPUs        int               `json:"cpus"`
	RAMMB       int               `json:"ram_mb"`
	DiskGB      int               `json:"disk_gb"`
	Image       string            `json:"image_uuid"`
	AZ          string            `json:"availability_zone"`
	IP          string            `json:"ip,omitempty"`
	MAC         string            `json:"mac,omitempty"`
	Metadata    map[string]string `json:"customer_metadata,omitempty"`
	UserData    string            `json:"user_data,omitempty"`
	KeyName     string            `json:"key_name,omitempty"`
	Group       string            `json:"server_group,omitempty"`
	Fault       *fault            `json:"fault,omitempty"`
	NodeID      string            `json:"node_id,omitempty"`
	Created     time.Time         `json:"create_timestamp"`
	Updated     time.Time         `json:"last_modified"`
	Launched    *time.Time        `json:"launched_at,omitempty"`
	LaunchIndex int               `json:"launch_index"`

	cn  *cn
	gen int // bumped on every transition: stale timers see it changed
}

type fault struct {
	Code    int       `json:"code"`
	Message string    `json:"message"`
	Details string    `json:"details,omitempty"`
	Created time.Time `json:"created"`
}

// group is a Nova server group.
type group struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Policy  string    `json:"policy"`
	MaxPer  int       `json:"max_server_per_host,omitempty"`
	Members []string  `json:"members"`
	Project string    `json:"project_id"`
	User    string    `json:"user_id"`
	Created time.Time `json:"created"`
}

// Nova statuses.
const (
	StatusBuild      = "BUILD"
	StatusActive     = "ACTIVE"
	StatusError      = "ERROR"
	StatusShutoff    = "SHUTOFF"
	StatusReboot     = "REBOOT"
	StatusHardReboot = "HARD_REBOOT"
	StatusRebuild    = "REBUILD"
)

// Power states.
const (
	powerNoState  = 0
	powerRunning  = 1
	powerShutdown = 4
)

// noValidHost is Nova's fault when the scheduler finds no host.
const noValidHost = "No valid host was found. There are not enough hosts available."

// New builds a cloud over cfg.Root, loading what is there and creating the configured
// CNs that are missing. Nothing runs until Run; the handler serves at once.
func New(cfg Config) (*Cloud, error) {
	if cfg.Root == "" {
		return nil, errs.Invalidf("root", "the mock cloud needs a root directory")
	}
	if len(cfg.AZs) == 0 {
		cfg.AZs = []string{"az1"}
	}
	if cfg.CNsPerAZ < 0 {
		return nil, errs.Invalidf("cns_per_az", "must not be negative")
	}
	if cfg.CNsPerAZ == 0 {
		cfg.CNsPerAZ = 4
	}
	if cfg.RacksPerAZ <= 0 {
		cfg.RacksPerAZ = 2
	}
	if cfg.Hardware == (Hardware{}) {
		cfg.Hardware = DefaultHardware
	}
	if cfg.Region == "" {
		cfg.Region = "RegionOne"
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.BootLatency == (Latency{}) {
		cfg.BootLatency = DefaultBootLatency
	}
	if err := cfg.BootLatency.validate(); err != nil {
		return nil, err
	}
	if cfg.Flavors == nil {
		cfg.Flavors = DefaultFlavors
	}
	if cfg.CPUAllocationRatio <= 0 {
		cfg.CPUAllocationRatio = 1
	}
	if cfg.RAMAllocationRatio <= 0 {
		cfg.RAMAllocationRatio = 1
	}
	if cfg.AgentIP == "" {
		cfg.AgentIP = "127.0.0.1"
	}
	if err := cfg.Knobs.Validate(); err != nil {
		return nil, err
	}
	id, err := identity.New(identity.Config{Users: cfg.Users, TokenTTL: cfg.TokenTTL, Clock: cfg.Clock, Dir: filepath.Join(cfg.Root, "identity")})
	if err != nil {
		return nil, err
	}
	fc := cfg.Fleet
	fc.Queue, fc.Clock, fc.Logger = cfg.Queue, cfg.Clock, cfg.Logger
	if fc.Queue == nil {
		fc.Queue = noQueue{}
	}
	fleet, err := agent.NewFleet(fc)
	if err != nil {
		return nil, err
	}
	c := &Cloud{
		cfg: cfg, clock: cfg.Clock, log: cfg.Logger, id: id, fleet: fleet,
		profile: dummy.NewProfile(cfg.Knobs), agents: cfg.Queue != nil,
		flavors: map[string]*Flavor{},
		cns:     map[string]*cn{}, vms: map[string]*vm{}, groups: map[string]*group{},
		latency: cfg.BootLatency,
	}
	for i := range cfg.Flavors {
		f := cfg.Flavors[i]
		if f.ID == "" || f.Name == "" || f.VCPUs <= 0 || f.RAMMB <= 0 {
			return nil, errs.Invalidf(fmt.Sprintf("flavors[%d]", i), "a flavor needs an id, a name, vcpus and ram")
		}
		c.flavors[f.ID] = &f
		c.flist = append(c.flist, &f)
	}
	for _, az := range cfg.AZs {
		c.addAZLocked(az)
	}
	if err := c.load(); err != nil {
		return nil, err
	}
	for _, az := range cfg.AZs {
		have := 0
		for _, x := range c.cns {
			if x.AZ == az {
				have++
			}
		}
		if have < cfg.CNsPerAZ {
			if _, err := c.AddCNs(CNSpec{Count: cfg.CNsPerAZ - have, AZ: az, Hardware: cfg.Hardware}); err != nil {
				return nil, err
			}
		}
	}
	c.handler = c.routes()
	return c, nil
}

// noQueue stands in when the cloud runs without agents.
type noQueue struct{}

func (noQueue) Ensure(context.Context, string) error { return nil }
func (noQueue) Remove(context.Context, string) error { return nil }
func (noQueue) Send(context.Context, string, ...[]byte) error {
	return errs.E(errs.Unavailable, "send", "the mock cloud has no queue")
}
func (noQueue) Receive(context.Context, string, int, time.Duration) ([]queue.Message, error) {
	return nil, nil
}
func (noQueue) Ack(context.Context, string, ...string) error { return nil }

func (c *Cloud) addAZLocked(az string) {
	for _, x := range c.azs {
		if x == az {
			return
		}
	}
	c.azs = append(c.azs, az)
}

// Run drives the cloud's timers and agents until ctx ends.
func (c *Cloud) Run(ctx context.Context) error { return c.fleet.Run(ctx) }

// Handler serves Keystone at /identity, Nova at /compute and the admin API at /mockcn/v1.
func (c *Cloud) Handler() http.Handler { return c.handler }

// Mount registers the cloud's handler on mux under its prefixes (/identity, /compute,
// /mockcn), for a process that serves other things on the same listener.
func (c *Cloud) Mount(mux *http.ServeMux) {
	for _, p := range []string{identity.Prefix, identity.Prefix + "/", ComputePrefix, ComputePrefix + "/", "/mockcn/"} {
		mux.Handle(p, c.handler)
	}
}

// Identity is the cloud's Keystone.
func (c *Cloud) Identity() *identity.Service { return c.id }

// Fleet is the fleet hosting the VMs' agents.
func (c *Cloud) Fleet() *agent.Fleet { return c.fleet }

// Token authenticates a user on a project (by names; "" for the user's own) and returns
// a token id.
func (c *Cloud) Token(user, password, project string) (string, error) {
	t, err := c.id.Authenticate(user, password, project)
	if err != nil {
		return "", err
	}
	return t.ID, nil
}

// --- files -------------------------------------------------------------------------

func (c *Cloud) cnDir(id string) string { return filepath.Join(c.cfg.Root, "servers", id) }

func (c *Cloud) vmFile(v *vm) string {
	if v.CN == "" {
		return filepath.Join(c.cfg.Root, "unplaced", v.ID+".json")
	}
	return filepath.Join(c.cnDir(v.CN), "vms", v.ID+".json")
}

// vmDir is the VM's disk: where its dummy agent keeps state.
func (c *Cloud) vmDir(v *vm) string { return filepath.Join(c.cnDir(v.CN), "vms", v.ID) }

func writeJSONFile(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (c *Cloud) saveVMLocked(v *vm) {
	if err := writeJSONFile(c.vmFile(v), v); err != nil {
		c.log.Error("mockcn: write VM file", "vm", v.ID, "err", err)
	}
}

func (c *Cloud) saveGroupsLocked() {
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].ID < gs[j].ID })
	if err := writeJSONFile(filepath.Join(c.cfg.Root, "server_groups.json"), gs); err != nil {
		c.log.Error("mockcn: write server groups", "err", err)
	}
}

func (c *Cloud) load() error {
	dirs, err := os.ReadDir(filepath.Join(c.cfg.Root, "servers"))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("mockcn: %w", err)
	}
	var vms []*vm
	for _, d := range dirs {
		raw, err := os.ReadFile(filepath.Join(c.cnDir(d.Name()), "sysinfo.json"))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mockcn: %w", err)
		}
		x := &cn{}
		if err := json.Unmarshal(raw, x); err != nil {
			return fmt.Errorf("mockcn: %s/sysinfo.json: %w", d.Name(), err)
		}
		x.vms = map[string]*vm{}
		c.cns[x.ID] = x
		c.cnSeq = max(c.cnSeq, x.Seq)
		c.addAZLocked(x.AZ)
		files, _ := filepath.Glob(filepath.Join(c.cnDir(x.ID), "vms", "*.json"))
		for _, f := range files {
			v, err := readVM(f)
			if err != nil {
				return err
			}
			v.cn = x
			vms = append(vms, v)
		}
	}
	files, _ := filepath.Glob(filepath.Join(c.cfg.Root, "unplaced", "*.json"))
	for _, f := range files {
		v, err := readVM(f)
		if err != nil {
			return err
		}
		vms = append(vms, v)
	}
	for _, v := range vms {
		c.vms[v.ID] = v
		if v.cn != nil {
			c.charge(v.cn, v, 1)
			v.cn.vms[v.ID] = v
		}
		c.ipSeq = max(c.ipSeq, ipSeqOf(v.IP))
	}
	if raw, err := os.ReadFile(filepath.Join(c.cfg.Root, "server_groups.json")); err == nil {
		var gs []*group
		if err := json.Unmarshal(raw, &gs); err != nil {
			return fmt.Errorf("mockcn: server_groups.json: %w", err)
		}
		for _, g := range gs {
			c.groups[g.ID] = g
		}
	}
	// Servers in transition finish it; running ones boot their agents again.
	for _, v := range vms {
		switch {
		case inTransition(v):
			if v.cn != nil {
				c.scheduleActiveLocked(v, c.latency.sample())
			}
		case v.Status == StatusActive:
			c.startAgentLocked(v, time.Time{})
		}
	}
	if len(vms) > 0 || len(c.cns) > 0 {
		c.log.Info("mockcn: loaded", "root", c.cfg.Root, "cns", len(c.cns), "vms", len(vms), "groups", len(c.groups))
	}
	return nil
}

func readVM(path string) (*vm, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mockcn: %w", err)
	}
	v := &vm{}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("mockcn: %s: %w", path, err)
	}
	return v, nil
}

// --- CNs -----------------------------------------------------------------------------

// CNSpec asks for compute nodes.
type CNSpec struct {
	Count    int      `json:"count"`
	AZ       string   `json:"az"`             // default: the first AZ
	Rack     string   `json:"rack,omitempty"` // default: spread over the AZ's racks
	Hardware Hardware `json:"hardware"`       // zero: the cloud's default profile
}

// CN describes a compute node.
type CN struct {
	ID        string   `json:"id"`
	Hostname  string   `json:"hostname"`
	AZ        string   `json:"availability_zone"`
	Rack      string   `json:"rack"`
	AdminIP   string   `json:"admin_ip"`
	AgentIP   string   `json:"agent_ip"`
	AgentPort int      `json:"agent_port"`
	Hardware  Hardware `json:"hardware"`
	Used      Hardware `json:"used"`
	Down      bool     `json:"down"`
	VMs       []VMRef  `json:"vms"`
}

// VMRef is a VM as the CN list shows it.
type VMRef struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
	NodeID string `json:"node_id,omitempty"`
}

// RackName is the name of rack i (from 1) of an AZ.
func RackName(az string, i int) string { return fmt.Sprintf("%s-rack%02d", az, i) }

// AddCNs creates compute nodes, writing their sysinfo.json.
func (c *Cloud) AddCNs(spec CNSpec) ([]CN, error) {
	if spec.Count <= 0 || spec.Count > 10000 {
		return nil, errs.Invalidf("count", "must be between 1 and 10000")
	}
	if spec.AZ == "" {
		spec.AZ = c.cfg.AZs[0]
	}
	if !validName.MatchString(spec.AZ) {
		return nil, errs.Invalidf("az", "%q is not a valid availability zone name", spec.AZ)
	}
	if spec.Rack != "" && !validName.MatchString(spec.Rack) {
		return nil, errs.Invalidf("rack", "%q is not a valid rack name", spec.Rack)
	}
	hw := spec.Hardware
	if hw == (Hardware{}) {
		hw = c.cfg.Hardware
	}
	if hw.CPUs <= 0 || hw.RAMMB <= 0 || hw.DiskGB <= 0 {
		return nil, errs.Invalidf("hardware", "cpus, ram_mb and disk_gb must be positive")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addAZLocked(spec.AZ)
	inAZ := 0
	for _, x := range c.cns {
		if x.AZ == spec.AZ {
			inAZ++
		}
	}
	out := make([]CN, 0, spec.Count)
	for i := 0; i < spec.Count; i++ {
		c.cnSeq++
		inAZ++
		rack := spec.Rack
		if rack == "" {
			rack = RackName(spec.AZ, (inAZ-1)%c.cfg.RacksPerAZ+1)
		}
		x := &cn{
			ID: uuid.NewString(), Hostname: fmt.Sprintf("cn-%s-%04d", spec.AZ, inAZ), SystemTyp: "Virtual",
			AdminIP: fmt.Sprintf("10.99.%d.%d", c.cnSeq/250, c.cnSeq%250+1), AgentIP: c.cfg.AgentIP, AgentPort: 5309,
			CPUs: hw.CPUs, RAMMB: hw.RAMMB, DiskGB: hw.DiskGB, Rack: rack, AZ: spec.AZ, DC: spec.AZ,
			Seq: c.cnSeq, Boot: c.clock.Now().Unix(), Setup: true, Vendor: "straas mockcn", Product: "Mock CN",
			CPUType: "Virtual CPU", Profile: hw, vms: map[string]*vm{},
		}
		if err := writeJSONFile(filepath.Join(c.cnDir(x.ID), "sysinfo.json"), x); err != nil {
			return out, fmt.Errorf("mockcn: write sysinfo: %w", err)
		}
		c.cns[x.ID] = x
		out = append(out, c.cnInfoLocked(x))
	}
	return out, nil
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

func (c *Cloud) cnInfoLocked(x *cn) CN {
	info := CN{
		ID: x.ID, Hostname: x.Hostname, AZ: x.AZ, Rack: x.Rack, AdminIP: x.AdminIP, AgentIP: x.AgentIP, AgentPort: x.AgentPort,
		Hardware: Hardware{x.CPUs, x.RAMMB, x.DiskGB}, Used: Hardware{x.usedCPU, x.usedRAM, x.usedDisk},
		Down: x.down, VMs: []VMRef{},
	}
	for _, v := range x.vms {
		info.VMs = append(info.VMs, VMRef{ID: v.ID, Name: v.Name, Status: v.Status, NodeID: v.NodeID})
	}
	sort.Slice(info.VMs, func(i, j int) bool { return info.VMs[i].Name < info.VMs[j].Name })
	return info
}

// CNs lists the compute nodes, by AZ and hostname.
func (c *Cloud) CNs() []CN {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]CN, 0, len(c.cns))
	for _, x := range c.sortedCNsLocked() {
		out = append(out, c.cnInfoLocked(x))
	}
	return out
}

func (c *Cloud) sortedCNsLocked() []*cn {
	xs := make([]*cn, 0, len(c.cns))
	for _, x := range c.cns {
		xs = append(xs, x)
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].Seq < xs[j].Seq })
	return xs
}

// GetCN describes one compute node (by id or hostname).
func (c *Cloud) GetCN(id string) (CN, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	x := c.findCNLocked(id)
	if x == nil {
		return CN{}, errs.NotFoundf("compute node %s not found", id)
	}
	return c.cnInfoLocked(x), nil
}

func (c *Cloud) findCNLocked(id string) *cn {
	if x := c.cns[id]; x != nil {
		return x
	}
	for _, x := range c.cns {
		if x.Hostname == id {
			return x
		}
	}
	return nil
}

// RemoveCN deletes a compute node. With VMs on it, it is a conflict unless force, which
// deletes them first.
func (c *Cloud) RemoveCN(id string, force bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	x := c.findCNLocked(id)
	if x == nil {
		return errs.NotFoundf("compute node %s not found", id)
	}
	if len(x.vms) > 0 && !force {
		return errs.Conflictf("compute node %s has %d VMs", x.Hostname, len(x.vms))
	}
	for _, v := range x.vms {
		c.deleteLocked(v)
	}
	delete(c.cns, x.ID)
	if err := os.RemoveAll(c.cnDir(x.ID)); err != nil {
		return fmt.Errorf("mockcn: remove CN directory: %w", err)
	}
	return nil
}

// SetCNDown takes a compute node down (its agents go silent, Nova shows the hypervisor
// down, nothing is placed on it) or brings it back.
func (c *Cloud) SetCNDown(id string, down bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	x := c.findCNLocked(id)
	if x == nil {
		return errs.NotFoundf("compute node %s not found", id)
	}
	c.setDownLocked(x, down)
	return nil
}

func (c *Cloud) setDownLocked(x *cn, down bool) {
	if x.down == down {
		return
	}
	x.down = down
	for _, v := range x.vms {
		if a := c.agentOfLocked(v); a != nil {
			_ = c.fleet.SetSilent(a.ID(), down)
		}
		if !down && inTransition(v) {
			// What was asked while the CN was down (a reboot, a start) happens now.
			c.scheduleActiveLocked(v, c.latency.sample())
		}
	}
}

// inTransition reports whether a server is on its way to ACTIVE (booting, rebooting,
// rebuilding or powering on).
func inTransition(v *vm) bool {
	switch v.Status {
	case StatusBuild, StatusReboot, StatusHardReboot, StatusRebuild:
		return true
	}
	return v.Status == StatusShutoff && v.Task == "powering-on"
}

// SetRackDown takes every CN of a rack (of an AZ; "" for any) down or up; it returns how
// many it changed.
func (c *Cloud) SetRackDown(az, rack string, down bool) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	found, n := false, 0
	for _, x := range c.cns {
		if x.Rack != rack || (az != "" && x.AZ != az) {
			continue
		}
		found = true
		if x.down != down {
			n++
		}
		c.setDownLocked(x, down)
	}
	if !found {
		return 0, errs.NotFoundf("rack %s not found", rack)
	}
	return n, nil
}

// --- VMs -----------------------------------------------------------------------------

// VM describes a server as the admin API shows it.
type VM struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Status   string            `json:"status"`
	Project  string            `json:"project_id"`
	Flavor   string            `json:"flavor"`
	AZ       string            `json:"availability_zone"`
	CN       string            `json:"cn,omitempty"`
	Host     string            `json:"host,omitempty"`
	Rack     string            `json:"rack,omitempty"`
	IP       string            `json:"ip,omitempty"`
	NodeID   string            `json:"node_id,omitempty"`
	Agent    string            `json:"agent"` // none, booting, up, silent, crashed
	Metadata map[string]string `json:"metadata,omitempty"`
	Fault    string            `json:"fault,omitempty"`
}

// GetVM describes one server.
func (c *Cloud) GetVM(id string) (VM, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.vms[id]
	if v == nil {
		return VM{}, errs.NotFoundf("server %s not found", id)
	}
	return c.vmInfoLocked(v), nil
}

// VMs lists every server, by name.
func (c *Cloud) VMs() []VM {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]VM, 0, len(c.vms))
	for _, v := range c.vms {
		out = append(out, c.vmInfoLocked(v))
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || (out[i].Name == out[j].Name && out[i].ID < out[j].ID)
	})
	return out
}

func (c *Cloud) vmInfoLocked(v *vm) VM {
	info := VM{ID: v.ID, Name: v.Name, Status: v.Status, Project: v.Project, Flavor: v.FlavorName, AZ: v.AZ, CN: v.CN, IP: v.IP, NodeID: v.NodeID, Agent: "none", Metadata: v.Metadata}
	if v.cn != nil {
		info.Host, info.Rack = v.cn.Hostname, v.cn.Rack
	}
	if v.Fault != nil {
		info.Fault = v.Fault.Message
	}
	if a := c.agentOfLocked(v); a != nil {
		switch {
		case a.Crashed():
			info.Agent = "crashed"
		case a.Silent():
			info.Agent = "silent"
		case a.Up():
			info.Agent = "up"
		default:
			info.Agent = "booting"
		}
	}
	return info
}

// agentOfLocked returns the VM's agent if it runs (an agent of the same node on a newer
// VM does not count).
func (c *Cloud) agentOfLocked(v *vm) *agent.Agent {
	if v.NodeID == "" {
		return nil
	}
	a := c.fleet.Get(v.NodeID)
	if a == nil || a.ServerID() != v.ID {
		return nil
	}
	return a
}

func (c *Cloud) stopAgentLocked(v *vm) {
	if a := c.agentOfLocked(v); a != nil {
		c.fleet.Remove(a.ID())
	}
}

// startAgentLocked boots the VM's agent (at a time, zero: now) if its user data names a
// node.
func (c *Cloud) startAgentLocked(v *vm, at time.Time) {
	if !c.agents || v.cn == nil {
		return
	}
	ud, err := ParseUserData(v.UserData)
	if err != nil || ud == nil {
		if err != nil {
			c.log.Warn("mockcn: bad agent user data; booting without an agent", "vm", v.ID, "err", err)
		}
		return
	}
	be, err := dummy.New(dummy.Config{Dir: c.vmDir(v), Hostname: hostname(v.Name), IPs: []string{v.IP}, ScriptsRef: ud.ScriptsRef, Profile: c.profile, Scripts: c.cfg.Scripts})
	if err != nil {
		c.log.Error("mockcn: agent backend", "vm", v.ID, "err", err)
		return
	}
	a, err := agent.New(agent.Config{
		NodeID: ud.NodeID, Backend: be, Clock: c.clock, Logger: c.log, ServerID: v.ID,
		HeartbeatInterval: time.Duration(ud.HeartbeatSeconds) * time.Second,
		LeasePeriod:       time.Duration(ud.LeaseSeconds) * time.Second,
		StatusQueue:       ud.StatusQueue, CommandQueue: ud.CommandQueue,
	})
	if err != nil {
		c.log.Error("mockcn: agent", "vm", v.ID, "err", err)
		return
	}
	// The newest server of a node wins its identity (a replacement booting while the old
	// server still runs): the old one's agent stops.
	c.fleet.Remove(ud.NodeID)
	if err := c.fleet.AddAt(a, at); err != nil {
		c.log.Error("mockcn: add agent", "vm", v.ID, "err", err)
		return
	}
	if v.cn.down {
		_ = c.fleet.SetSilent(ud.NodeID, true)
	}
}

// hostname derives a host name from a server name, as Nova does.
func hostname(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		case r == '.', r == '_', r == ' ':
			b.WriteByte('-')
		}
	}
	h := strings.Trim(b.String(), "-")
	if len(h) > 63 {
		h = h[:63]
	}
	if h == "" {
		h = "server"
	}
	return h
}

// charge adds (sign 1) or releases (-1) a VM's resources on a CN.
func (c *Cloud) charge(x *cn, v *vm, sign int) {
	x.usedCPU += sign * v.CPUs
	x.usedRAM += sign * v.RAMMB
	x.usedDisk += sign * v.DiskGB
}

func (c *Cloud) transitionLocked(v *vm, status, task, vmState string, power int) {
	v.Status, v.Task, v.VMState, v.Power = status, task, vmState, power
	switch status {
	case StatusActive:
		v.State = "running"
	case StatusShutoff:
		v.State = "stopped"
	case StatusError:
		v.State = "failed"
	default:
		v.State = "provisioning"
	}
	v.Updated = c.clock.Now().UTC()
	v.gen++
	c.saveVMLocked(v)
}

// scheduleActiveLocked makes a placed VM ACTIVE (and boots its agent) after d.
func (c *Cloud) scheduleActiveLocked(v *vm, d time.Duration) {
	gen := v.gen
	c.fleet.At(c.clock.Now().Add(d), func(ctx context.Context) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.vms[v.ID] != v || v.gen != gen {
			return
		}
		if v.cn.down {
			// Nova's cast waits for the compute service: the server stays in its
			// transition, without an agent, until the CN is up (setDownLocked).
			return
		}
		now := c.clock.Now().UTC()
		if v.Launched == nil {
			v.Launched = &now
		}
		c.transitionLocked(v, StatusActive, "", "active", powerRunning)
		c.startAgentLocked(v, time.Time{})
	})
}

func (c *Cloud) deleteLocked(v *vm) {
	c.stopAgentLocked(v)
	v.gen++
	delete(c.vms, v.ID)
	if v.cn != nil {
		c.charge(v.cn, v, -1)
		delete(v.cn.vms, v.ID)
		if err := os.RemoveAll(c.vmDir(v)); err != nil {
			c.log.Warn("mockcn: remove VM directory", "vm", v.ID, "err", err)
		}
	}
	if err := os.Remove(c.vmFile(v)); err != nil && !os.IsNotExist(err) {
		c.log.Warn("mockcn: remove VM file", "vm", v.ID, "err", err)
	}
	if g := c.groups[v.Group]; g != nil {
		for i, m := range g.Members {
			if m == v.ID {
				g.Members = append(g.Members[:i], g.Members[i+1:]...)
				c.saveGroupsLocked()
				break
			}
		}
	}
}

// CrashVM crashes a server: it goes SHUTOFF (status "SHUTOFF", the default) or ERROR
// (with a fault), and its agent stops. A reboot brings it back.
func (c *Cloud) CrashVM(id, status string) error {
	if status == "" {
		status = StatusShutoff
	}
	if status != StatusShutoff && status != StatusError {
		return errs.Invalidf("status", "want SHUTOFF or ERROR, got %q", status)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.vms[id]
	if v == nil {
		return errs.NotFoundf("server %s not found", id)
	}
	c.stopAgentLocked(v)
	if status == StatusError {
		v.Fault = &fault{Code: 500, Message: "Instance crashed", Details: "the hypervisor reported the guest crashed", Created: c.clock.Now().UTC()}
		c.transitionLocked(v, StatusError, "", "error", powerShutdown)
	} else {
		c.transitionLocked(v, StatusShutoff, "", "stopped", powerShutdown)
	}
	return nil
}

func (c *Cloud) agentOf(vmID string) (string, error) {
	v := c.vms[vmID]
	if v == nil {
		return "", errs.NotFoundf("server %s not found", vmID)
	}
	a := c.agentOfLocked(v)
	if a == nil {
		return "", errs.Conflictf("server %s runs no agent", vmID)
	}
	return a.ID(), nil
}

// SetAgentSilent silences a VM's agent (no heartbeats, no commands received, results
// held) or lets it speak again.
func (c *Cloud) SetAgentSilent(vmID string, on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	node, err := c.agentOf(vmID)
	if err != nil {
		return err
	}
	return c.fleet.SetSilent(node, on)
}

// CrashAgent kills a VM's agent process (the VM stays ACTIVE); RestartAgent revives it.
func (c *Cloud) CrashAgent(vmID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	node, err := c.agentOf(vmID)
	if err != nil {
		return err
	}
	return c.fleet.Crash(node)
}

// RestartAgent restarts a VM's agent: it says hello again.
func (c *Cloud) RestartAgent(vmID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	node, err := c.agentOf(vmID)
	if err != nil {
		return err
	}
	return c.fleet.Restart(node, 0)
}

// SetAgentKnobs gives one VM's agent its own behaviour (slowness, faults); nil reverts to
// the fleet-wide knobs.
func (c *Cloud) SetAgentKnobs(vmID string, k *dummy.Knobs) error {
	if err := k.Validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	node, err := c.agentOf(vmID)
	if err != nil {
		return err
	}
	be, ok := c.fleet.Get(node).Backend().(*dummy.Backend)
	if !ok {
		return errs.Conflictf("server %s does not run a dummy agent", vmID)
	}
	be.SetKnobs(k)
	return nil
}

// Knobs returns the fleet-wide agent knobs.
func (c *Cloud) Knobs() dummy.Knobs { return *c.profile.Get() }

// SetKnobs changes the fleet-wide agent knobs (every agent without knobs of its own).
func (c *Cloud) SetKnobs(k dummy.Knobs) error {
	if err := k.Validate(); err != nil {
		return err
	}
	c.profile.Set(k)
	return nil
}

// BootLatency returns the boot latency distribution.
func (c *Cloud) BootLatency() Latency {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latency
}

// SetBootLatency changes how long servers take to boot (and reboot, rebuild).
func (c *Cloud) SetBootLatency(l Latency) error {
	if err := l.validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.latency = l
	return nil
}

// Stats summarises the cloud.
type Stats struct {
	CNs     int            `json:"cns"`
	CNsDown int            `json:"cns_down"`
	VMs     int            `json:"vms"`
	Status  map[string]int `json:"status"` // servers by Nova status
	Agents  agent.Stats    `json:"agents"`
}

// Stats counts CNs, servers and the agents' work.
func (c *Cloud) Stats() Stats {
	c.mu.Lock()
	s := Stats{CNs: len(c.cns), VMs: len(c.vms), Status: map[string]int{}}
	for _, x := range c.cns {
		if x.down {
			s.CNsDown++
		}
	}
	for _, v := range c.vms {
		s.Status[v.Status]++
	}
	c.mu.Unlock()
	s.Agents = c.fleet.Stats()
	return s
}

// ipSeqOf recovers the allocation sequence of an address handed out by nextIPLocked.
func ipSeqOf(ip string) uint32 {
	var a, b, cc, d uint32
	if _, err := fmt.Sscanf(ip, "%d.%d.%d.%d", &a, &b, &cc, &d); err != nil || a != 10 {
		return 0
	}
	return (b<<16 | cc<<8 | d) - 0x010000
}

// nextIPLocked hands out 10.1.0.1, 10.1.0.2, ... (skipping .0 and .255).
func (c *Cloud) nextIPLocked() (string, string) {
	for {
		c.ipSeq++
		n := c.ipSeq + 0x010000
		d := n & 0xff
		if d == 0 || d == 255 {
			continue
		}
		ip := fmt.Sprintf("10.%d.%d.%d", n>>16&0xff, n>>8&0xff, d)
		mac := fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", n>>16&0xff, n>>8&0xff, d)
		return ip, mac
	}
}

// ServerSpec asks for a server through the Go API (what a Nova create request says).
type ServerSpec struct {
	Name     string
	Project  string // project name; default "admin"
	User     string // user name; default the project's name
	Flavor   string // flavor id or name; default "small"
	Image    string // default "image"
	AZ       string // "" for any
	UserData []byte // raw (not base64)
	Metadata map[string]string
	Group    string // server group id
}

// CreateServer creates a server as Nova's POST /servers does — placed at once, ACTIVE
// after the boot latency, or ERROR when no host fits — without HTTP or a token. It is
// for tests and benchmarks.
func (c *Cloud) CreateServer(spec ServerSpec) (VM, error) {
	if spec.Project == "" {
		spec.Project = "admin"
	}
	if spec.User == "" {
		spec.User = spec.Project
	}
	p, ok := c.id.ProjectByName(spec.Project)
	if !ok {
		return VM{}, errs.Invalidf("project", "no project %q", spec.Project)
	}
	if spec.Name == "" {
		return VM{}, errs.Invalidf("name", "a server needs a name")
	}
	if spec.Flavor == "" {
		spec.Flavor = "small"
	}
	f := c.flavors[spec.Flavor]
	for _, x := range c.flist {
		if f == nil && x.Name == spec.Flavor {
			f = x
		}
	}
	if f == nil {
		return VM{}, errs.Invalidf("flavor", "no flavor %q", spec.Flavor)
	}
	if spec.Image == "" {
		spec.Image = "image"
	}
	tok := &identity.Token{ProjectID: p.ID, ProjectName: p.Name, UserID: identity.ID("user", spec.User), UserName: spec.User}
	c.mu.Lock()
	defer c.mu.Unlock()
	if spec.AZ != "" && !contains(c.azs, spec.AZ) {
		return VM{}, errs.Invalidf("az", "no availability zone %q", spec.AZ)
	}
	var h hints
	if spec.Group != "" {
		if h.group = c.groups[spec.Group]; h.group == nil {
			return VM{}, errs.Invalidf("group", "no server group %q", spec.Group)
		}
	}
	ud := ""
	if spec.UserData != nil {
		ud = base64.StdEncoding.EncodeToString(spec.UserData)
	}
	v := c.newServerLocked(tok, spec.Name, f, spec.Image, spec.AZ, ud, spec.Metadata, "", h, 0)
	return c.vmInfoLocked(v), nil
}
