package agent

import (
	"container/heap"
	"context"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
)

// Subscriber is implemented by in-process queues that push: fn is called whenever a
// message may have become available on the named queue. fn must not block.
type Subscriber interface {
	Subscribe(name string, fn func()) (cancel func())
}

// FleetConfig configures a Fleet.
type FleetConfig struct {
	Queue  queue.Queue
	Clock  clock.Clock  // default: the wall clock
	Logger *slog.Logger // default: slog.Default()

	Workers     int // heartbeats, simulated completions, boots; default 4×GOMAXPROCS
	Pollers     int // concurrent receives on command queues; default 8
	Senders     int // status-queue senders, each batching; default 2
	MaxBlocking int // concurrent Exec calls of blocking (non-Simulated) backends; default 64
	SendBatch   int // most messages in one Send call; default 100

	// Notify tells the fleet when a command queue may have messages. Default: the
	// queue's Subscribe when it is a Subscriber; with neither, the fleet polls.
	Notify func(name string, fn func()) (cancel func())
	// Pushed says that something else receives the command queues and hands the
	// messages over with Deliver (a push dispatcher of an in-process queue): the fleet
	// then receives itself only at SafetyPoll.
	Pushed bool
	// SafetyPoll is how often a notified agent still polls, for messages whose visibility
	// timeout expired (nothing is sent for those). Default 60s.
	SafetyPoll time.Duration

	// Polling, when there is no Notify: each agent's interval doubles from PollMin to
	// PollMax while its queue is empty and resets when a command arrives. A PollWait > 0
	// long-polls (one agent per poller at a time) and re-polls at once.
	PollWait time.Duration
	PollMin  time.Duration // default 100ms
	PollMax  time.Duration // default 2s

	// EnsureQueues makes an agent create its command queue when it boots. Off by default:
	// the control plane creates node queues.
	EnsureQueues bool
}

// Fleet drives agents: one scheduler (a heap of due times), a worker pool, a poller pool,
// batching senders and an acknowledger, all owned by Run. Agents own no goroutines.
type Fleet struct {
	cfg    FleetConfig
	q      queue.Queue
	clock  clock.Clock
	log    *slog.Logger
	notify func(string, func()) func()

	mu      sync.RWMutex
	agents  map[string]*Agent
	byQueue map[string]*Agent // by command queue

	smu  sync.Mutex
	h    evHeap
	seq  uint64
	wake chan struct{}

	tasks   chan *event
	polls   chan *event
	senders []chan outItem
	block   chan struct{}
	bwg     sync.WaitGroup

	amu  sync.Mutex
	acks []ackItem
	asig chan struct{}

	running atomic.Bool
	done    chan struct{} // closed when Run's context ends
	stats   counters
}

// Stats counts what a fleet has done.
type Stats struct {
	Agents     int
	Hellos     int64
	Heartbeats int64
	Results    int64
	Events     int64
	Receives   int64 // Receive calls
	Commands   int64 // command messages received and handled (their work scheduled)
	SendErrors int64
	Crashes    int64
}

type counters struct {
	hellos, heartbeats, results, events, receives, commands, sendErrors, crashes atomic.Int64
}

// Event kinds.
const (
	evBoot uint8 = iota
	evHeartbeat
	evPoll
	evComplete
	evFunc
)

type event struct {
	at   time.Time
	seq  uint64
	kind uint8
	gen  uint32
	pseq uint32 // for evPoll: which queued receive this is
	a    *Agent
	p    *pending
	fn   func(context.Context)
}

type pending struct {
	cmd     *agentproto.Command
	receipt string
	timeout bool
}

type evHeap []*event

func (h evHeap) Len() int { return len(h) }
func (h evHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h evHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *evHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *evHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return e
}

type outItem struct {
	kind    string // agentproto type, for counting
	queue   string
	body    []byte
	ackQ    string // acknowledge receipt on ackQ once body is sent
	receipt string
	flush   chan struct{} // a Sync marker: closed once everything before it is sent
}

type ackItem struct{ queue, receipt string }

