package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
)

// Detection modes of a health policy.
const (
	DetectHeartbeat = "heartbeat"      // missed heartbeats
	DetectService   = "service_status" // a required service reported failed or stopped
	DetectHost      = "host_down"      // the compute node (hypervisor) is down
	DetectStatus    = "node_status"    // the node is FAILED (a command failed on it)
)

// Recovery steps, mildest first.
const (
	StepRestart = "restart" // restart the component's services through the agent
	StepReboot  = "reboot"  // reboot the server through Nova
	StepReplace = "replace" // a new server with the same identity and configuration
)

var (
	allModes = []string{DetectHeartbeat, DetectService, DetectHost, DetectStatus}
	allSteps = []string{StepRestart, StepReboot, StepReplace}
)

// HealthSpec is the properties of straas.policy.health-1.0.
type HealthSpec struct {
	Detection HealthDetection `json:"detection"`
	Recovery  HealthRecovery  `json:"recovery"`
}

// HealthDetection says what makes a node failed.
type HealthDetection struct {
	Modes    []string `json:"modes,omitempty"`
	Interval int      `json:"interval,omitempty"` // seconds between heartbeats
	Count    int      `json:"count,omitempty"`    // missed heartbeats that make a failure
	Services []string `json:"services,omitempty"` // services that must run; empty: every reported one
}

// HealthRecovery says how a failed node is recovered.
type HealthRecovery struct {
	Actions       []string `json:"actions,omitempty"`
	GracePeriod   int      `json:"grace_period,omitempty"`   // seconds after a step before judging it
	StepTimeout   int      `json:"step_timeout,omitempty"`   // seconds a step may take
	MaxConcurrent int      `json:"max_concurrent,omitempty"` // nodes of a component recovered at once
	RetryInterval int      `json:"retry_interval,omitempty"` // seconds before a node whose recovery failed is tried again
	WindowSteps   []string `json:"window_steps,omitempty"`   // steps that wait for a maintenance window
}

func init() {
	register(TypeDoc{
		Type: TypeHealth, Version: "1.0",
		Summary: "Detect failed nodes and recover them, escalating step by step.",
		Doc: "A node fails when it misses heartbeats (detection.interval x detection.count seconds of silence), " +
			"when a required service is reported failed or stopped, when its compute node is down, or when it is FAILED. " +
			"Recovery runs the steps of recovery.actions in order (restart the services, reboot the server, replace the server " +
			"keeping the node's identity), waiting recovery.grace_period seconds after each before judging it, and stops at the " +
			"first that heals the node. Steps that need the agent (restart) are skipped for a silent node, steps that need the host " +
			"(restart, reboot) for a node whose host is down. Recovery honours operational states: with autohealing off, or while a " +
			"node is in maintenance, failures are recorded (node flags and events) but not acted on, and are healed once autohealing " +
			"is back, with an event saying since when healing was delayed. A component whose type keeps a quorum (zookeeper) has " +
			"at most one node recovered at a time; others at most recovery.max_concurrent. A node is never recovered twice at once. " +
			"Steps listed in recovery.window_steps wait for the component's next maintenance window.",
		Singleton: true,
		Properties: []Property{
			{Name: "detection.modes", Type: "list", Default: allModes, Constraints: "of heartbeat, service_status, host_down, node_status", Doc: "what counts as a failure"},
			{Name: "detection.interval", Type: "integer", Default: 10, Constraints: ">= 1", Doc: "seconds between a node's heartbeats"},
			{Name: "detection.count", Type: "integer", Default: 3, Constraints: ">= 1", Doc: "heartbeats missed in a row that make a failure"},
			{Name: "detection.services", Type: "list", Doc: "services that must be running; default every service the node reports"},
			{Name: "recovery.actions", Type: "list", Default: allSteps, Constraints: "of restart, reboot, replace, each at most once, in escalation order", Doc: "recovery steps, tried in order"},
			{Name: "recovery.grace_period", Type: "integer", Default: 30, Constraints: "0..3600", Doc: "seconds to wait after a step before judging whether it healed the node"},
			{Name: "recovery.step_timeout", Type: "integer", Default: 300, Constraints: "1..86400", Doc: "seconds a step may take"},
			{Name: "recovery.max_concurrent", Type: "integer", Default: 1, Constraints: ">= 1; 1 for quorum components whatever is set", Doc: "nodes of a component recovered at the same time"},
			{Name: "recovery.retry_interval", Type: "integer", Default: 600, Constraints: ">= 0", Doc: "seconds before a node whose recovery failed is tried again"},
			{Name: "recovery.window_steps", Type: "list", Constraints: "of reboot, replace", Doc: "steps that wait for the component's next maintenance window (a restart never waits)"},
		},
		Example: Spec{Properties: json.RawMessage(`{"detection":{"modes":["heartbeat","service_status"],"interval":10,"count":3},"recovery":{"actions":["restart","reboot","replace"],"grace_period":30}}`)},
	}, func(raw json.RawMessage) (any, error) {
		var h HealthSpec
		if err := decodeProps(raw, &h); err != nil {
			return nil, err
		}
		return &h, h.normalize()
	})
}

