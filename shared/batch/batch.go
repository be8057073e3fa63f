// Package batch turns many node commands into one workflow callback. A stage that sends
// a command to every node of a component opens a batch holding the stage's task token;
// agents' results (through the conductor) fill the batch's entries; the write that fills
// the last entry completes the batch and calls SendTaskSuccess or SendTaskFailure once.
// This keeps one Step Functions task per stage whatever the node count, so a 1,000-node
// creation stays far below the 25,000 history events of an execution.
package batch

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/workflow"
)

// Record kinds.
const (
	KindBatch = db.KindBatch
	KindEntry = "batch_entry"
)

// Entry statuses.
const (
	Pending = "pending"
	OK      = "ok"
	Failed  = "failed"
)

// Keep as OnOK/OnFail leaves the node's status as it is.
const Keep = "-"

// Restarted as OnOK clears RESTART_REQUIRED (the restart its configuration waited for
// happened) and leaves any other status as it is.
const Restarted = "~restarted"

// dueOpen is the IdxDue part of batches not yet notified, sorted by deadline: the
// checker expires overdue ones and re-notifies completed ones whose notice was lost.
const dueOpen = "batch"

// Batch is one stage's fan-out.
type Batch struct {
	ID          string    `json:"id"`
	Token       string    `json:"token,omitempty"` // task token to complete; "" for synchronous API commands
	ActionID    string    `json:"action_id"`
	TopologyID  string    `json:"topology_id"`
	ComponentID string    `json:"component_id"`
	Stage       string    `json:"stage"`
	Command     string    `json:"command,omitempty"`
	Total       int       `json:"total"`
	Done        int       `json:"done"`
	Failed      int       `json:"failed"`
	Tolerate    bool      `json:"tolerate,omitempty"` // failed nodes do not fail the batch
	OnOK        string    `json:"on_ok,omitempty"`    // node status to set when a node succeeds
	OnFail      string    `json:"on_fail,omitempty"`  // node status to set when a node fails ("" = FAILED)
	Deadline    time.Time `json:"deadline"`
	Completed   bool      `json:"completed"`
	Notified    bool      `json:"notified"`
	CreatedAt   time.Time `json:"created_at"`
	CompletedAt time.Time `json:"completed_at,omitempty"`
	Expires     time.Time `json:"expires,omitempty"` // zero: kept with its action
}

// SyncRetention is how long a batch without a task token (a synchronous API command,
// which no action shows) and its entries are kept once created.
const SyncRetention = time.Hour

// Entry is one node's part of a batch.
type Entry struct {
	BatchID    string    `json:"batch_id"`
	NodeID     string    `json:"node_id"`
	NodeName   string    `json:"node_name"`
	CommandID  string    `json:"command_id,omitempty"`
	Status     string    `json:"status"`
	Error      string    `json:"error,omitempty"`
	Code       string    `json:"code,omitempty"`
	ExitStatus int       `json:"exit_status"`
	Output     string    `json:"output,omitempty"`
	Data       []byte    `json:"data,omitempty"`
	At         time.Time `json:"at,omitempty"`
	Expires    time.Time `json:"expires,omitempty"`
}

// Target is one node of a batch with the command to send it (nil: wait only, as for hello).
type Target struct {
	NodeID   string
	NodeName string
	Command  *agentproto.Command
}

// Spec opens a batch.
type Spec struct {
	ID          string // deterministic, so that a re-run stage finds its batch: use ID()
	Token       string
	ActionID    string
	TopologyID  string
	ComponentID string
	Stage       string
	Command     string
	Tolerate    bool
	OnOK        string
	OnFail      string
	Timeout     time.Duration
	Targets     []Target
}

// ID is the deterministic id of a stage's batch.
func ID(actionID, componentID, stage string) string {
	return actionID + "/" + componentID + "/" + stage
}

// CommandID is the id of the command a batch sends a node: the same on a re-run, so
// agents (idempotent on command id) answer it again instead of running it twice.
func CommandID(batchID, nodeID string) string { return batchID + "/" + nodeID }

