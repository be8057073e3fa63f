package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/straas/straas/shared/errs"
)

// Scaling directions (also the receiver actions).
const (
	ScaleOut = "scale_out"
	ScaleIn  = "scale_in"
)

// Adjustment types (Senlin's).
const (
	ChangeInCapacity   = "CHANGE_IN_CAPACITY"
	ExactCapacity      = "EXACT_CAPACITY"
	ChangeInPercentage = "CHANGE_IN_PERCENTAGE"
)

// Load states of a component (seed 001: the state variable autoscaling-off tracks).
const (
	LoadNormal    = "normal"
	LoadOverload  = "overload"
	LoadUnderload = "underload"
)

// ScalingSpec is the properties of straas.policy.scaling-1.0.
type ScalingSpec struct {
	MinSize  int         `json:"min_size"`
	MaxSize  int         `json:"max_size"`
	Role     string      `json:"role,omitempty"`     // the role that scales (multi-role components)
	Cooldown *int        `json:"cooldown,omitempty"` // seconds after a scaling before the next
	Period   int         `json:"period,omitempty"`   // seconds per metric evaluation interval
	ScaleOut *Adjustment `json:"scale_out,omitempty"`
	ScaleIn  *Adjustment `json:"scale_in,omitempty"`
	Triggers []Trigger   `json:"triggers,omitempty"`
}

// Adjustment says by how much one scaling changes the size.
type Adjustment struct {
	Type       string  `json:"type,omitempty"`
	Number     float64 `json:"number,omitempty"`
	MinStep    int     `json:"min_step,omitempty"`
	BestEffort *bool   `json:"best_effort,omitempty"`
}

// Trigger is a metric threshold on the component's nodes' heartbeat metrics.
type Trigger struct {
	Metric     string  `json:"metric"`
	Statistic  string  `json:"statistic,omitempty"`  // avg, max, min
	Comparison string  `json:"comparison,omitempty"` // gt, ge, lt, le
	Threshold  float64 `json:"threshold"`
	Intervals  int     `json:"intervals,omitempty"` // consecutive periods the condition holds
	Action     string  `json:"action"`              // scale_out, scale_in
}

func init() {
	register(TypeDoc{
		Type: TypeScaling, Version: "1.0",
		Summary: "Keep a component between min_size and max_size, scaling on receivers and metric thresholds.",
		Doc: "A scaling is triggered by a receiver (POST /receivers, action scale_out or scale_in) or by a trigger: a " +
			"threshold on a heartbeat metric of the component's ACTIVE nodes (avg, max or min of cpu, mem, disk or an " +
			"app-specific metric) holding for `intervals` consecutive evaluation periods of `period` seconds. The size " +
			"changes by the adjustment of the direction (Senlin's CHANGE_IN_CAPACITY, EXACT_CAPACITY, CHANGE_IN_PERCENTAGE " +
			"with min_step), never outside [min_size, max_size]: with best_effort the change is clipped to the bound, " +
			"otherwise it is refused. After a scaling, nothing scales for `cooldown` seconds. Scale out runs the flexup " +
			"workflow, scale in the flexdown workflow on victims chosen by the component's deletion policy. With autoscaling " +
			"off the metrics are still evaluated: the component's load state (normal, overload, underload) is tracked and " +
			"every change is an event, but nothing scales.",
		Singleton: true,
		Properties: []Property{
			{Name: "min_size", Type: "integer", Required: true, Constraints: ">= 0 and >= the type's minimum", Doc: "smallest size"},
			{Name: "max_size", Type: "integer", Required: true, Constraints: ">= min_size", Doc: "largest size"},
			{Name: "role", Type: "string", Doc: "the role whose nodes are added or removed (required for multi-role components)"},
			{Name: "cooldown", Type: "integer", Default: 60, Constraints: ">= 0", Doc: "seconds after a scaling during which no other starts"},
			{Name: "period", Type: "integer", Default: 10, Constraints: ">= 1", Doc: "seconds per evaluation interval of triggers"},
			{Name: "scale_out.type", Type: "string", Default: ChangeInCapacity, Constraints: "CHANGE_IN_CAPACITY, EXACT_CAPACITY, CHANGE_IN_PERCENTAGE", Doc: "how number is read"},
			{Name: "scale_out.number", Type: "number", Default: 1, Constraints: "> 0", Doc: "nodes (or percent) to add; the target size for EXACT_CAPACITY"},
			{Name: "scale_out.min_step", Type: "integer", Default: 1, Doc: "a percentage adjustment adds at least this many nodes"},
			{Name: "scale_out.best_effort", Type: "boolean", Default: true, Doc: "clip to max_size instead of refusing"},
			{Name: "scale_in.*", Type: "map", Doc: "the same for removing nodes (bounded by min_size)"},
			{Name: "triggers[].metric", Type: "string", Required: true, Doc: "heartbeat metric, e.g. cpu (percent)"},
			{Name: "triggers[].statistic", Type: "string", Default: "avg", Constraints: "avg, max, min", Doc: "how node values are combined"},
			{Name: "triggers[].comparison", Type: "string", Default: "gt", Constraints: "gt, ge, lt, le", Doc: "how the value is compared with threshold"},
			{Name: "triggers[].threshold", Type: "number", Required: true, Doc: "the threshold"},
			{Name: "triggers[].intervals", Type: "integer", Default: 3, Constraints: ">= 1", Doc: "consecutive periods the condition must hold"},
			{Name: "triggers[].action", Type: "string", Required: true, Constraints: "scale_out, scale_in", Doc: "what the trigger does"},
		},
		Example: Spec{Properties: json.RawMessage(`{"min_size":3,"max_size":9,"cooldown":60,"period":10,"scale_out":{"type":"CHANGE_IN_CAPACITY","number":1},"scale_in":{"type":"CHANGE_IN_CAPACITY","number":1},"triggers":[{"metric":"cpu","comparison":"gt","threshold":80,"intervals":3,"action":"scale_out"},{"metric":"cpu","comparison":"lt","threshold":20,"intervals":6,"action":"scale_in"}]}`)},
	}, func(raw json.RawMessage) (any, error) {
		var s ScalingSpec
		if err := decodeProps(raw, &s); err != nil {
			return nil, err
		}
		return &s, s.normalize()
	})
}