func (h *HealthSpec) normalize() error {
	d, r := &h.Detection, &h.Recovery
	if len(d.Modes) == 0 {
		d.Modes = slices.Clone(allModes)
	}
	for i, m := range d.Modes {
		if !slices.Contains(allModes, m) {
			return errs.Invalidf(fmt.Sprintf("detection.modes[%d]", i), "unknown mode %q (known: %s)", m, strings.Join(allModes, ", "))
		}
	}
	if d.Interval == 0 {
		d.Interval = 10
	}
	if d.Count == 0 {
		d.Count = 3
	}
	if d.Interval < 1 || d.Interval > 3600 {
		return errs.Invalidf("detection.interval", "must be from 1 to 3600 seconds, got %d", d.Interval)
	}
	if d.Count < 1 || d.Count > 1000 {
		return errs.Invalidf("detection.count", "must be from 1 to 1000, got %d", d.Count)
	}
	if len(r.Actions) == 0 {
		r.Actions = slices.Clone(allSteps)
	}
	last := -1
	for i, a := range r.Actions {
		at := slices.Index(allSteps, a)
		if at < 0 {
			return errs.Invalidf(fmt.Sprintf("recovery.actions[%d]", i), "unknown step %q (known: %s)", a, strings.Join(allSteps, ", "))
		}
		if at <= last {
			return errs.Invalidf(fmt.Sprintf("recovery.actions[%d]", i), "%q out of order or repeated: steps escalate restart, reboot, replace", a)
		}
		last = at
	}
	if r.GracePeriod == 0 {
		r.GracePeriod = 30
	}
	if r.GracePeriod < 0 || r.GracePeriod > 3600 {
		return errs.Invalidf("recovery.grace_period", "must be from 0 to 3600 seconds, got %d", r.GracePeriod)
	}
	if r.StepTimeout == 0 {
		r.StepTimeout = 300
	}
	if r.StepTimeout < 1 || r.StepTimeout > 86400 {
		return errs.Invalidf("recovery.step_timeout", "must be from 1 to 86400 seconds, got %d", r.StepTimeout)
	}
	if r.MaxConcurrent == 0 {
		r.MaxConcurrent = 1
	}
	if r.MaxConcurrent < 1 {
		return errs.Invalidf("recovery.max_concurrent", "must be at least 1, got %d", r.MaxConcurrent)
	}
	if r.RetryInterval == 0 {
		r.RetryInterval = 600
	}
	if r.RetryInterval < 0 {
		return errs.Invalidf("recovery.retry_interval", "must not be negative")
	}
	for i, s := range r.WindowSteps {
		if s != StepReboot && s != StepReplace {
			return errs.Invalidf(fmt.Sprintf("recovery.window_steps[%d]", i), "%q: only reboot and replace may wait for a window", s)
		}
	}
	return nil
}

