package stages

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/straas/straas/shared/cloud"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/store"
)

// Stage names as actions show them.
const (
	StageStart      = "start"
	StageSpawn      = "spawn"
	StageVerify     = "verify_spawn"
	StageInstall    = "install"
	StageCName      = "cname"
	StageWaitDeps   = "wait_dependencies"
	StagePreConfig  = "pre_config"
	StagePreOps     = "pre_config_ops"
	StageConfig     = "config"
	StageValidate   = "validate"
	StageDone       = "done"
	StageDelete     = "delete_nodes"
	StageDeleteConf = "delete_config"
)

// StartOut is what the start stage hands the component branches.
type StartOut struct {
	Components []string `json:"components"`
	Timeouts   Timeouts `json:"timeouts"`
}

// Start runs once per job: the topology's config branch and server groups.
func (e *Env) Start(ctx context.Context, in Ref) (StartOut, error) {
	e.stageRunning(ctx, in.ActionID, "", StageStart)
	t, _, err := e.DB.Topology(ctx, in.TopologyID)
	if err != nil {
		return StartOut{}, err
	}
	if _, err := e.DB.UpdateAction(ctx, in.ActionID, func(a *model.Action) error {
		if a.Status == model.ActionPending {
			now := e.DB.Now()
			a.Status, a.StartedAt = model.ActionRunning, &now
		}
		return nil
	}); err != nil {
		return StartOut{}, err
	}
	if err := e.Repos.CreateBranch(ctx, t.ConfigBranch); err != nil {
		return StartOut{}, fmt.Errorf("create config branch %s: %w", t.ConfigBranch, err)
	}
	comps, err := e.DB.Components(ctx, t.ID)
	if err != nil {
		return StartOut{}, err
	}
	compute, err := e.Clouds.Zone(ctx, t.AvailabilityZone)
	if err != nil {
		return StartOut{}, err
	}
	for _, c := range comps {
		if c.ServerGroupID != "" {
			continue
		}
		name, policy := "", ""
		switch {
		case c.AntiAffinityGroup != "":
			// The user named a group: strict anti-affinity, shared by components naming it.
			name, policy = c.Tenant+"-"+c.AntiAffinityGroup, "anti-affinity"
		case c.EnableFaultDomain:
			name, policy = t.Name+"-"+c.Name+"-fd", "soft-anti-affinity"
		default:
			continue
		}
		id, err := compute.EnsureServerGroup(ctx, name, policy)
		if err != nil {
			return StartOut{}, fmt.Errorf("server group for component %s: %w", c.Name, err)
		}
		if _, err := e.DB.UpdateComponent(ctx, c.ID, func(x *model.Component) error { x.ServerGroupID = id; return nil }); err != nil {
			return StartOut{}, err
		}
	}
	e.stageDone(ctx, in.ActionID, "", StageStart, "", nil)
	out := StartOut{Components: t.Components, Timeouts: Timeouts{Stage: int(e.Settings.StageTimeout/time.Second) + 60}}
	return out, nil
}

// NodeName is a node's name: also its Nova server name and hostname.
func NodeName(t *model.Topology, c *model.Component, index int) string {
	return fmt.Sprintf("%s-%s-%d", t.Name, c.Name, index)
}

// NodeID is the id of a component's index-th node: deterministic, so that a re-run of
// spawn finds the nodes it created instead of creating more.
func NodeID(componentID string, index int) string { return fmt.Sprintf("%s-%d", componentID, index) }

// UserData is what a VM's agent reads at boot (see mockcn/doc.go).
type UserData struct {
	NodeID           string `json:"node_id"`
	StatusQueue      string `json:"status_queue"`
	CommandQueue     string `json:"command_queue"`
	HeartbeatSeconds int    `json:"heartbeat_seconds"`
	// LeaseSeconds: the agent marks a heartbeat to be stored (Renew) once per this many
	// seconds (0: the agent's default, 60).
	LeaseSeconds int    `json:"lease_seconds,omitempty"`
	ScriptsRef   string `json:"scripts_ref,omitempty"`
}