// Outcome is what a completed batch reports as the task output.
type Outcome struct {
	BatchID string              `json:"batch_id"`
	Stage   string              `json:"stage"`
	Total   int                 `json:"total"`
	OK      int                 `json:"ok"`
	Failed  int                 `json:"failed"`
	Nodes   []string            `json:"failed_nodes,omitempty"`
	Errors  []model.NodeFailure `json:"errors,omitempty"`
}

// NodeCommandFailed fails a stage whose nodes did not all succeed.
type NodeCommandFailed struct{ Msg string }

func (e *NodeCommandFailed) Error() string { return e.Msg }
func (*NodeCommandFailed) StatesError()    {}

// Service runs batches over the store, queue and workflow engine.
type Service struct {
	DB       *db.DB
	Queue    queue.Queue
	Workflow workflow.Engine
	Log      *slog.Logger
}

func batchRecord(b *Batch) (store.Record, error) {
	r, err := store.Encode(KindBatch, b.ID, b)
	r.Expires = b.Expires
	r.Index = map[string]store.IndexKey{store.IdxParent: {Part: b.ActionID, Sort: store.SortTime(b.CreatedAt)}}
	switch {
	case b.Completed && !b.Notified: // due for a re-notification if the first notice was lost
		r.Index[store.IdxDue] = store.IndexKey{Part: dueOpen, Sort: store.SortTime(b.CompletedAt.Add(2 * time.Second))}
	case !b.Notified:
		r.Index[store.IdxDue] = store.IndexKey{Part: dueOpen, Sort: store.SortTime(b.Deadline)}
	}
	return r, err
}

func entryRecord(e *Entry) (store.Record, error) {
	r, err := store.Encode(KindEntry, e.BatchID+"#"+e.NodeID, e)
	r.Expires = e.Expires
	r.Index = map[string]store.IndexKey{store.IdxParent: {Part: e.BatchID, Sort: e.NodeName + "#" + e.NodeID}}
	return r, err
}

