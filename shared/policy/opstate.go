package policy

import (
	"fmt"
	"slices"

	"github.com/straas/straas/shared/errs"
)

// Levels an operational state is set on.
const (
	LevelTopology  = "topology"
	LevelComponent = "component"
	LevelNode      = "node"
)

// Values of the operational state commands (seed 001).
const (
	On           = "on"
	Off          = "off"
	MaintRestart = "restart"
	MaintReplace = "replace"
)

// Fields of an operational state.
const (
	FieldAutoscaling = "autoscaling"
	FieldAutohealing = "autohealing"
	FieldMaintenance = "maintenance"
)

// Fields lists the fields in a stable order.
var Fields = []string{FieldAutoscaling, FieldAutohealing, FieldMaintenance}

// Settings are the values set on one level; "" means not set here (inherited).
type Settings struct {
	Autoscaling string `json:"autoscaling,omitempty"`
	Autohealing string `json:"autohealing,omitempty"`
	Maintenance string `json:"maintenance,omitempty"`
}

// Get returns a field's value.
func (s Settings) Get(f string) string {
	switch f {
	case FieldAutoscaling:
		return s.Autoscaling
	case FieldAutohealing:
		return s.Autohealing
	case FieldMaintenance:
		return s.Maintenance
	}
	return ""
}

// Set sets a field's value.
func (s *Settings) Set(f, v string) {
	switch f {
	case FieldAutoscaling:
		s.Autoscaling = v
	case FieldAutohealing:
		s.Autohealing = v
	case FieldMaintenance:
		s.Maintenance = v
	}
}

// Empty reports whether nothing is set.
func (s Settings) Empty() bool { return s == Settings{} }

// Defaults is the state of anything nobody set: today's behaviour (seed 001).
var Defaults = Settings{Autoscaling: On, Autohealing: On, Maintenance: Off}

// Validate checks the values of a command; field names are prefixed with at.
func (s Settings) Validate(at string) error {
	for _, f := range Fields {
		v := s.Get(f)
		if v == "" {
			continue
		}
		allowed := []string{On, Off}
		if f == FieldMaintenance {
			allowed = []string{Off, MaintRestart, MaintReplace}
		}
		if !slices.Contains(allowed, v) {
			return errs.Invalidf(at+f, "must be one of %v, got %q", allowed, v)
		}
	}
	return nil
}

// LevelState is what is stored for one level: its own settings and which of them were
// set with propagate (a topology's reach its components only then).
type LevelState struct {
	Own        Settings `json:"own"`
	Propagated []string `json:"propagated,omitempty"` // fields set with propagate: true
}

// propagates reports whether field f of this level reaches the level below.
func (l LevelState) propagates(f string) bool { return slices.Contains(l.Propagated, f) }

// Resolve computes effective states down a branch (seed 001, Q&A 2):
//
//   - a node follows its own setting, else its component's effective state: a
//     component's state applies to all its current and future nodes;
//   - a component follows its own setting, else its topology's when that was set with
//     propagate, else the default;
//   - a topology's own setting is its effective state; it reaches its components only
//     with propagate (the default, "this level only", leaves them alone).
//
// Pass nil for the levels below the one wanted.
func Resolve(topology, component, node *LevelState) Settings {
	var out Settings
	for _, f := range Fields {
		v := Defaults.Get(f)
		if topology != nil && topology.Own.Get(f) != "" && (component == nil || topology.propagates(f)) {
			v = topology.Own.Get(f)
		}
		if component != nil && component.Own.Get(f) != "" {
			v = component.Own.Get(f)
		}
		if node != nil && node.Own.Get(f) != "" {
			v = node.Own.Get(f)
		}
		out.Set(f, v)
	}
	return out
}

// Command is a PUT of an operational state.
type Command struct {
	Settings
	Propagate bool `json:"propagate,omitempty"`
}

// Apply changes a level's stored state by cmd. It returns the fields it changed.
func (l *LevelState) Apply(cmd Command) []string {
	var changed []string
	for _, f := range Fields {
		v := cmd.Get(f)
		if v == "" {
			continue
		}
		was := l.Own.Get(f)
		wasProp := l.propagates(f)
		l.Own.Set(f, v)
		l.Propagated = slices.DeleteFunc(l.Propagated, func(x string) bool { return x == f })
		if cmd.Propagate {
			l.Propagated = append(l.Propagated, f)
		}
		if was != v || wasProp != cmd.Propagate {
			changed = append(changed, f)
		}
	}
	slices.Sort(l.Propagated)
	return changed
}

// Clear removes fields from a level's own settings (a propagated command overrides what
// levels below had set).
func (l *LevelState) Clear(fields []string) bool {
	changed := false
	for _, f := range fields {
		if l.Own.Get(f) != "" {
			l.Own.Set(f, "")
			changed = true
		}
		l.Propagated = slices.DeleteFunc(l.Propagated, func(x string) bool { return x == f })
	}
	return changed
}

// Describe is a command in words, e.g. "autohealing off, maintenance restart (propagated)".
func (c Command) Describe() string {
	out := ""
	for _, f := range Fields {
		if v := c.Get(f); v != "" {
			if out != "" {
				out += ", "
			}
			out += fmt.Sprintf("%s %s", f, v)
		}
	}
	if c.Propagate {
		out += " (propagated)"
	}
	return out
}

// HealingAllowed reports whether failures of a node in this effective state are acted on:
// not with autohealing off, and not while maintenance is in effect (seed 001: maintenance
// is autohealing off plus a flag).
func HealingAllowed(eff Settings, inMaintenance bool) (bool, string) {
	switch {
	case inMaintenance:
		return false, "the node is in maintenance"
	case eff.Maintenance != Off && eff.Maintenance != "":
		return false, "maintenance " + eff.Maintenance + " is in effect"
	case eff.Autohealing == Off:
		return false, "autohealing is off"
	}
	return true, ""
}

// ScalingAllowed reports whether a component in this effective state may scale.
func ScalingAllowed(eff Settings) (bool, string) {
	if eff.Autoscaling == Off {
		return false, "autoscaling is off"
	}
	return true, ""
}