// NewFleet builds a fleet; nothing runs until Run.
func NewFleet(cfg FleetConfig) (*Fleet, error) {
	if cfg.Queue == nil {
		return nil, errs.Invalidf("queue", "a fleet needs a queue")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4 * runtime.GOMAXPROCS(0)
	}
	if cfg.Pollers <= 0 {
		cfg.Pollers = 8
	}
	if cfg.Senders <= 0 {
		cfg.Senders = 2
	}
	if cfg.MaxBlocking <= 0 {
		cfg.MaxBlocking = 64
	}
	if cfg.SendBatch <= 0 {
		cfg.SendBatch = 100
	}
	if cfg.SafetyPoll <= 0 {
		cfg.SafetyPoll = time.Minute
	}
	if cfg.PollMin <= 0 {
		cfg.PollMin = 100 * time.Millisecond
	}
	if cfg.PollMax < cfg.PollMin {
		cfg.PollMax = 2 * time.Second
		if cfg.PollMax < cfg.PollMin {
			cfg.PollMax = cfg.PollMin
		}
	}
	f := &Fleet{
		cfg:     cfg,
		q:       cfg.Queue,
		clock:   cfg.Clock,
		log:     cfg.Logger,
		notify:  cfg.Notify,
		agents:  make(map[string]*Agent),
		byQueue: make(map[string]*Agent),
		wake:    make(chan struct{}, 1),
		tasks:   make(chan *event, 1024),
		polls:   make(chan *event, 1024),
		block:   make(chan struct{}, cfg.MaxBlocking),
		asig:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	if f.notify == nil {
		if s, ok := cfg.Queue.(Subscriber); ok {
			f.notify = s.Subscribe
		}
	}
	f.senders = make([]chan outItem, cfg.Senders)
	for i := range f.senders {
		f.senders[i] = make(chan outItem, 4096)
	}
	return f, nil
}

// Notified reports whether the fleet is told about new commands rather than polling.
func (f *Fleet) Notified() bool { return f.notify != nil || f.cfg.Pushed }

// Deliver hands messages received on a command queue by someone else to the agent that
// listens on it; the fleet acknowledges them on its queue once answered, as it does what
// it receives itself. It returns false, taking none, when no running agent listens there
// (the messages come back after their visibility timeout).
func (f *Fleet) Deliver(ctx context.Context, queueName string, msgs []queue.Message) bool {
	f.mu.RLock()
	a := f.byQueue[queueName]
	f.mu.RUnlock()
	if a == nil {
		return false
	}
	a.mu.Lock()
	gen, ok := a.gen, a.state == stateUp && !a.silent && a.fleet == f
	a.mu.Unlock()
	if !ok {
		return false
	}
	for _, m := range msgs {
		f.handle(ctx, a, gen, m)
	}
	f.stats.commands.Add(int64(len(msgs)))
	return true
}

// Add hosts an agent and boots it at once (its hello is sent when Run processes it).
func (f *Fleet) Add(a *Agent) error { return f.AddAt(a, time.Time{}) }

// AddAt hosts an agent and boots it at the given time (zero: now).
func (f *Fleet) AddAt(a *Agent, at time.Time) error {
	f.mu.Lock()
	if _, dup := f.agents[a.id]; dup {
		f.mu.Unlock()
		return errs.Conflictf("agent %s is already in the fleet", a.id)
	}
	f.agents[a.id] = a
	f.byQueue[a.cmdQ] = a
	f.mu.Unlock()

	a.mu.Lock()
	if a.fleet != nil && a.fleet != f {
		a.mu.Unlock()
		f.mu.Lock()
		delete(f.agents, a.id)
		delete(f.byQueue, a.cmdQ)
		f.mu.Unlock()
		return errs.Conflictf("agent %s belongs to another fleet", a.id)
	}
	a.fleet = f
	a.gen++
	a.state = stateBooting
	gen := a.gen
	a.mu.Unlock()
	if at.IsZero() {
		at = f.clock.Now()
	}
	f.push(&event{at: at, kind: evBoot, a: a, gen: gen})
	return nil
}

// Get returns a hosted agent, or nil.
func (f *Fleet) Get(id string) *Agent {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.agents[id]
}

// Len is the number of hosted agents.
func (f *Fleet) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.agents)
}

// Remove stops an agent and forgets it: nothing more is sent for it. It reports whether
// the agent was there.
func (f *Fleet) Remove(id string) bool {
	f.mu.Lock()
	a := f.agents[id]
	delete(f.agents, id)
	if a != nil && f.byQueue[a.cmdQ] == a {
		delete(f.byQueue, a.cmdQ)
	}
	f.mu.Unlock()
	if a == nil {
		return false
	}
	a.mu.Lock()
	a.gen++
	a.state = stateStopped
	a.fleet = nil
	a.inflight, a.held = nil, nil
	unsub := a.unsub
	a.unsub = nil
	a.mu.Unlock()
	if unsub != nil {
		unsub()
	}
	return true
}