// Spawn creates the component's node records (on first run) and boots one server per
// node that has none, then waits until Nova says each is ACTIVE or ERROR.
func (e *Env) Spawn(ctx context.Context, in Ref) (Empty, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, StageSpawn)
	t, _, err := e.DB.Topology(ctx, in.TopologyID)
	if err != nil {
		return Empty{}, err
	}
	c, _, err := e.DB.Component(ctx, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	if err := e.ensureNodes(ctx, &t, &c, in.ActionID); err != nil {
		return Empty{}, err
	}
	nodes, err := e.actionNodes(ctx, in.ActionID, c.ID)
	if err != nil {
		return Empty{}, err
	}
	failed, err := e.boot(ctx, &t, &c, nodes)
	if err != nil {
		return Empty{}, err
	}
	if len(failed) > 0 {
		e.stageDone(ctx, in.ActionID, c.ID, StageSpawn, "FAILED", failed)
		return Empty{}, &SpawnFailed{Msg: "spawn failed: " + describeFailures(failed)}
	}
	e.stageDone(ctx, in.ActionID, c.ID, StageSpawn, "", nil)
	return Empty{}, nil
}

// ensureNodes creates the records of a new component's nodes, per role, idempotently.
func (e *Env) ensureNodes(ctx context.Context, t *model.Topology, c *model.Component, actionID string) error {
	if c.NextIndex > 0 {
		return nil // already laid out
	}
	layout, err := e.Repos.Layout(ctx, c)
	if err != nil {
		return err
	}
	now := e.DB.Now()
	idx := 1
	var ops []store.Op
	for _, rc := range layout {
		for i := 0; i < rc.Count; i++ {
			n := &model.Node{
				ID: NodeID(c.ID, idx), Name: NodeName(t, c, idx), TopologyID: t.ID, ComponentID: c.ID,
				Tenant: c.Tenant, Role: rc.Role, Index: idx, Status: model.NodeSpawning,
				AvailabilityZone: t.AvailabilityZone, Flavor: rc.Flavor, Image: rc.Image,
				CreatedBy: actionID, CreatedAt: now, UpdatedAt: now,
			}
			if rc.EnableCName {
				n.CName = n.Name + "." + t.AvailabilityZone + "." + e.Settings.CNameDomain
			}
			r, err := db.NodeRecord(n)
			if err != nil {
				return err
			}
			ops = append(ops, store.Put(r, store.Absent))
			idx++
		}
	}
	// One node at a time: a re-run finds some already there (Absent fails) and that is fine.
	for _, op := range ops {
		if err := e.DB.S.Write(ctx, op); err != nil && !errs.Is(err, errs.Conflict) {
			return fmt.Errorf("create node %s: %w", op.Record.ID, err)
		}
	}
	_, err = e.DB.UpdateComponent(ctx, c.ID, func(x *model.Component) error {
		if x.NextIndex < idx {
			x.NextIndex = idx
		}
		return nil
	})
	return err
}

// actionNodes lists the component's nodes created by the action, not failed or deleting.
func (e *Env) actionNodes(ctx context.Context, actionID, componentID string) ([]model.Node, error) {
	all, err := e.DB.Nodes(ctx, componentID)
	if err != nil {
		return nil, err
	}
	var out []model.Node
	for _, n := range all {
		if n.CreatedBy == actionID && n.Status != model.NodeFailed && n.Status != model.NodeDeleting {
			out = append(out, n)
		}
	}
	return out, nil
}

