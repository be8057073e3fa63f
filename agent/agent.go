// Package agent is the node agent of straas (DESIGN §5): it says hello when its node boots,
// heartbeats with service status and metrics, and executes the commands it receives on its
// node's command queue through a Backend, answering each with a result on the status queue.
//
// The per-node Agent is a passive state machine: it owns no goroutines or timers. A Fleet
// drives any number of agents with one shared scheduler and bounded pools of workers,
// pollers and senders, which is how the mock cloud hosts ten thousand of them in one
// process. A single agent on a real host runs the same core through (*Agent).Run, which is
// a Fleet of one.
//
// Commands reach hosted agents in one of three ways, the fleet choosing by what its queue
// offers: the queue pushes a notification per send (Subscriber, or FleetConfig.Notify)
// and a pool of pollers receives at once; something else receives and hands the messages
// over (FleetConfig.Pushed and Fleet.Deliver, for a push dispatcher); or, with neither
// (SQS), a bounded pool of pollers visits each queue at an interval that backs off while
// it is idle.
//
// Delivery is at least once: a command is acknowledged on its queue only after its result
// has been sent, a command seen again while it runs is not run twice, and the results of
// recently completed commands are re-sent, not recomputed, when their command comes again.
package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
)

// Version is reported in hello messages.
const Version = "straas-agent/1"

// Defaults of Config.
const (
	DefaultHeartbeat   = 10 * time.Second
	DefaultJitter      = 0.1 // ± fraction of the heartbeat interval
	DefaultRemember    = 32  // completed command ids whose results are kept for re-sending
	DefaultMaxInflight = 8   // commands run concurrently by one agent
)

// Forever is the Duration of simulated work that never completes (a hung command).
const Forever = time.Duration(math.MaxInt64)

// Backend does the node-side work of an agent: on a real host it runs the script repo's
// scripts (package host); on a mock node it keeps state in files (package dummy).
type Backend interface {
	// Boot is called when the agent starts (again): what the node says in its hello.
	// The agent fills in ServerID and AgentVersion.
	Boot(ctx context.Context) (agentproto.Hello, error)
	// Status is sampled for every heartbeat; it must be cheap.
	Status(ctx context.Context) Status
	// Exec runs one command. ctx carries the command's deadline, if any.
	Exec(ctx context.Context, cmd *agentproto.Command) Outcome
}

// Simulated is implemented by backends that only pretend to work: instead of letting Exec
// block, the agent waits Duration on its fleet's scheduler (holding no goroutine), then
// calls Exec, which must return promptly. Duration returns Forever for a hung command.
type Simulated interface {
	Duration(cmd *agentproto.Command) time.Duration
}

// Status is what a backend reports in a heartbeat.
type Status struct {
	Services    map[string]string  // service -> running|stopped|failed
	Metrics     map[string]float64 // cpu, mem, disk (percent) and app-specific metrics
	Installed   string             // installed version of the component
	ConfigRef   string
	ScriptsRef  string
	Maintenance bool
}

// Outcome is what a backend reports for one command.
type Outcome struct {
	OK         bool
	Code       string // filled in with the agentproto code of the kind when empty
	ExitStatus int
	Output     string // truncated to agentproto.MaxOutput by the agent
	Error      string
	Data       json.RawMessage
	// Crash makes the agent die without answering: a simulated agent crash.
	Crash bool
}

// Config configures one agent.
type Config struct {
	NodeID string
	// Queue is used by a standalone agent (Run); an agent added to a Fleet uses the fleet's.
	Queue   queue.Queue
	Backend Backend
	Clock   clock.Clock  // default: the wall clock
	Logger  *slog.Logger // default: slog.Default()

	ServerID          string        // the cloud's server id, reported in hello
	HeartbeatInterval time.Duration // default DefaultHeartbeat
	LeasePeriod       time.Duration // how often a heartbeat asks to be stored (Renew); default DefaultLease
	HeartbeatJitter   float64       // fraction; default DefaultJitter; negative: none
	StatusQueue       string        // default queue.Status
	CommandQueue      string        // default queue.NodeQueue(NodeID)
	Remember          int           // default DefaultRemember
	MaxInflight       int           // default DefaultMaxInflight
}

// Agent states.
const (
	stateNew     uint8 = iota // created, not yet booted
	stateBooting              // boot scheduled or in progress
	stateUp                   // hello sent: heartbeats and commands
	stateCrashed              // dead until restarted
	stateStopped              // removed from its fleet
)

// Agent is one node's agent. Its methods are safe for concurrent use.
type Agent struct {
	id, cmdQ, statusQ, serverID string
	every                       time.Duration
	jitter                      float64
	remember                    int
	maxInflight                 int
	backend                     Backend
	sim                         Simulated
	q                           queue.Queue
	clock                       clock.Clock
	log                         *slog.Logger

	mu         sync.Mutex
	fleet      *Fleet
	gen        uint32 // bumped on crash, restart and removal: stale scheduled work is dropped
	state      uint8
	silent     bool
	maint      string // maintenance mode in progress ("" when none)
	seq        uint64
	lease      Lease // the heartbeats' Renew and Changed flags
	inflight   []string
	done       []doneResult // ring of recent results
	doneNext   int
	held       []outItem // messages produced while silent, sent when it ends
	pollQueued bool
	pollDue    time.Time // when the queued receive is due
	pollSeq    uint32    // the queued receive; an earlier one replaces a later one
	pollEvery  time.Duration
	lastPoll   time.Time
	unsub      func()
	bootTry    int
}