// Crash kills an agent as if its process died: no result for what it was running, no
// more heartbeats, unacknowledged commands stay on its queue. Restart brings it back.
func (f *Fleet) Crash(id string) error {
	a := f.Get(id)
	if a == nil {
		return errs.NotFoundf("agent %s not found", id)
	}
	a.mu.Lock()
	gen := a.gen
	a.mu.Unlock()
	f.crash(a, gen)
	return nil
}

// Restart restarts an agent after delay, as a new process: it forgets what it ran, keeps
// its backend's state, says hello again and resumes receiving commands.
func (f *Fleet) Restart(id string, delay time.Duration) error {
	a := f.Get(id)
	if a == nil {
		return errs.NotFoundf("agent %s not found", id)
	}
	a.mu.Lock()
	a.gen++
	a.state = stateBooting
	a.inflight, a.done, a.doneNext, a.held = nil, nil, 0, nil
	a.maint = ""
	a.pollQueued = false
	unsub := a.unsub
	a.unsub = nil
	gen := a.gen
	a.mu.Unlock()
	if unsub != nil {
		unsub()
	}
	f.push(&event{at: f.clock.Now().Add(delay), kind: evBoot, a: a, gen: gen})
	return nil
}

// SetSilent silences an agent (a network partition, a wedged process) or lets it speak
// again: while silent it neither receives commands nor sends heartbeats; results it
// produces are held and sent when the silence ends.
func (f *Fleet) SetSilent(id string, on bool) error {
	a := f.Get(id)
	if a == nil {
		return errs.NotFoundf("agent %s not found", id)
	}
	a.mu.Lock()
	was := a.silent
	a.silent = on
	a.mu.Unlock()
	if was && !on {
		f.At(time.Time{}, func(ctx context.Context) { f.unsilence(a) })
	}
	return nil
}

// At runs fn on a worker at time t (zero: now). fn must not block for long.
func (f *Fleet) At(t time.Time, fn func(ctx context.Context)) {
	if t.IsZero() {
		t = f.clock.Now()
	}
	f.push(&event{at: t, kind: evFunc, fn: fn})
}

// Sync waits until the work due now has been handed to the workers and everything
// emitted before it has been sent. With one worker it is a barrier for all work due now;
// with more, work running concurrently on other workers may still be in progress.
func (f *Fleet) Sync(ctx context.Context) error {
	done := make(chan struct{})
	f.At(time.Time{}, func(ctx context.Context) {
		marks := make([]chan struct{}, len(f.senders))
		for i, ch := range f.senders {
			marks[i] = make(chan struct{})
			select {
			case ch <- outItem{flush: marks[i]}:
			case <-ctx.Done():
				return
			}
		}
		for _, m := range marks {
			select {
			case <-m:
			case <-ctx.Done():
				return
			}
		}
		close(done)
	})
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-f.done:
		return errs.E(errs.Unavailable, "fleet sync", "the fleet has stopped")
	}
}

// Stats returns counters of the fleet's work so far.
func (f *Fleet) Stats() Stats {
	return Stats{
		Agents:     f.Len(),
		Hellos:     f.stats.hellos.Load(),
		Heartbeats: f.stats.heartbeats.Load(),
		Results:    f.stats.results.Load(),
		Events:     f.stats.events.Load(),
		Receives:   f.stats.receives.Load(),
		Commands:   f.stats.commands.Load(),
		SendErrors: f.stats.sendErrors.Load(),
		Crashes:    f.stats.crashes.Load(),
	}
}

func (f *Fleet) push(ev *event) {
	f.smu.Lock()
	f.seq++
	ev.seq = f.seq
	heap.Push(&f.h, ev)
	first := f.h[0] == ev
	f.smu.Unlock()
	if first {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// Run drives the fleet until ctx ends. A fleet runs once.
func (f *Fleet) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errs.Conflictf("fleet is already running")
	}
	go func() { <-ctx.Done(); close(f.done) }()
	var wg sync.WaitGroup
	spawn := func(n int, fn func()) {
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() { defer wg.Done(); fn() }()
		}
	}
	spawn(f.cfg.Workers, func() { f.work(ctx) })
	spawn(f.cfg.Pollers, func() { f.pollLoop(ctx) })
	for _, ch := range f.senders {
		ch := ch
		spawn(1, func() { f.sendLoop(ctx, ch) })
	}
	spawn(1, func() { f.ackLoop(ctx) })
	spawn(1, func() { f.schedule(ctx) })
	wg.Wait()
	f.bwg.Wait()
	return nil
}

