package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// result is one measured figure, as results.json holds it.
type result struct {
	Scenario string  `json:"scenario"`
	Size     int     `json:"size"`
	Metric   string  `json:"metric"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
}

// unavailable is a scenario that could not be measured, and why.
type unavailable struct {
	Scenario string `json:"scenario"`
	Reason   string `json:"reason"`
}

type jobError struct {
	Job   string `json:"job"`
	Error string `json:"error"`
}

// resultsFile is bench/results.json.
type resultsFile struct {
	Machine     machine           `json:"machine"`
	Quick       bool              `json:"quick"`
	Started     string            `json:"started"`
	DurationS   float64           `json:"duration_s"`
	Results     []result          `json:"results"`
	Setup       map[string]string `json:"setup,omitempty"`
	Unavailable []unavailable     `json:"unavailable,omitempty"`
	Errors      []jobError        `json:"errors,omitempty"`
}

// report is what a job measured (a child writes it as JSON for the parent).
type report struct {
	Setups      map[string]string `json:"setups,omitempty"` // scenario id -> setup text
	Results     []result          `json:"results"`
	Notes       []string          `json:"notes,omitempty"` // printed under the table
	Unavailable []unavailable     `json:"unavailable,omitempty"`
	Error       string            `json:"error,omitempty"`
}

// add records a figure of scenario id (a number) at size.
func (r *report) add(id string, size int, metric string, value float64, unit string) {
	if math.IsNaN(value) || math.IsInf(value, 0) {
		return
	}
	r.Results = append(r.Results, result{Scenario: scenarioKey(id), Size: size, Metric: metric, Value: value, Unit: unit})
}

func (r *report) setup(id, format string, args ...any) {
	if r.Setups == nil {
		r.Setups = map[string]string{}
	}
	r.Setups[id] = fmt.Sprintf(format, args...)
}

func (r *report) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func (r *report) unavailable(id, format string, args ...any) {
	r.Unavailable = append(r.Unavailable, unavailable{Scenario: scenarioKey(id), Reason: fmt.Sprintf(format, args...)})
}

func (r *report) setupOf(id string) string { return r.Setups[id] }

// merge joins the reports of one job's sizes.
func merge(reps []*report) *report {
	out := &report{Setups: map[string]string{}}
	var errs []string
	for _, r := range reps {
		for k, v := range r.Setups {
			out.Setups[k] = v
		}
		out.Results = append(out.Results, r.Results...)
		out.Notes = append(out.Notes, r.Notes...)
		out.Unavailable = append(out.Unavailable, r.Unavailable...)
		if r.Error != "" {
			errs = append(errs, r.Error)
		}
	}
	out.Error = strings.Join(errs, "; ")
	return out
}

// scenarioInfo describes a scenario of the issue and its goal in DESIGN §11.
type scenarioInfo struct {
	key   string
	title string
	goal  string
}

var scenarios = map[string]scenarioInfo{
	"1": {"1_fleet_memory", "mock fleet memory per node",
		"10,000 VMs with agents + 2,000 CNs in one process ≤ 1 GiB RSS, ≤ 100 KB per node [kubemark: 220 MB per hollow node; mockcloud: 2,000 agents]"},
	"2": {"2_fleet_boot", "mock fleet boot to the first stored heartbeat",
		"10,000 nodes booted with a first heartbeat stored in ≤ 30 s [KWOK CI: 2,000 nodes in 120 s on 4 CPUs]"},
	"3": {"3_heartbeat_ingest", "heartbeat ingest through the conductor (embedded)",
		"≥ 5,000/s sustained, p99 receive-to-stored ≤ 50 ms, no false stale flag [mockcloud ~400/s; Kubernetes leases 500/s at 5,000 nodes; Nomad 50/s default]"},
	"3b": {"3b_lease_writes", "heartbeat cost on DynamoDB: lease writes of the real conductor",
		"≤ 170 writes/s for 10,000 nodes: renewals at most once a minute per node plus status changes [Kubernetes KEP-589 lease/status split]"},
	"4": {"4_interpreter", "embedded interpreter: durable (checkpointed) state transitions",
		"≥ 20,000 transitions/s on 2 cores, p50 ≤ 1 ms per transition [Step Functions Standard refill 1,500/s; Temporal ~1,000/s per pod]"},
	"5": {"5_topology_create", "topology create through the API on the mock fleet (real creation workflow)",
		"10-node ACTIVE ≤ 2 s, 1,000-node ≤ 60 s; ≤ 25,000 history events per execution at 1,000 nodes [Heat/Magnum at CERN ~10 min for 1,000 nodes; Heat 1,000-node stack 47,008 events; Standard's cap 25,000]"},
	"6": {"6_replace_config", "node replacement and config change of a 100-node component",
		"replacement ≤ 5 s, config change of a 100-node component ≤ 2 s [StraaS: 5 min, 2 min]"},
	"7": {"7_api_latency", "API latency, 50 concurrent clients",
		"no §11 figure: watched for regressions (list, show, create)"},
	"8": {"8_aws_ratio", "store and queue paths: AWS adapters on moto vs the embedded adapters",
		"no §11 figure: how much slower the same port calls are through DynamoDB/SQS (moto, local)"},
	"9": {"9_idle_cpu", "idle CPU of `straas up` with its nodes heartbeating",
		"no §11 figure: an idle fleet should cost little (push-fed agents, heartbeats every 10 s)"},
}

func scenarioKey(id string) string {
	if s, ok := scenarios[id]; ok {
		return s.key
	}
	return id
}

// printJob prints each of the job's scenarios: goal, setup, a table of sizes by metrics
// and how the figures grow with size.
func printJob(w io.Writer, j *job, r *report) {
	for _, id := range j.scenarios {
		info := scenarios[id]
		fmt.Fprintf(w, "\n== %s. %s\n   goal:  %s\n", id, info.title, info.goal)
		if s := r.Setups[id]; s != "" {
			fmt.Fprintf(w, "   setup: %s\n", s)
		}
		for _, u := range r.Unavailable {
			if u.Scenario == info.key {
				fmt.Fprintf(w, "   NOT AVAILABLE: %s\n", u.Reason)
			}
		}
		printTable(w, info.key, r.Results)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "   note:  %s\n", n)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "   ERROR: %s\n", r.Error)
	}
}

func printTable(w io.Writer, key string, rs []result) {
	var metrics []string
	units := map[string]string{}
	sizes := map[int]bool{}
	val := map[string]map[int]float64{}
	for _, x := range rs {
		if x.Scenario != key {
			continue
		}
		if _, ok := units[x.Metric]; !ok {
			metrics = append(metrics, x.Metric)
			units[x.Metric] = x.Unit
			val[x.Metric] = map[int]float64{}
		}
		sizes[x.Size] = true
		val[x.Metric][x.Size] = x.Value
	}
	if len(metrics) == 0 {
		return
	}
	var ss []int
	for s := range sizes {
		ss = append(ss, s)
	}
	sort.Ints(ss)
	// One row per metric, one column per size, and how the metric grew from the
	// smallest size to the largest.
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"size:"}
	for _, sz := range ss {
		head = append(head, strconv.Itoa(sz))
	}
	first, last := ss[0], ss[len(ss)-1]
	if len(ss) > 1 {
		head = append(head, fmt.Sprintf("×%s size", human(float64(last)/float64(max(first, 1)))))
	}
	fmt.Fprintln(tw, "   "+strings.Join(head, "\t")+"\t")
	for _, m := range metrics {
		name := m
		if units[m] != "" {
			name = fmt.Sprintf("%s (%s)", m, units[m])
		}
		row := []string{name}
		for _, sz := range ss {
			if v, ok := val[m][sz]; ok {
				row = append(row, human(v))
			} else {
				row = append(row, "-")
			}
		}
		if len(ss) > 1 {
			a, okA := val[m][first]
			b, okB := val[m][last]
			if okA && okB && a != 0 {
				row = append(row, "×"+human(b/a))
			} else {
				row = append(row, "")
			}
		}
		fmt.Fprintln(tw, "   "+strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
}

// human prints a number with sensible precision.
func human(v float64) string {
	a := math.Abs(v)
	switch {
	case a == 0:
		return "0"
	case v == math.Trunc(v) && a < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1000:
		return strconv.FormatFloat(math.Round(v), 'f', -1, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// machine describes where the numbers were measured.
type machine struct {
	CPUs      int    `json:"cpus"`
	Memory    int64  `json:"memory"` // bytes
	Go        string `json:"go"`
	Commit    string `json:"commit"`
	CPUModel  string `json:"cpu_model,omitempty"`
	OS        string `json:"os"`
	LoadStart string `json:"load_average_start,omitempty"`
	LoadEnd   string `json:"load_average_end,omitempty"`
}

func machineInfo(root string) machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, LoadStart: loadAvg()}
	if raw, err := os.ReadFile("/proc/meminfo"); err == nil {
		if s := regexp.MustCompile(`MemTotal:\s+(\d+) kB`).FindSubmatch(raw); s != nil {
			kb, _ := strconv.ParseInt(string(s[1]), 10, 64)
			m.Memory = kb << 10
		}
	}
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if s := regexp.MustCompile(`model name\s*:\s*(.+)`).FindSubmatch(raw); s != nil {
			m.CPUModel = strings.TrimSpace(string(s[1]))
		}
	}
	m.Commit = "unknown"
	if out, err := exec.Command("git", "-C", root, "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		m.Commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
			m.Commit += "+changes"
		}
	}
	return m
}

func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