func (s *ScalingSpec) normalize() error {
	if s.MinSize < 0 {
		return errs.Invalidf("min_size", "must not be negative")
	}
	if s.MaxSize < 1 || s.MaxSize > 10000 {
		return errs.Invalidf("max_size", "must be from 1 to 10000, got %d", s.MaxSize)
	}
	if s.MaxSize < s.MinSize {
		return errs.Invalidf("max_size", "%d is below min_size %d", s.MaxSize, s.MinSize)
	}
	if s.Cooldown == nil {
		c := 60
		s.Cooldown = &c
	}
	if *s.Cooldown < 0 {
		return errs.Invalidf("cooldown", "must not be negative")
	}
	if s.Period == 0 {
		s.Period = 10
	}
	if s.Period < 1 || s.Period > 86400 {
		return errs.Invalidf("period", "must be from 1 to 86400 seconds, got %d", s.Period)
	}
	for dir, a := range map[string]**Adjustment{"scale_out": &s.ScaleOut, "scale_in": &s.ScaleIn} {
		if *a == nil {
			*a = &Adjustment{}
		}
		if err := (*a).normalize(); err != nil {
			return prefixField(dir, err)
		}
	}
	for i := range s.Triggers {
		if err := s.Triggers[i].normalize(); err != nil {
			return prefixField(fmt.Sprintf("triggers[%d]", i), err)
		}
	}
	return nil
}

func (a *Adjustment) normalize() error {
	if a.Type == "" {
		a.Type = ChangeInCapacity
	}
	switch a.Type {
	case ChangeInCapacity, ExactCapacity, ChangeInPercentage:
	default:
		return errs.Invalidf("type", "unknown adjustment type %q (known: %s, %s, %s)", a.Type, ChangeInCapacity, ExactCapacity, ChangeInPercentage)
	}
	if a.Number == 0 && a.Type != ExactCapacity {
		a.Number = 1
	}
	if a.Number < 0 || (a.Type != ChangeInPercentage && a.Number != math.Trunc(a.Number)) {
		return errs.Invalidf("number", "must be a non-negative whole number (a percentage may be fractional), got %v", a.Number)
	}
	if a.MinStep == 0 {
		a.MinStep = 1
	}
	if a.MinStep < 1 {
		return errs.Invalidf("min_step", "must be at least 1")
	}
	if a.BestEffort == nil {
		t := true
		a.BestEffort = &t
	}
	return nil
}

var (
	statistics  = []string{"avg", "max", "min"}
	comparisons = []string{"gt", "ge", "lt", "le"}
)