func (f *Fleet) schedule(ctx context.Context) {
	const maxDue = 1024
	due := make([]*event, 0, 64)
	for {
		now := f.clock.Now()
		due = due[:0]
		wait := time.Duration(-1)
		f.smu.Lock()
		for len(f.h) > 0 && !f.h[0].at.After(now) && len(due) < maxDue {
			due = append(due, heap.Pop(&f.h).(*event))
		}
		if len(f.h) > 0 {
			wait = f.h[0].at.Sub(now)
		}
		f.smu.Unlock()
		for i, ev := range due {
			ch := f.tasks
			if ev.kind == evPoll {
				ch = f.polls
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
			due[i] = nil
		}
		if len(due) > 0 {
			continue
		}
		var timer <-chan time.Time
		if wait >= 0 {
			timer = f.clock.After(wait)
			// A clock advanced between reading it and arming the timer would leave the
			// timer late; look again instead.
			if !f.clock.Now().Before(now.Add(wait)) {
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		case <-timer:
		}
	}
}

func (f *Fleet) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-f.tasks:
			switch ev.kind {
			case evFunc:
				ev.fn(ctx)
			case evBoot:
				f.boot(ctx, ev.a, ev.gen)
			case evHeartbeat:
				f.heartbeat(ctx, ev.a, ev.gen)
			case evComplete:
				f.complete(ctx, ev.a, ev.gen, ev.p)
			}
		}
	}
}

func (f *Fleet) pollLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-f.polls:
			f.poll(ctx, ev.a, ev.gen, ev.pseq)
		}
	}
}

// current reports whether gen is still the agent's generation (work is not stale).
func (a *Agent) current(gen uint32) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gen == gen
}