// Silence is how long a node may be silent before it has failed.
func (h *HealthSpec) Silence() time.Duration {
	return time.Duration(h.Detection.Interval*h.Detection.Count) * time.Second
}

// Grace is the wait after a recovery step before judging it.
func (h *HealthSpec) Grace() time.Duration {
	return time.Duration(h.Recovery.GracePeriod) * time.Second
}

// Observation is what the checker knows of a node.
type Observation struct {
	Status   string            // node status
	Error    string            // node error, if any
	LastSeen time.Time         // last heartbeat (zero: never)
	Services map[string]string // service -> running|stopped|failed
	HostDown bool              // the node's compute node is known to be down
}

// Failure is why a node is considered failed.
type Failure struct {
	Mode   string `json:"mode"` // a Detect* constant
	Reason string `json:"reason"`
}

// Watched reports whether a node in this status is subject to health checks: nodes
// being created, deleted or replaced belong to the workflow doing so.
func Watched(status string) bool {
	switch status {
	case model.NodeActive, model.NodeUnreachable, model.NodeFailed, model.NodeMaintenance:
		return true
	}
	return false
}

// Detect decides whether a node has failed. floor is the shortest silence the checker
// trusts (its stale threshold: lease renewals may be that far apart).
func (h *HealthSpec) Detect(now time.Time, o Observation, floor time.Duration) (Failure, bool) {
	if !Watched(o.Status) {
		return Failure{}, false
	}
	on := func(m string) bool { return slices.Contains(h.Detection.Modes, m) }
	if on(DetectHost) && o.HostDown {
		return Failure{Mode: DetectHost, Reason: "its compute node is down"}, true
	}
	if on(DetectHeartbeat) && !o.LastSeen.IsZero() {
		limit := max(h.Silence(), floor)
		if silent := now.Sub(o.LastSeen); silent >= limit {
			return Failure{Mode: DetectHeartbeat, Reason: fmt.Sprintf("no heartbeat for %s (since %s)", silent.Round(time.Second), o.LastSeen.UTC().Format(time.RFC3339))}, true
		}
	}
	if on(DetectStatus) && o.Status == model.NodeFailed {
		why := "the node is FAILED"
		if o.Error != "" {
			why += ": " + o.Error
		}
		return Failure{Mode: DetectStatus, Reason: why}, true
	}
	if on(DetectService) && o.Status != model.NodeMaintenance {
		var bad []string
		check := func(name, st string) {
			if st == "failed" || st == "stopped" {
				bad = append(bad, name+" "+st)
			}
		}
		if len(h.Detection.Services) > 0 {
			for _, s := range h.Detection.Services {
				if st, ok := o.Services[s]; ok {
					check(s, st)
				}
			}
		} else {
			for s, st := range o.Services {
				check(s, st)
			}
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			return Failure{Mode: DetectService, Reason: "service " + strings.Join(bad, ", ")}, true
		}
	}
	return Failure{}, false
}

// Steps is the escalation for a failure: the policy's steps, without those that cannot
// work (restart needs a live agent; restart and reboot need the host).
func (h *HealthSpec) Steps(f Failure) []string {
	var out []string
	for _, s := range h.Recovery.Actions {
		switch {
		case s == StepRestart && (f.Mode == DetectHeartbeat || f.Mode == DetectHost):
			continue
		case s == StepReboot && f.Mode == DetectHost:
			continue
		}
		out = append(out, s)
	}
	if len(out) == 0 && slices.Contains(h.Recovery.Actions, StepReplace) {
		out = []string{StepReplace}
	}
	return out
}

// WaitsForWindow reports whether a step waits for a maintenance window.
func (h *HealthSpec) WaitsForWindow(step string) bool {
	return step != StepRestart && slices.Contains(h.Recovery.WindowSteps, step)
}

// MaxConcurrent is how many nodes of a component may be recovered (or otherwise taken
// down by straas) at once: one for a component that keeps a quorum.
func MaxConcurrent(quorum bool, configured int) int {
	if quorum || configured < 1 {
		return 1
	}
	return configured
}