// Open creates the batch (or, when a stage is re-run, re-arms the existing one with the
// new token), sends each pending target its command, and completes at once when there
// is nothing to wait for.
func (s *Service) Open(ctx context.Context, sp Spec) (*Batch, error) {
	now := s.DB.Now()
	b := &Batch{
		ID: sp.ID, Token: sp.Token, ActionID: sp.ActionID, TopologyID: sp.TopologyID,
		ComponentID: sp.ComponentID, Stage: sp.Stage, Command: sp.Command, Tolerate: sp.Tolerate,
		OnOK: sp.OnOK, OnFail: sp.OnFail, Total: len(sp.Targets), Deadline: now.Add(sp.Timeout), CreatedAt: now,
	}
	if sp.Token == "" {
		b.Expires = now.Add(sp.Timeout + SyncRetention)
	}
	// Entries first, the batch record last: a crash in between leaves entries that a
	// re-run finds (and completes), never a batch whose targets are missing — which would
	// wait, commandless, until its deadline.
	if err := s.ensureEntries(ctx, b, sp.Targets); err != nil {
		return nil, err
	}
	br, err := batchRecord(b)
	if err != nil {
		return nil, err
	}
	reopened := false
	err = s.DB.S.Write(ctx, store.Put(br, store.Absent))
	switch {
	case err == nil:
	case errs.Is(err, errs.Conflict):
		reopened = true
		// A re-run of the stage: the old token is dead; take the new one and re-open.
		nb, err := s.update(ctx, b.ID, func(x *Batch) error {
			x.Token = sp.Token
			if !x.Completed {
				x.Deadline = now.Add(sp.Timeout)
			}
			x.Notified = false
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("re-open batch %s: %w", b.ID, err)
		}
		b = nb
	default:
		return nil, fmt.Errorf("open batch %s: %w", b.ID, err)
	}

	// Which targets still wait for an answer: all of them in a new batch; in a re-opened
	// one, those whose entry (read consistently, not through an index) is pending.
	pending := map[string]bool{}
	for _, t := range sp.Targets {
		if !reopened {
			pending[t.NodeID] = true
			continue
		}
		r, err := s.DB.S.Get(ctx, KindEntry, b.ID+"#"+t.NodeID)
		if err != nil {
			return nil, fmt.Errorf("re-open batch %s: %w", b.ID, err)
		}
		var e Entry
		if err := store.Decode(r, &e); err != nil {
			return nil, err
		}
		pending[t.NodeID] = e.Status == Pending
	}
	for _, t := range sp.Targets {
		if t.Command == nil || !pending[t.NodeID] {
			continue
		}
		t.Command.Reply = b.ID
		msg, err := agentproto.Encode(agentproto.Envelope{Type: agentproto.TypeCommand, Node: t.NodeID, At: now, Command: t.Command})
		if err != nil {
			return nil, err
		}
		if err := s.Queue.Send(ctx, queue.NodeQueue(t.NodeID), msg); err != nil {
			if errs.Is(err, errs.NotFound) { // the node's queue is gone: the node is gone
				if _, err := s.Record(ctx, b.ID, t.NodeID, Result{OK: false, Error: "node has no command queue (deleted?)"}); err != nil {
					return nil, err
				}
				continue
			}
			return nil, fmt.Errorf("send %s to node %s: %w", t.Command.Kind, t.NodeName, err)
		}
	}
	if b.Total == 0 || b.Completed {
		if err := s.complete(ctx, b.ID); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// ensureEntries creates the pending entry of every target that has none, leaving
// answered ones as they are. Chunks keep each write within DynamoDB's transaction bound.
func (s *Service) ensureEntries(ctx context.Context, b *Batch, targets []Target) error {
	for i := 0; i < len(targets); i += 50 {
		var ops []store.Op
		for _, t := range targets[i:min(i+50, len(targets))] {
			e := &Entry{BatchID: b.ID, NodeID: t.NodeID, NodeName: t.NodeName, Status: Pending, Expires: b.Expires}
			if t.Command != nil {
				e.CommandID = t.Command.ID
			}
			er, err := entryRecord(e)
			if err != nil {
				return err
			}
			ops = append(ops, store.Put(er, store.Absent))
		}
		err := s.DB.S.Write(ctx, ops...)
		if err == nil {
			continue
		}
		if !errs.Is(err, errs.Conflict) {
			return fmt.Errorf("open batch %s: %w", b.ID, err)
		}
		// A re-run: some entries exist already; add the missing ones one by one.
		for _, op := range ops {
			if err := s.DB.S.Write(ctx, op); err != nil && !errs.Is(err, errs.Conflict) {
				return fmt.Errorf("open batch %s: %w", b.ID, err)
			}
		}
	}
	return nil
}

// Result is a node's answer to a batch.
type Result struct {
	OK         bool
	Error      string
	Code       string
	ExitStatus int
	Output     string
	Data       []byte
}

// Record fills a node's entry (the first answer wins; later duplicates are ignored),
// updates the node's status, and completes the batch when it was the last answer.
// It reports whether this call changed the entry.
func (s *Service) Record(ctx context.Context, batchID, nodeID string, res Result) (bool, error) {
	// Every answer of a batch updates its one record: writers of this process take
	// turns (a 1,000-node stage would otherwise have all conductor workers collide on
	// it, retry and give up); writers elsewhere (other Lambda instances) are still
	// resolved by the conditional write, with a jittered back-off.
	var completed, changed bool
	var b Batch
	mu := recordLock(batchID)
	mu.Lock()
	unlock := sync.OnceFunc(mu.Unlock)
	defer unlock()
	for attempt := 0; attempt < 50; attempt++ {
		if attempt > 0 {
			d := time.Duration(rand.IntN(1<<min(attempt, 8))) * 100 * time.Microsecond
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(d):
			}
		}
		br, err := s.DB.S.Get(ctx, KindBatch, batchID)
		if err != nil {
			return false, err
		}
		if err := store.Decode(br, &b); err != nil {
			return false, err
		}
		er, err := s.DB.S.Get(ctx, KindEntry, batchID+"#"+nodeID)
		if errs.Is(err, errs.NotFound) {
			return false, nil // not a target of this batch
		}
		if err != nil {
			return false, err
		}
		var e Entry
		if err := store.Decode(er, &e); err != nil {
			return false, err
		}
		if e.Status != Pending {
			return false, nil
		}
		e.At = s.DB.Now()
		e.Error, e.Code, e.ExitStatus, e.Output, e.Data = res.Error, res.Code, res.ExitStatus, res.Output, res.Data
		if res.OK {
			e.Status = OK
			b.Done++
		} else {
			e.Status = Failed
			b.Failed++
		}
		if b.Done+b.Failed >= b.Total && !b.Completed {
			b.Completed, b.CompletedAt, completed = true, s.DB.Now(), true
		}
		ner, err := entryRecord(&e)
		if err != nil {
			return false, err
		}
		ner.Version = er.Version
		nbr, err := batchRecord(&b)
		if err != nil {
			return false, err
		}
		nbr.Version = br.Version
		err = s.DB.S.Write(ctx, store.Put(ner, store.AtVersion), store.Put(nbr, store.AtVersion))
		if err == nil {
			changed = true
			break
		}
		if !errors.Is(err, store.ErrCondition) {
			return false, err
		}
		completed = false
	}
	unlock() // what follows may open or answer other batches
	if !changed {
		return false, fmt.Errorf("record result of node %s in batch %s: too much contention", nodeID, batchID)
	}
	if err := s.updateNode(ctx, &b, nodeID, res); err != nil {
		return true, err
	}
	if completed {
		return true, s.complete(ctx, batchID)
	}
	return true, nil
}

func (s *Service) updateNode(ctx context.Context, b *Batch, nodeID string, res Result) error {
	status := b.OnOK
	if !res.OK {
		status = b.OnFail
		if status == "" {
			status = model.NodeFailed
		}
	}
	if status == Keep || (status == "" && res.OK) {
		return nil
	}
	if status == Restarted {
		_, err := s.DB.UpdateNode(ctx, nodeID, func(n *model.Node) error {
			if n.Status == model.NodeRestartRequired {
				n.Status = model.NodeActive
			}
			return nil
		})
		if errs.Is(err, errs.NotFound) {
			return nil
		}
		return err
	}
	_, err := s.DB.UpdateNode(ctx, nodeID, func(n *model.Node) error {
		if n.Status == model.NodeDeleting {
			return nil
		}
		n.Status = status
		if res.OK {
			n.Error = ""
		} else {
			n.Error = fmt.Sprintf("%s: %s", b.Stage, res.Error)
		}
		return nil
	})
	if errs.Is(err, errs.NotFound) {
		return nil
	}
	return err
}

// complete marks the batch's stage done and notifies the workflow, once.
func (s *Service) complete(ctx context.Context, batchID string) error {
	b, _, err := store.Load[Batch](ctx, s.DB.S, KindBatch, batchID)
	if err != nil {
		return err
	}
	if b.Notified {
		return nil
	}
	out, err := s.outcome(ctx, &b)
	if err != nil {
		return err
	}
	failedStage := out.Failed > 0 && !b.Tolerate
	// A batch without a token answers a synchronous API call: no action shows a stage for it.
	if b.Token != "" {
		if err := s.stageDone(ctx, &b, out, failedStage); err != nil {
			return err
		}
	}
	if b.Token != "" {
		if failedStage {
			err = s.Workflow.SendTaskFailure(ctx, b.Token, "NodeCommandFailed", out.cause())
		} else {
			var payload []byte
			payload, err = jsonMarshal(out)
			if err == nil {
				err = s.Workflow.SendTaskSuccess(ctx, b.Token, payload)
			}
		}
		// A token that is gone (the task timed out or was stopped) cannot be completed:
		// nothing waits for it any more.
		if err != nil && !errs.Is(err, errs.NotFound) && !errs.Is(err, errs.Conflict) {
			return fmt.Errorf("notify workflow of batch %s: %w", b.ID, err)
		}
	}
	_, err = s.update(ctx, b.ID, func(x *Batch) error { x.Notified = true; return nil })
	return err
}

// stageDone records the batch's end on its action's stage.
func (s *Service) stageDone(ctx context.Context, b *Batch, out Outcome, failed bool) error {
	_, err := s.DB.UpdateStage(ctx, b.ActionID, b.ComponentID, b.Stage, func(st *model.Stage) {
		now := s.DB.Now()
		st.NodesTotal, st.NodesDone, st.NodesFailed, st.Failures = b.Total, b.Done, b.Failed, out.Errors
		st.FinishedAt = &now
		st.Status = "SUCCEEDED"
		if failed {
			st.Status = "FAILED"
		}
	})
	return err
}

func (o Outcome) cause() string {
	var parts []string
	for _, e := range o.Errors {
		parts = append(parts, fmt.Sprintf("node %s: %s", e.Name, e.Error))
		if len(parts) == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(o.Errors)-10))
			break
		}
	}
	return fmt.Sprintf("%s failed on %d of %d nodes: %s", o.Stage, o.Failed, o.Total, strings.Join(parts, "; "))
}