func (f *Fleet) boot(ctx context.Context, a *Agent, gen uint32) {
	a.mu.Lock()
	if a.gen != gen || a.state != stateBooting {
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	var hello []byte
	err := func() error {
		if f.cfg.EnsureQueues {
			if err := f.q.Ensure(ctx, a.cmdQ); err != nil {
				return err
			}
		}
		var err error
		hello, err = a.helloMsg(ctx)
		return err
	}()
	if err != nil {
		a.mu.Lock()
		a.bootTry++
		try := a.bootTry
		a.mu.Unlock()
		d := backoff(try, time.Second, 30*time.Second)
		f.log.Warn("agent: boot failed; retrying", "node", a.id, "in", d, "err", err)
		f.push(&event{at: f.clock.Now().Add(d), kind: evBoot, a: a, gen: gen})
		return
	}
	var sub func(string, func()) func()
	a.mu.Lock()
	if a.gen != gen {
		a.mu.Unlock()
		return
	}
	a.state = stateUp
	a.bootTry = 0
	a.lease.Reset() // the first heartbeat after a boot renews the lease
	a.pollEvery = 0
	if f.notify != nil && a.unsub == nil {
		sub = f.notify
	}
	a.mu.Unlock()
	if sub != nil {
		unsub := sub(a.cmdQ, func() { f.kick(a) })
		a.mu.Lock()
		if a.gen == gen && a.unsub == nil {
			a.unsub, unsub = unsub, nil
		}
		a.mu.Unlock()
		if unsub != nil {
			unsub()
		}
	}
	f.emit(a, gen, outItem{kind: agentproto.TypeHello, queue: a.statusQ, body: hello})
	// The first heartbeat follows the hello at once, so a node is known live as soon as
	// it has booted; later ones come every interval.
	f.emit(a, gen, outItem{kind: agentproto.TypeHeartbeat, queue: a.statusQ, body: a.heartbeatMsg(ctx)})
	f.push(&event{at: f.nextBeat(a), kind: evHeartbeat, a: a, gen: gen})
	f.kick(a)
}

func (f *Fleet) nextBeat(a *Agent) time.Time {
	d := a.every
	if a.jitter > 0 {
		d = time.Duration(float64(d) * (1 + a.jitter*(2*rand.Float64()-1)))
	}
	return f.clock.Now().Add(d)
}

func (f *Fleet) heartbeat(ctx context.Context, a *Agent, gen uint32) {
	now := f.clock.Now()
	a.mu.Lock()
	if a.gen != gen {
		a.mu.Unlock()
		return
	}
	speak := a.state == stateUp && !a.silent && a.maint != "reboot"
	safety := f.Notified() && now.Sub(a.lastPoll) >= f.cfg.SafetyPoll
	a.mu.Unlock()
	if speak {
		f.emit(a, gen, outItem{kind: agentproto.TypeHeartbeat, queue: a.statusQ, body: a.heartbeatMsg(ctx)})
	}
	f.push(&event{at: f.nextBeat(a), kind: evHeartbeat, a: a, gen: gen})
	if speak && safety {
		f.kick(a)
	}
}

// kick queues a receive for the agent now, unless one is queued for now already; one
// queued for later (a backoff, an idle poll interval) is replaced.
func (f *Fleet) kick(a *Agent) {
	now := f.clock.Now()
	a.mu.Lock()
	if a.state != stateUp || a.silent || a.fleet != f || (a.pollQueued && !a.pollDue.After(now)) {
		a.mu.Unlock()
		return
	}
	ev := a.queuePollLocked(now)
	a.mu.Unlock()
	f.push(ev)
}

// pollLater queues a receive after d unless one is queued already.
func (f *Fleet) pollLater(a *Agent, gen uint32, d time.Duration) {
	a.mu.Lock()
	if a.gen != gen || a.pollQueued {
		a.mu.Unlock()
		return
	}
	ev := a.queuePollLocked(f.clock.Now().Add(d))
	a.mu.Unlock()
	f.push(ev)
}

func (a *Agent) queuePollLocked(at time.Time) *event {
	a.pollQueued = true
	a.pollDue = at
	a.pollSeq++
	return &event{at: at, kind: evPoll, a: a, gen: a.gen, pseq: a.pollSeq}
}

func (f *Fleet) poll(ctx context.Context, a *Agent, gen, pseq uint32) {
	now := f.clock.Now()
	a.mu.Lock()
	if a.gen != gen || !a.pollQueued || a.pollSeq != pseq {
		a.mu.Unlock()
		return // replaced by an earlier receive, or stale
	}
	a.pollQueued = false
	if a.state != stateUp || a.silent {
		a.mu.Unlock()
		return
	}
	room := a.maxInflight - len(a.inflight)
	a.lastPoll = now
	a.mu.Unlock()
	if room <= 0 {
		return // finishing a command kicks again
	}
	ask := min(room, queue.MaxBatch)
	f.stats.receives.Add(1)
	wait := time.Duration(0)
	if !f.Notified() {
		wait = f.cfg.PollWait
	}
	msgs, err := f.q.Receive(ctx, a.cmdQ, ask, wait)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		a.mu.Lock()
		a.pollEvery = min(max(2*a.pollEvery, time.Second), 30*time.Second)
		d := a.pollEvery
		a.mu.Unlock()
		f.log.Debug("agent: receive failed", "node", a.id, "queue", a.cmdQ, "retry_in", d, "err", err)
		f.pollLater(a, gen, d)
		return
	}
	for _, m := range msgs {
		f.handle(ctx, a, gen, m)
	}
	// Counted once handled: a command counted has its work scheduled.
	f.stats.commands.Add(int64(len(msgs)))
	switch {
	case len(msgs) == ask:
		f.kick(a) // there may be more
	case f.Notified():
		a.mu.Lock()
		a.pollEvery = 0
		a.mu.Unlock()
	case f.cfg.PollWait > 0:
		f.kick(a)
	default:
		a.mu.Lock()
		if len(msgs) > 0 {
			a.pollEvery = f.cfg.PollMin
		} else {
			a.pollEvery = min(max(2*a.pollEvery, f.cfg.PollMin), f.cfg.PollMax)
		}
		d := a.pollEvery
		a.mu.Unlock()
		f.pollLater(a, gen, d)
	}
}