func (t *Trigger) normalize() error {
	if t.Metric == "" {
		return errs.Invalidf("metric", "required (e.g. cpu)")
	}
	if t.Statistic == "" {
		t.Statistic = "avg"
	}
	if !slices.Contains(statistics, t.Statistic) {
		return errs.Invalidf("statistic", "unknown %q (known: %s)", t.Statistic, strings.Join(statistics, ", "))
	}
	if t.Comparison == "" {
		t.Comparison = "gt"
	}
	if !slices.Contains(comparisons, t.Comparison) {
		return errs.Invalidf("comparison", "unknown %q (known: %s)", t.Comparison, strings.Join(comparisons, ", "))
	}
	if t.Intervals == 0 {
		t.Intervals = 3
	}
	if t.Intervals < 1 || t.Intervals > 1000 {
		return errs.Invalidf("intervals", "must be from 1 to 1000, got %d", t.Intervals)
	}
	if t.Action != ScaleOut && t.Action != ScaleIn {
		return errs.Invalidf("action", "must be scale_out or scale_in, got %q", t.Action)
	}
	return nil
}

// CooldownDuration is the cooldown as a duration.
func (s *ScalingSpec) CooldownDuration() time.Duration {
	if s == nil || s.Cooldown == nil {
		return 0
	}
	return time.Duration(*s.Cooldown) * time.Second
}

// PeriodDuration is the evaluation period as a duration.
func (s *ScalingSpec) PeriodDuration() time.Duration { return time.Duration(s.Period) * time.Second }

// Bounds are the sizes a component may have.
type Bounds struct {
	Min, Max int // Max 0: unbounded
}

// Bounds of the spec (nil spec: at least min, unbounded).
func (s *ScalingSpec) Bounds(typeMin int) Bounds {
	if s == nil {
		return Bounds{Min: max(typeMin, 1)}
	}
	return Bounds{Min: max(s.MinSize, typeMin), Max: s.MaxSize}
}

// Decision is a scaling's outcome: how many nodes to add (Count > 0) or remove.
type Decision struct {
	Direction string `json:"direction"`
	Current   int    `json:"current"`
	Target    int    `json:"target"`
	Count     int    `json:"count"` // nodes to add or remove (>= 0)
	Clipped   bool   `json:"clipped,omitempty"`
	Reason    string `json:"reason"`
}

// Decide computes a scaling of a component of current size in direction dir. count > 0
// overrides the adjustment (a receiver's params). Refusals are errs.Conflict (at a bound
// without best effort) or errs.Invalid.
func (s *ScalingSpec) Decide(dir string, current, count, typeMin int) (Decision, error) {
	d := Decision{Direction: dir, Current: current}
	var adj *Adjustment
	switch dir {
	case ScaleOut:
		if s != nil {
			adj = s.ScaleOut
		}
	case ScaleIn:
		if s != nil {
			adj = s.ScaleIn
		}
	default:
		return d, errs.Invalidf("action", "must be scale_out or scale_in, got %q", dir)
	}
	if adj == nil {
		adj = &Adjustment{}
		_ = adj.normalize()
	}
	n := count
	how := fmt.Sprintf("count %d", count)
	if n <= 0 {
		switch adj.Type {
		case ExactCapacity:
			n = int(adj.Number) - current
			if dir == ScaleIn {
				n = current - int(adj.Number)
			}
			how = fmt.Sprintf("exact capacity %d", int(adj.Number))
		case ChangeInPercentage:
			n = int(adj.Number * float64(current) / 100)
			n = max(n, adj.MinStep)
			how = fmt.Sprintf("%g%% of %d (at least %d)", adj.Number, current, adj.MinStep)
		default:
			n = int(adj.Number)
			how = fmt.Sprintf("change in capacity %d", n)
		}
	}
	if n <= 0 {
		return d, errs.Conflictf("%s: nothing to do (%s, size %d)", dir, how, current)
	}
	b := s.Bounds(typeMin)
	target := current + n
	if dir == ScaleIn {
		target = current - n
	}
	bestEffort := adj.BestEffort == nil || *adj.BestEffort
	switch {
	case dir == ScaleOut && b.Max > 0 && target > b.Max:
		if !bestEffort || current >= b.Max {
			return d, errs.Conflictf("scale out to %d refused: max_size is %d (size %d)", target, b.Max, current)
		}
		target, d.Clipped = b.Max, true
	case dir == ScaleIn && target < b.Min:
		if !bestEffort || current <= b.Min {
			return d, errs.Conflictf("scale in to %d refused: min_size is %d (size %d)", target, b.Min, current)
		}
		target, d.Clipped = b.Min, true
	}
	d.Target = target
	d.Count = target - current
	if d.Count < 0 {
		d.Count = -d.Count
	}
	d.Reason = fmt.Sprintf("%s from %d to %d (%s", dir, current, target, how)
	if d.Clipped {
		d.Reason += ", clipped to the bound"
	}
	d.Reason += ")"
	return d, nil
}