func (s *Service) outcome(ctx context.Context, b *Batch) (Outcome, error) {
	out := Outcome{BatchID: b.ID, Stage: b.Stage, Total: b.Total, OK: b.Done, Failed: b.Failed}
	if b.Failed == 0 {
		return out, nil
	}
	entries, err := s.Entries(ctx, b.ID)
	if err != nil {
		return out, err
	}
	for _, e := range entries {
		if e.Status == Failed {
			out.Nodes = append(out.Nodes, e.NodeID)
			out.Errors = append(out.Errors, model.NodeFailure{Node: e.NodeID, Name: e.NodeName, Error: e.Error})
		}
	}
	return out, nil
}

func (s *Service) update(ctx context.Context, id string, fn func(*Batch) error) (*Batch, error) {
	var out Batch
	_, err := store.Update(ctx, s.DB.S, KindBatch, id, func(r *store.Record) error {
		var b Batch
		if err := store.Decode(*r, &b); err != nil {
			return err
		}
		if err := fn(&b); err != nil {
			return err
		}
		nr, err := batchRecord(&b)
		if err != nil {
			return err
		}
		nr.Version = r.Version
		*r = nr
		out = b
		return nil
	})
	return &out, err
}

// Get loads a batch.
func (s *Service) Get(ctx context.Context, id string) (Batch, error) {
	b, _, err := store.Load[Batch](ctx, s.DB.S, KindBatch, id)
	return b, err
}