func (f *Fleet) handle(ctx context.Context, a *Agent, gen uint32, m queue.Message) {
	d := a.decide(m)
	if d.reply != nil {
		f.emit(a, gen, outItem{kind: agentproto.TypeResult, queue: a.statusQ, body: d.reply, ackQ: a.cmdQ, receipt: m.Receipt})
	} else if d.ack {
		f.ack(a.cmdQ, m.Receipt)
	}
	if d.run == nil {
		return
	}
	receipt := m.Receipt
	if d.maint {
		receipt = "" // acknowledged with its reply
		if mode := maintMode(d.run); mode == "replace" || mode == "off" {
			// Nothing to do on the node: replace is the control plane's work, off ends it.
			a.mu.Lock()
			a.dropInflightLocked(d.run.ID)
			if mode == "off" {
				a.maint = ""
			}
			a.mu.Unlock()
			return
		}
	}
	f.start(ctx, a, gen, d.run, receipt)
}

func (f *Fleet) start(ctx context.Context, a *Agent, gen uint32, cmd *agentproto.Command, receipt string) {
	if a.sim != nil {
		d := a.sim.Duration(cmd)
		now := f.clock.Now()
		p := &pending{cmd: cmd, receipt: receipt}
		var at time.Time
		if d == Forever || d < 0 {
			if cmd.Deadline.IsZero() {
				return // hung for good; it stays in flight until the agent restarts
			}
			at, p.timeout = cmd.Deadline, true
		} else {
			at = now.Add(d)
			if !cmd.Deadline.IsZero() && at.After(cmd.Deadline) {
				at, p.timeout = cmd.Deadline, true
			}
		}
		f.push(&event{at: at, kind: evComplete, a: a, gen: gen, p: p})
		return
	}
	select {
	case f.block <- struct{}{}:
	case <-ctx.Done():
		return
	}
	f.bwg.Add(1)
	go func() {
		defer f.bwg.Done()
		defer func() { <-f.block }()
		cctx := ctx
		if !cmd.Deadline.IsZero() {
			var cancel context.CancelFunc
			cctx, cancel = context.WithDeadline(ctx, cmd.Deadline)
			defer cancel()
		}
		o := a.backend.Exec(cctx, cmd)
		if ctx.Err() != nil {
			return // shutting down: the command will be redelivered
		}
		f.finish(ctx, a, gen, cmd, receipt, o)
	}()
}

func (f *Fleet) complete(ctx context.Context, a *Agent, gen uint32, p *pending) {
	if !a.current(gen) {
		return
	}
	var o Outcome
	if p.timeout {
		o = failure("deadline " + p.cmd.Deadline.UTC().Format(time.RFC3339) + " exceeded")
	} else {
		o = a.backend.Exec(ctx, p.cmd)
	}
	f.finish(ctx, a, gen, p.cmd, p.receipt, o)
}

func (f *Fleet) finish(ctx context.Context, a *Agent, gen uint32, cmd *agentproto.Command, receipt string, o Outcome) {
	if o.Crash {
		f.log.Info("agent: crashed (simulated)", "node", a.id, "command", cmd.ID, "kind", cmd.Kind)
		f.crash(a, gen)
		return
	}
	a.mu.Lock()
	if a.gen != gen {
		a.mu.Unlock()
		return
	}
	wasFull := len(a.inflight) >= a.maxInflight
	a.dropInflightLocked(cmd.ID)
	if cmd.Kind == agentproto.CmdMaintenance {
		mode := a.maint
		a.maint = ""
		a.mu.Unlock()
		if mode == "reboot" {
			if hello, err := a.helloMsg(ctx); err == nil {
				f.emit(a, gen, outItem{kind: agentproto.TypeHello, queue: a.statusQ, body: hello})
			}
		}
		detail := mode
		if !o.OK {
			detail = mode + " failed: " + o.Error
		}
		f.emit(a, gen, outItem{kind: agentproto.TypeEvent, queue: a.statusQ, body: a.eventMsg(agentproto.EventResume, detail)})
		if wasFull {
			f.kick(a)
		}
		return
	}
	body := a.resultMsg(cmd, o)
	a.rememberLocked(cmd.ID, body)
	a.mu.Unlock()
	f.emit(a, gen, outItem{kind: agentproto.TypeResult, queue: a.statusQ, body: body, ackQ: a.cmdQ, receipt: receipt})
	if wasFull {
		f.kick(a)
	}
}

func (f *Fleet) crash(a *Agent, gen uint32) {
	a.mu.Lock()
	if a.gen != gen || a.state == stateStopped {
		a.mu.Unlock()
		return
	}
	a.gen++
	a.state = stateCrashed
	a.inflight, a.held, a.maint = nil, nil, ""
	a.pollQueued = false
	unsub := a.unsub
	a.unsub = nil
	a.mu.Unlock()
	f.stats.crashes.Add(1)
	if unsub != nil {
		unsub()
	}
}

