// Package conductor consumes the status queue (DESIGN §5): agents' hellos, heartbeats,
// command results and events. It keeps nodes' liveness and status in the store and
// completes workflow callbacks through command batches.
package conductor

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/stages"
	"github.com/straas/straas/shared/store"
)

// Metrics receives counts from the conductor (Prometheus in embedded mode).
type Metrics interface {
	Message(kind string)
	LeaseWrite()
	IngestLatency(d time.Duration)
}

type noMetrics struct{}

func (noMetrics) Message(string)              {}
func (noMetrics) LeaseWrite()                 {}
func (noMetrics) IngestLatency(time.Duration) {}

// Conductor handles agents' messages.
type Conductor struct {
	DB          *db.DB
	Batches     *batch.Service
	Queue       queue.Queue
	Log         *slog.Logger
	Metrics     Metrics
	StatusQueue string
	// LeaseRenewal > 0 (AWS) writes a lease only for a hello and for the heartbeats the
	// agent marks Renew (once per its lease period) or Changed, so that any number of
	// conductor instances together write each lease once a period plus once per change:
	// 10,000 nodes renewing once a minute stay under 170 writes/s on DynamoDB. Heartbeats
	// of agents that mark none (no LeaseSeconds) are written when the lease this
	// instance stored is older than LeaseRenewal. 0 writes every heartbeat (embedded:
	// group-committed, cheap).
	LeaseRenewal time.Duration
	Workers      int // concurrent message handlers (default 32)
	// StaleAfter is the checker's silence threshold. A node heard from again after a gap
	// of half of it is checked for the checker's UNREACHABLE flag and restored.
	StaleAfter time.Duration

	mu     sync.Mutex
	leases map[string]leaseState // what was last written per node
}

type leaseState struct {
	written time.Time // when the lease was last stored
	seen    time.Time // when the node was last heard from (agent-decided leases: last stored)
	at      time.Time // when the agent sent the heartbeat last stored
	lease   model.Lease
}

func (c *Conductor) init() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leases == nil {
		c.leases = map[string]leaseState{}
	}
	if c.Metrics == nil {
		c.Metrics = noMetrics{}
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.StatusQueue == "" {
		c.StatusQueue = queue.Status
	}
	if c.Workers == 0 {
		c.Workers = 32
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = 30 * time.Second
	}
}

// Run receives from the status queue until ctx ends. A message is acknowledged once
// handled; one that fails transiently is left to be redelivered.
func (c *Conductor) Run(ctx context.Context) error {
	c.init()
	if err := c.Queue.Ensure(ctx, c.StatusQueue); err != nil {
		return fmt.Errorf("status queue: %w", err)
	}
	var wg sync.WaitGroup
	for i := 0; i < c.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.loop(ctx)
		}()
	}
	wg.Wait()
	return nil
}

func (c *Conductor) loop(ctx context.Context) {
	for ctx.Err() == nil {
		msgs, err := c.Queue.Receive(ctx, c.StatusQueue, queue.MaxBatch, 5*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				c.Log.Warn("receive status messages", "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(time.Second):
				}
			}
			continue
		}
		var acks []string
		for _, m := range msgs {
			if err := c.Handle(ctx, m.Body); err != nil {
				c.Log.Warn("handle status message (will be redelivered)", "err", err, "receives", m.Receives)
				continue
			}
			acks = append(acks, m.Receipt)
		}
		if len(acks) > 0 {
			if err := c.Queue.Ack(ctx, c.StatusQueue, acks...); err != nil && ctx.Err() == nil {
				c.Log.Warn("ack status messages", "err", err)
			}
		}
	}
}

// Handle processes one status message. Malformed messages are dropped (logged): they
// can never succeed. Errors are transient: the message should be redelivered.
func (c *Conductor) Handle(ctx context.Context, body []byte) error {
	c.init()
	env, err := agentproto.Decode(body)
	if err != nil {
		c.Log.Warn("drop malformed status message", "err", err, "bytes", len(body))
		return nil
	}
	c.Metrics.Message(env.Type)
	switch env.Type {
	case agentproto.TypeHello:
		return c.hello(ctx, &env)
	case agentproto.TypeHeartbeat:
		return c.heartbeat(ctx, &env)
	case agentproto.TypeResult:
		return c.result(ctx, &env)
	case agentproto.TypeEvent:
		return c.event(ctx, &env)
	default:
		c.Log.Warn("drop status message of unexpected type", "type", env.Type, "node", env.Node)
		return nil
	}
}