// boot creates missing servers and waits for Nova's verdict on each. It returns the
// nodes Nova could not boot (marked FAILED).
func (e *Env) boot(ctx context.Context, t *model.Topology, c *model.Component, nodes []model.Node) ([]model.NodeFailure, error) {
	compute, err := e.Clouds.Zone(ctx, t.AvailabilityZone)
	if err != nil {
		return nil, err
	}
	ref, err := e.Repos.ScriptsRef(ctx)
	if err != nil {
		return nil, err
	}
	var todo []model.Node
	for _, n := range nodes {
		if n.Status == model.NodeSpawning {
			todo = append(todo, n)
		}
	}
	err = e.parallel(ctx, len(todo), func(i int) error {
		n := &todo[i]
		if err := e.Queue.Ensure(ctx, queue.NodeQueue(n.ID)); err != nil {
			return fmt.Errorf("command queue of node %s: %w", n.Name, err)
		}
		if n.ServerID != "" {
			return nil
		}
		// A crash between Nova's create and our write leaves a server we do not know:
		// adopt it by its (unique) name rather than boot a duplicate.
		srv, err := compute.FindServer(ctx, n.Name)
		switch {
		case err == nil:
			n.ServerID = srv.ID
		case errs.Is(err, errs.NotFound):
			ud, _ := json.Marshal(UserData{NodeID: n.ID, StatusQueue: e.Settings.StatusQueue, CommandQueue: queue.NodeQueue(n.ID),
				HeartbeatSeconds: e.Settings.HeartbeatSeconds, LeaseSeconds: e.Settings.LeaseSeconds, ScriptsRef: ref})
			id, err := compute.CreateServer(ctx, cloud.ServerSpec{
				Name: n.Name, Flavor: n.Flavor, Image: n.Image, AZ: n.AvailabilityZone,
				UserData: []byte(base64.StdEncoding.EncodeToString(ud)), ServerGroup: c.ServerGroupID,
				Metadata: map[string]string{"straas_node": n.ID, "straas_topology": n.TopologyID, "straas_component": n.ComponentID},
			})
			if err != nil {
				return fmt.Errorf("boot node %s: %w", n.Name, err)
			}
			n.ServerID = id
		default:
			return fmt.Errorf("look up server of node %s: %w", n.Name, err)
		}
		_, err = e.DB.UpdateNode(ctx, n.ID, func(x *model.Node) error { x.ServerID = n.ServerID; return nil })
		return err
	})
	if err != nil {
		return nil, err
	}
	return e.awaitServers(ctx, t, c, todo, compute)
}

// awaitServers polls Nova (one list call per round for the whole component) until every
// server is ACTIVE or ERROR.
func (e *Env) awaitServers(ctx context.Context, t *model.Topology, c *model.Component, nodes []model.Node, compute Compute) ([]model.NodeFailure, error) {
	waiting := map[string]model.Node{}
	for _, n := range nodes {
		waiting[n.ServerID] = n
	}
	var failed []model.NodeFailure
	var domains map[string]string // host -> fault domain, read once per call if the cloud knows them
	deadline := time.Now().Add(e.Settings.SpawnTimeout)
	interval := e.Settings.PollInterval
	prefix := "^" + regexp.QuoteMeta(t.Name+"-"+c.Name+"-")
	for len(waiting) > 0 {
		servers, err := compute.ListServers(ctx, prefix)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, s := range servers {
			n, ok := waiting[s.ID]
			if !ok {
				continue
			}
			seen[s.ID] = true
			switch s.Status {
			case "ACTIVE":
				delete(waiting, s.ID)
				if fd, ok := compute.(FaultDomainer); ok && domains == nil {
					domains = map[string]string{} // asked once, even when it fails
					if m, err := fd.FaultDomains(ctx); err != nil {
						e.Log.Warn("fault domains of hosts", "err", err)
					} else if m != nil {
						domains = m
					}
				}
				if _, err := e.DB.UpdateNode(ctx, n.ID, func(x *model.Node) error {
					x.Hypervisor, x.IPs = s.Hypervisor, s.IPs
					if d := domains[s.Hypervisor]; d != "" {
						x.FaultDomain = d
					}
					if s.AZ != "" {
						x.AvailabilityZone = s.AZ
					}
					return nil
				}); err != nil {
					return nil, err
				}
			case "ERROR":
				delete(waiting, s.ID)
				msg := "Nova put the server in ERROR"
				if s.Fault != "" {
					msg += ": " + s.Fault
				}
				failed = append(failed, model.NodeFailure{Node: n.ID, Name: n.Name, Error: msg})
				if err := e.failNode(ctx, n.ID, "spawn: "+msg); err != nil {
					return nil, err
				}
			}
		}
		for id, n := range waiting {
			if !seen[id] { // vanished from Nova while booting
				delete(waiting, id)
				failed = append(failed, model.NodeFailure{Node: n.ID, Name: n.Name, Error: "server disappeared while booting"})
				if err := e.failNode(ctx, n.ID, "spawn: server disappeared while booting"); err != nil {
					return nil, err
				}
			}
		}
		if len(waiting) == 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, n := range waiting {
				failed = append(failed, model.NodeFailure{Node: n.ID, Name: n.Name, Error: "server still building after " + e.Settings.SpawnTimeout.String()})
				if err := e.failNode(ctx, n.ID, "spawn: timed out"); err != nil {
					return nil, err
				}
			}
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(interval):
		}
		interval = min(interval*2, 2*time.Second)
	}
	sort.Slice(failed, func(i, j int) bool { return failed[i].Name < failed[j].Name })
	return failed, nil
}