// InCooldown reports whether a scaling at last keeps the next one off until some time.
func (s *ScalingSpec) InCooldown(now time.Time, last *time.Time) (time.Time, bool) {
	if last == nil {
		return time.Time{}, false
	}
	until := last.Add(s.CooldownDuration())
	return until, now.Before(until)
}

// Key names a trigger in breach counters.
func (t Trigger) Key() string {
	return fmt.Sprintf("%s:%s:%s:%s:%g", t.Action, t.Metric, t.Statistic, t.Comparison, t.Threshold)
}

// Value combines the nodes' values of the trigger's metric; ok is false without data.
func (t Trigger) Value(values []float64) (float64, bool) {
	if len(values) == 0 {
		return 0, false
	}
	v := values[0]
	sum := 0.0
	for _, x := range values {
		sum += x
		switch t.Statistic {
		case "max":
			v = math.Max(v, x)
		case "min":
			v = math.Min(v, x)
		}
	}
	if t.Statistic == "avg" || t.Statistic == "" {
		v = sum / float64(len(values))
	}
	return v, true
}

// Holds reports whether the condition holds for v.
func (t Trigger) Holds(v float64) bool {
	switch t.Comparison {
	case "ge":
		return v >= t.Threshold
	case "lt":
		return v < t.Threshold
	case "le":
		return v <= t.Threshold
	default:
		return v > t.Threshold
	}
}

// Describe is a trigger in words, e.g. "avg cpu > 80 for 3 intervals".
func (t Trigger) Describe() string {
	op := map[string]string{"gt": ">", "ge": ">=", "lt": "<", "le": "<="}[t.Comparison]
	if op == "" {
		op = ">"
	}
	return fmt.Sprintf("%s %s %s %g for %d intervals", t.Statistic, t.Metric, op, t.Threshold, t.Intervals)
}

// Evaluation is one interval's result.
type Evaluation struct {
	Breaches map[string]int     // consecutive intervals each trigger held (by Key)
	Values   map[string]float64 // the trigger values seen (by Key)
	Load     string             // normal, overload, underload
	Fire     *Trigger           // a trigger that reached its intervals (scale_out first)
}

// Evaluate runs the triggers over one interval's samples (metric -> values of the ACTIVE
// nodes), continuing the breach counts of prev.
func (s *ScalingSpec) Evaluate(prev map[string]int, samples map[string][]float64) Evaluation {
	ev := Evaluation{Breaches: map[string]int{}, Values: map[string]float64{}, Load: LoadNormal}
	var out, in *Trigger
	noData := false
	for i := range s.Triggers {
		t := s.Triggers[i]
		k := t.Key()
		v, ok := t.Value(samples[t.Metric])
		if ok {
			ev.Values[k] = v
			if t.Holds(v) {
				ev.Breaches[k] = prev[k] + 1
			}
		} else {
			ev.Breaches[k] = prev[k] // no data: the state stays where it was
		}
		if ev.Breaches[k] >= t.Intervals {
			tt := t
			switch {
			case t.Action == ScaleOut && out == nil:
				out = &tt
			case t.Action == ScaleIn && in == nil:
				in = &tt
			}
		}
		if !ok {
			noData = true
		}
	}
	switch {
	case out != nil:
		ev.Load, ev.Fire = LoadOverload, out
	case in != nil:
		ev.Load, ev.Fire = LoadUnderload, in
	}
	if noData && ev.Fire != nil {
		if _, seen := ev.Values[ev.Fire.Key()]; !seen {
			ev.Fire = nil // nothing new was measured: no action on stale data
		}
	}
	return ev
}

// Metrics lists the metrics the triggers read, sorted.
func (s *ScalingSpec) Metrics() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range s.Triggers {
		if !seen[t.Metric] {
			seen[t.Metric] = true
			out = append(out, t.Metric)
		}
	}
	sort.Strings(out)
	return out
}