func (c *Conductor) hello(ctx context.Context, env *agentproto.Envelope) error {
	h := env.Hello
	n, err := c.DB.UpdateNode(ctx, env.Node, func(n *model.Node) error {
		if n.Status == model.NodeSpawning {
			n.Status = model.NodeVMBooted
		}
		if h.Hostname != "" {
			n.Hostname = h.Hostname
		}
		if len(h.IPs) > 0 {
			n.IPs = h.IPs
		}
		return nil
	})
	if errs.Is(err, errs.NotFound) {
		c.Log.Info("hello from unknown node (deleted?)", "node", env.Node)
		return nil
	}
	if err != nil {
		return fmt.Errorf("hello of node %s: %w", env.Node, err)
	}
	if err := c.writeLease(ctx, &n, env, &agentproto.Heartbeat{}, true); err != nil {
		return err
	}
	if err := c.helloAgain(ctx, &n); err != nil {
		return err
	}
	if n.CreatedBy != "" {
		if _, err := c.Batches.Record(ctx, stages.HelloBatch(&n), n.ID, batch.Result{OK: true}); err != nil && !errs.Is(err, errs.NotFound) {
			return fmt.Errorf("hello of node %s: %w", n.Name, err)
		}
	}
	return nil
}

func (c *Conductor) heartbeat(ctx context.Context, env *agentproto.Envelope) error {
	c.mu.Lock()
	st, known := c.leases[env.Node]
	c.mu.Unlock()
	var n model.Node
	n.ID = env.Node
	if !known {
		// First heartbeat this process sees from the node: learn its topology and
		// whether it exists at all.
		node, _, err := c.DB.Node(ctx, env.Node)
		if errs.Is(err, errs.NotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		n = node
	} else {
		n.TopologyID = st.lease.TopologyID
	}
	return c.writeLease(ctx, &n, env, env.Heartbeat, false)
}

// writeLease stores the node's liveness when something changed or the renewal is due.
func (c *Conductor) writeLease(ctx context.Context, n *model.Node, env *agentproto.Envelope, hb *agentproto.Heartbeat, force bool) error {
	now := c.DB.Now()
	l := model.Lease{
		NodeID: n.ID, TopologyID: n.TopologyID, LastSeen: now, Seq: hb.Seq, Services: hb.Services, Metrics: hb.Metrics,
		Installed: hb.Installed, ConfigRef: hb.ConfigRef, Maintenance: hb.Maintenance,
	}
	c.mu.Lock()
	prev, known := c.leases[n.ID]
	c.mu.Unlock()
	var gap bool
	if c.LeaseRenewal > 0 && hb.LeaseSeconds > 0 {
		// The agent decides (Renew, Changed): nothing here depends on which heartbeats this
		// instance happened to receive, so N instances write what one would.
		if !force && known && hb.Seq != 0 && prev.lease.Seq >= hb.Seq && !env.At.After(prev.at) {
			return nil // a redelivered heartbeat, or an older one delivered late
		}
		// A node read from the store (first heartbeat this instance sees) shows its status:
		// one the checker flagged is restored, which is a status change to store anyway.
		flagged := n.Status == model.NodeUnreachable
		if !force && !hb.Renew && !hb.Changed && !flagged {
			if !known {
				c.mu.Lock()
				c.leases[n.ID] = leaseState{lease: model.Lease{NodeID: n.ID, TopologyID: n.TopologyID}}
				c.mu.Unlock()
			}
			return nil
		}
		if !force {
			var err error
			if gap, err = c.silentBefore(ctx, n, prev, known, now); err != nil {
				return err
			}
		}
	} else {
		if known && !force && prev.lease.Seq > hb.Seq && hb.Seq != 0 {
			return nil // an old heartbeat delivered late
		}
		changed := !known || force || !maps.Equal(prev.lease.Services, l.Services) || prev.lease.Installed != l.Installed ||
			prev.lease.ConfigRef != l.ConfigRef || prev.lease.Maintenance != l.Maintenance
		gap = !known || now.Sub(prev.seen) >= c.StaleAfter/2
		if !changed && !gap && c.LeaseRenewal > 0 && now.Sub(prev.written) < c.LeaseRenewal {
			c.mu.Lock()
			c.leases[n.ID] = leaseState{written: prev.written, seen: now, at: prev.at, lease: l}
			c.mu.Unlock()
			return nil
		}
	}
	r, err := db.LeaseRecord(&l)
	if err != nil {
		return err
	}
	if err := c.DB.S.Write(ctx, store.Put(r, store.Any)); err != nil {
		return fmt.Errorf("lease of node %s: %w", n.ID, err)
	}
	c.Metrics.LeaseWrite()
	if !env.At.IsZero() {
		c.Metrics.IngestLatency(time.Since(env.At))
	}
	c.mu.Lock()
	c.leases[n.ID] = leaseState{written: now, seen: now, at: env.At, lease: l}
	c.mu.Unlock()
	if gap && !force {
		// Silent long enough for the checker to have flagged it: undo that.
		return c.reachable(ctx, n.ID)
	}
	return nil
}

// silentBefore reports whether a node whose agent decides its lease writes may have been
// flagged UNREACHABLE: its status when the heartbeat path read the node, else this
// instance's last write when recent, else the stored lease (a read, never a write).
func (c *Conductor) silentBefore(ctx context.Context, n *model.Node, prev leaseState, known bool, now time.Time) (bool, error) {
	switch {
	case n.Status != "":
		return n.Status == model.NodeUnreachable, nil
	case known && now.Sub(prev.seen) < c.StaleAfter/2:
		return false, nil
	}
	l, err := c.DB.Lease(ctx, n.ID)
	if errs.Is(err, errs.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lease of node %s: %w", n.ID, err)
	}
	return l.Stale || now.Sub(l.LastSeen) >= c.StaleAfter/2, nil
}

// reachable restores a node flagged unreachable once it reports again.
func (c *Conductor) reachable(ctx context.Context, id string) error {
	var was string
	n, err := c.DB.UpdateNode(ctx, id, func(n *model.Node) error {
		was = n.Status
		if n.Status == model.NodeUnreachable {
			// Back to what it was when it went silent (e.g. RESTART_REQUIRED), not blindly ACTIVE.
			n.Status = model.NodeActive
			if n.PrevStatus != "" {
				n.Status = n.PrevStatus
			}
			n.PrevStatus, n.Error = "", ""
		}
		return nil
	})
	if err != nil || was != model.NodeUnreachable {
		return ignoreNotFound(err)
	}
	_ = c.DB.Emit(ctx, model.Event{Type: "node.reachable", TopologyID: n.TopologyID, ComponentID: n.ComponentID, NodeID: n.ID,
		Tenant: n.Tenant, Message: fmt.Sprintf("node %s reports again", n.Name)})
	return nil
}

func (c *Conductor) result(ctx context.Context, env *agentproto.Envelope) error {
	r := env.Result
	if r.Reply == "" {
		c.Log.Warn("drop result without reply key", "node", env.Node, "command", r.CommandID)
		return nil
	}
	_, err := c.Batches.Record(ctx, r.Reply, env.Node, batch.Result{
		OK: r.OK, Error: r.Error, Code: r.Code, ExitStatus: r.ExitStatus, Output: r.Output, Data: r.Data,
	})
	if errs.Is(err, errs.NotFound) {
		c.Log.Info("result for unknown batch", "batch", r.Reply, "node", env.Node)
		return nil
	}
	return err
}

func (c *Conductor) event(ctx context.Context, env *agentproto.Envelope) error {
	if env.Event.Name == agentproto.EventResume {
		return c.resume(ctx, env)
	}
	n, _, err := c.DB.Node(ctx, env.Node)
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return c.DB.Emit(ctx, model.Event{Type: "agent." + env.Event.Name, TopologyID: n.TopologyID, ComponentID: n.ComponentID,
		NodeID: n.ID, Tenant: n.Tenant, Message: fmt.Sprintf("node %s: %s %s", n.Name, env.Event.Name, env.Event.Detail)})
}

func ignoreNotFound(err error) error {
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	return err
}

// Forget drops the lease cache of a node (after deletion).
func (c *Conductor) Forget(nodeID string) {
	c.mu.Lock()
	delete(c.leases, nodeID)
	c.mu.Unlock()
}