func (f *Fleet) unsilence(a *Agent) {
	a.mu.Lock()
	if a.silent {
		a.mu.Unlock()
		return
	}
	held := a.held
	a.held = nil
	gen := a.gen
	a.mu.Unlock()
	for _, it := range held {
		f.emit(a, gen, it)
	}
	f.kick(a)
}

// maxHeld bounds what a silent agent keeps to send later.
const maxHeld = 256

// emit sends a message of the agent (held while it is silent).
func (f *Fleet) emit(a *Agent, gen uint32, it outItem) {
	a.mu.Lock()
	if a.gen != gen {
		a.mu.Unlock()
		return
	}
	if a.silent {
		if it.kind != agentproto.TypeHeartbeat && len(a.held) < maxHeld {
			a.held = append(a.held, it)
		}
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	select {
	case f.senders[shard(a.id, len(f.senders))] <- it:
	case <-f.done:
	}
}

func shard(id string, n int) int {
	if n == 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(n))
}

func (f *Fleet) sendLoop(ctx context.Context, ch chan outItem) {
	batch := make([]outItem, 0, f.cfg.SendBatch)
	bodies := make([][]byte, 0, f.cfg.SendBatch)
	for {
		batch = batch[:0]
		var flush chan struct{}
		select {
		case <-ctx.Done():
			return
		case it := <-ch:
			if it.flush != nil {
				close(it.flush)
				continue
			}
			batch = append(batch, it)
		}
	fill:
		for len(batch) < f.cfg.SendBatch {
			select {
			case it := <-ch:
				if it.flush != nil {
					flush = it.flush
					break fill
				}
				batch = append(batch, it)
			default:
				break fill
			}
		}
		// Send runs of the same queue in order (agents almost always share one).
		for i := 0; i < len(batch); {
			j := i
			bodies = bodies[:0]
			for j < len(batch) && batch[j].queue == batch[i].queue {
				bodies = append(bodies, batch[j].body)
				j++
			}
			if !f.sendRetry(ctx, batch[i].queue, bodies) {
				return
			}
			for _, it := range batch[i:j] {
				f.count(it.kind)
				if it.receipt != "" {
					f.ack(it.ackQ, it.receipt)
				}
			}
			i = j
		}
		for i := range batch {
			batch[i] = outItem{}
		}
		if flush != nil {
			close(flush)
		}
	}
}

func (f *Fleet) sendRetry(ctx context.Context, name string, bodies [][]byte) bool {
	for try := 1; ; try++ {
		err := f.q.Send(ctx, name, bodies...)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		f.stats.sendErrors.Add(1)
		d := backoff(try, 100*time.Millisecond, 5*time.Second)
		f.log.Warn("agent: send to status queue failed; retrying", "queue", name, "messages", len(bodies), "in", d, "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-f.clock.After(d):
		}
	}
}

func (f *Fleet) count(kind string) {
	switch kind {
	case agentproto.TypeHello:
		f.stats.hellos.Add(1)
	case agentproto.TypeHeartbeat:
		f.stats.heartbeats.Add(1)
	case agentproto.TypeResult:
		f.stats.results.Add(1)
	case agentproto.TypeEvent:
		f.stats.events.Add(1)
	}
}

func (f *Fleet) ack(q, receipt string) {
	if receipt == "" {
		return
	}
	f.amu.Lock()
	f.acks = append(f.acks, ackItem{q, receipt})
	f.amu.Unlock()
	select {
	case f.asig <- struct{}{}:
	default:
	}
}

func (f *Fleet) ackLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.asig:
		}
		f.amu.Lock()
		acks := f.acks
		f.acks = nil
		f.amu.Unlock()
		for i := 0; i < len(acks); {
			j := i
			var receipts []string
			for j < len(acks) && acks[j].queue == acks[i].queue && len(receipts) < queue.MaxBatch {
				receipts = append(receipts, acks[j].receipt)
				j++
			}
			if err := f.q.Ack(ctx, acks[i].queue, receipts...); err != nil && ctx.Err() == nil {
				// The command comes back after its visibility timeout; its result is re-sent.
				f.log.Warn("agent: ack failed", "queue", acks[i].queue, "err", err)
			}
			i = j
		}
	}
}

func backoff(try int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < try && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