type doneResult struct {
	id   string
	body []byte
}

// New builds an agent. It does nothing until added to a Fleet or Run.
func New(cfg Config) (*Agent, error) {
	if cfg.NodeID == "" {
		return nil, errs.Invalidf("node_id", "an agent needs a node id")
	}
	if cfg.Backend == nil {
		return nil, errs.Invalidf("backend", "an agent needs a backend")
	}
	a := &Agent{
		id:          cfg.NodeID,
		cmdQ:        cfg.CommandQueue,
		statusQ:     cfg.StatusQueue,
		serverID:    cfg.ServerID,
		every:       cfg.HeartbeatInterval,
		jitter:      cfg.HeartbeatJitter,
		remember:    cfg.Remember,
		maxInflight: cfg.MaxInflight,
		backend:     cfg.Backend,
		q:           cfg.Queue,
		clock:       cfg.Clock,
		log:         cfg.Logger,
		lease:       Lease{Period: cfg.LeasePeriod},
	}
	if a.cmdQ == "" {
		a.cmdQ = queue.NodeQueue(a.id)
	}
	if a.statusQ == "" || a.statusQ == queue.Status {
		a.statusQ = queue.Status // share the constant's bytes across agents
	}
	if a.every <= 0 {
		a.every = DefaultHeartbeat
	}
	if a.jitter == 0 {
		a.jitter = DefaultJitter
	}
	if a.jitter < 0 {
		a.jitter = 0
	}
	if a.remember <= 0 {
		a.remember = DefaultRemember
	}
	if a.maxInflight <= 0 {
		a.maxInflight = DefaultMaxInflight
	}
	if a.clock == nil {
		a.clock = clock.Real{}
	}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.sim, _ = a.backend.(Simulated)
	return a, nil
}

// ID is the node id.
func (a *Agent) ID() string { return a.id }

// ServerID is the cloud server id the agent reports.
func (a *Agent) ServerID() string { return a.serverID }

// CommandQueue is the queue the agent receives commands on.
func (a *Agent) CommandQueue() string { return a.cmdQ }

// Backend returns the agent's backend.
func (a *Agent) Backend() Backend { return a.backend }

// Up reports whether the agent has booted and is neither crashed nor removed.
func (a *Agent) Up() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state == stateUp
}

// Silent reports whether the agent is silenced.
func (a *Agent) Silent() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.silent
}

// Crashed reports whether the agent has crashed (and not been restarted).
func (a *Agent) Crashed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state == stateCrashed
}

func (a *Agent) envelope(typ string) agentproto.Envelope {
	return agentproto.Envelope{Type: typ, Node: a.id, At: a.clock.Now().UTC()}
}

func (a *Agent) encode(e agentproto.Envelope) []byte {
	b, err := agentproto.Encode(e)
	if err != nil {
		// Only a backend's Data could fail to marshal; drop it rather than the message.
		a.log.Error("agent: encode message", "node", a.id, "type", e.Type, "err", err)
		if e.Result != nil {
			e.Result.Data = nil
			b, _ = agentproto.Encode(e)
		}
	}
	return b
}

func (a *Agent) helloMsg(ctx context.Context) ([]byte, error) {
	h, err := a.backend.Boot(ctx)
	if err != nil {
		return nil, fmt.Errorf("agent %s: boot: %w", a.id, err)
	}
	h.ServerID = a.serverID
	if h.AgentVersion == "" {
		h.AgentVersion = Version
	}
	e := a.envelope(agentproto.TypeHello)
	e.Hello = &h
	return a.encode(e), nil
}

// heartbeatMsg builds the next heartbeat; the caller holds no lock.
func (a *Agent) heartbeatMsg(ctx context.Context) []byte {
	st := a.backend.Status(ctx)
	e := a.envelope(agentproto.TypeHeartbeat)
	hb := &agentproto.Heartbeat{
		Services:   st.Services,
		Metrics:    st.Metrics,
		Installed:  st.Installed,
		ConfigRef:  st.ConfigRef,
		ScriptsRef: st.ScriptsRef,
	}
	a.mu.Lock()
	a.seq++
	hb.Seq = a.seq
	hb.Maintenance = a.maint != "" || st.Maintenance
	a.lease.Stamp(e.At, hb)
	a.mu.Unlock()
	e.Heartbeat = hb
	return a.encode(e)
}

func (a *Agent) eventMsg(name, detail string) []byte {
	e := a.envelope(agentproto.TypeEvent)
	e.Event = &agentproto.Event{Name: name, Detail: detail}
	return a.encode(e)
}