// Entries lists a batch's entries by node name.
func (s *Service) Entries(ctx context.Context, batchID string) ([]Entry, error) {
	es, err := store.All[Entry](ctx, s.DB.S, KindEntry, store.Query{Index: store.IdxParent, Part: batchID})
	sort.SliceStable(es, func(i, j int) bool { return es[i].NodeName < es[j].NodeName })
	return es, err
}

// Sweep expires overdue batches (their silent nodes fail with a timeout) and re-sends
// completions whose notice was lost in a crash. The checker calls it periodically.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	now := s.DB.Now()
	recs, _, err := s.DB.S.List(ctx, KindBatch, store.Query{Index: store.IdxDue, Part: dueOpen, To: store.SortTime(now), Limit: 500})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		var b Batch
		if err := store.Decode(r, &b); err != nil {
			return n, err
		}
		switch {
		case b.Completed && !b.Notified:
			if err := s.complete(ctx, b.ID); err != nil {
				s.Log.Warn("re-notify batch", "batch", b.ID, "err", err)
				continue
			}
			n++
		case !b.Completed && now.After(b.Deadline):
			entries, err := s.Entries(ctx, b.ID)
			if err != nil {
				return n, err
			}
			for _, e := range entries {
				if e.Status != Pending {
					continue
				}
				msg := fmt.Sprintf("no answer within %s", b.Deadline.Sub(b.CreatedAt).Round(time.Second))
				if _, err := s.Record(ctx, b.ID, e.NodeID, Result{OK: false, Error: msg, Code: "TIMEOUT"}); err != nil {
					s.Log.Warn("expire batch entry", "batch", b.ID, "node", e.NodeID, "err", err)
				}
			}
			n++
		}
	}
	return n, nil
}

// recordLocks serialise the answers of a batch within this process (Record).
var recordLocks [64]sync.Mutex

func recordLock(batchID string) *sync.Mutex {
	h := fnv.New32a()
	_, _ = h.Write([]byte(batchID))
	return &recordLocks[h.Sum32()%uint32(len(recordLocks))]
}