func (e *Env) failNode(ctx context.Context, id, msg string) error {
	_, err := e.DB.UpdateNode(ctx, id, func(x *model.Node) error {
		x.Status, x.Error = model.NodeFailed, msg
		return nil
	})
	return err
}

// CName gives nodes with enable_cname their stable name. (A DNS port is future work; the
// name is recorded on the node and used by replace to keep identity.)
func (e *Env) CName(ctx context.Context, in Ref) (Empty, error) {
	e.stageRunning(ctx, in.ActionID, in.ComponentID, StageCName)
	nodes, err := e.actionNodes(ctx, in.ActionID, in.ComponentID)
	if err != nil {
		return Empty{}, err
	}
	n := 0
	for _, x := range nodes {
		if x.CName != "" {
			n++
		}
	}
	e.stageDone(ctx, in.ActionID, in.ComponentID, StageCName, "", nil, fmt.Sprintf("%d cnames", n))
	return Empty{}, nil
}

// parallel runs fn(0..n-1) with bounded concurrency and returns the first error.
func (e *Env) parallel(ctx context.Context, n int, fn func(i int) error) error {
	if n == 0 {
		return nil
	}
	sem := make(chan struct{}, e.Settings.Parallelism)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := 0; i < n; i++ {
		mu.Lock()
		stop := first != nil
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			if err := fn(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func describeFailures(fs []model.NodeFailure) string {
	var parts []string
	for i, f := range fs {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(fs)-10))
			break
		}
		parts = append(parts, fmt.Sprintf("node %s: %s", f.Name, f.Error))
	}
	return strings.Join(parts, "; ")
}

// stageRunning records that a stage started (first start wins the timestamp).
func (e *Env) stageRunning(ctx context.Context, actionID, componentID, stage string) {
	e.markRunning(ctx, actionID, componentID, stage, nil)
}

// stageWaiting records a stage that runs while it waits, with what it waits for, in one
// update: a reader never sees it RUNNING without its reason.
func (e *Env) stageWaiting(ctx context.Context, actionID, componentID, stage, detail string) {
	e.markRunning(ctx, actionID, componentID, stage, &detail)
}

// markRunning records a stage as RUNNING (a new start unless it was running already),
// with its detail when one is given.
func (e *Env) markRunning(ctx context.Context, actionID, componentID, stage string, detail *string) {
	_, err := e.DB.UpdateStage(ctx, actionID, componentID, stage, func(s *model.Stage) {
		if s.Status == "" || s.Status == "FAILED" {
			s.StartedAt = e.DB.Now()
		}
		s.Status, s.FinishedAt = "RUNNING", nil
		if detail != nil {
			s.Detail = *detail
		}
	})
	if err != nil {
		e.Log.Warn("record stage start", "action", actionID, "stage", stage, "err", err)
	}
}

// stageDone records a stage's end; status "" means SUCCEEDED.
func (e *Env) stageDone(ctx context.Context, actionID, componentID, stage, status string, failures []model.NodeFailure, detail ...string) {
	if status == "" {
		status = "SUCCEEDED"
	}
	_, err := e.DB.UpdateStage(ctx, actionID, componentID, stage, func(s *model.Stage) {
		now := e.DB.Now()
		s.Status, s.FinishedAt = status, &now
		if failures != nil {
			s.Failures, s.NodesFailed = failures, len(failures)
		}
		if len(detail) > 0 {
			s.Detail = detail[0]
		}
	})
	if err != nil {
		e.Log.Warn("record stage end", "action", actionID, "stage", stage, "err", err)
	}
}