func (a *Agent) resultMsg(cmd *agentproto.Command, o Outcome) []byte {
	r := &agentproto.Result{
		CommandID:  cmd.ID,
		Kind:       cmd.Kind,
		Reply:      cmd.Reply,
		OK:         o.OK,
		Code:       o.Code,
		ExitStatus: o.ExitStatus,
		Output:     Truncate(o.Output, agentproto.MaxOutput),
		Error:      Truncate(o.Error, agentproto.MaxOutput),
		Data:       o.Data,
	}
	if r.Code == "" {
		r.Code = ResultCode(cmd.Kind, o.OK)
	}
	e := a.envelope(agentproto.TypeResult)
	e.Result = r
	return a.encode(e)
}

// ResultCode is the agentproto result code of a command kind (seed 000 §4.4.2), "" for
// kinds that have none.
func ResultCode(kind string, ok bool) string {
	pick := func(s, f string) string {
		if ok {
			return s
		}
		return f
	}
	switch kind {
	case agentproto.CmdInstall:
		return pick(agentproto.InstallSuccess, agentproto.InstallFailure)
	case agentproto.CmdPreConfigure:
		return pick(agentproto.PreConfigSuccess, agentproto.PreConfigFailure)
	case agentproto.CmdConfigure:
		return pick(agentproto.ConfigSuccess, agentproto.ConfigFailure)
	case agentproto.CmdValidate:
		return pick(agentproto.ValidateSuccess, agentproto.ValidateFailure)
	}
	return ""
}

// Truncate bounds s to max bytes, keeping its end (where errors usually are) and saying
// how much was cut.
func Truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	note := fmt.Sprintf("[... %d bytes truncated ...]\n", len(s)-max)
	keep := max - len(note)
	if keep < 0 {
		return note[:max]
	}
	return note + s[len(s)-keep:]
}

// failure is the outcome of a command that could not run.
func failure(msg string) Outcome { return Outcome{OK: false, ExitStatus: -1, Error: msg} }

// recall returns the stored result of a completed command.
func (a *Agent) recallLocked(id string) []byte {
	for _, d := range a.done {
		if d.id == id {
			return d.body
		}
	}
	return nil
}

func (a *Agent) rememberLocked(id string, body []byte) {
	if len(a.done) < a.remember {
		a.done = append(a.done, doneResult{id, body})
		return
	}
	a.done[a.doneNext] = doneResult{id, body}
	a.doneNext = (a.doneNext + 1) % a.remember
}

func (a *Agent) inflightLocked(id string) bool {
	for _, x := range a.inflight {
		if x == id {
			return true
		}
	}
	return false
}

func (a *Agent) dropInflightLocked(id string) {
	for i, x := range a.inflight {
		if x == id {
			a.inflight[i] = a.inflight[len(a.inflight)-1]
			a.inflight = a.inflight[:len(a.inflight)-1]
			if len(a.inflight) == 0 {
				a.inflight = nil // release the backing array of idle agents
			}
			return
		}
	}
}

// decision is what the agent does with one received message.
type decision struct {
	ack   bool   // acknowledge the message now (a duplicate of a running command)
	reply []byte // send this at once, then acknowledge the message
	run   *agentproto.Command
	maint bool // run is a maintenance command already acknowledged by reply
}

// decide classifies a received message. It is pure apart from the agent's bookkeeping.
func (a *Agent) decide(m queue.Message) decision {
	env, err := agentproto.Decode(m.Body)
	if err != nil || env.Type != agentproto.TypeCommand {
		// Leave it for the dead-letter queue, where a human can look at it.
		a.log.Warn("agent: undecodable command message", "node", a.id, "msg", m.ID, "receives", m.Receives, "err", err, "type", env.Type)
		return decision{}
	}
	cmd := env.Command
	if cmd.ID == "" {
		return decision{reply: a.resultMsg(cmd, failure("command without an id"))}
	}
	now := a.clock.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if body := a.recallLocked(cmd.ID); body != nil {
		return decision{reply: body}
	}
	if a.inflightLocked(cmd.ID) {
		// Redelivered while it runs (visibility timeout): it must not run twice, and it
		// must not reach the dead-letter queue either.
		return decision{ack: true}
	}
	if !cmd.Deadline.IsZero() && !now.Before(cmd.Deadline) {
		body := a.resultMsg(cmd, failure("deadline "+cmd.Deadline.UTC().Format(time.RFC3339)+" passed before the command ran"))
		a.rememberLocked(cmd.ID, body)
		return decision{reply: body}
	}
	a.inflight = append(a.inflight, cmd.ID)
	if cmd.Kind == agentproto.CmdMaintenance {
		mode := maintMode(cmd)
		a.maint = mode
		ack := a.resultMsg(cmd, Outcome{OK: true, Output: "maintenance " + mode + " started"})
		a.rememberLocked(cmd.ID, ack)
		return decision{reply: ack, run: cmd, maint: true}
	}
	return decision{run: cmd}
}

func maintMode(cmd *agentproto.Command) string {
	if m := cmd.Params["mode"]; m != "" {
		return m
	}
	return "restart"
}
