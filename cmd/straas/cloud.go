package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/straas/straas/agent/dummy"
	"github.com/straas/straas/mockcn"
	"github.com/straas/straas/shared/client"
)

// cloudCmd is `straas cloud`: the mock cloud's admin API (mockcn/doc.go), for fault
// injection and capacity by hand.
func cloudCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cloud",
		Short: "Drive the mock cloud: compute nodes, faults, agent knobs, boot latency, stats",
		Long: `cloud talks to the mock cloud's admin API (/mockcn/v1) with your token, which must carry
the admin role (straas login as admin). The mock cloud is found at --cloud-url, $STRAAS_CLOUD_URL,
or the Keystone URL of your session without /identity/v3 (default http://127.0.0.1:8090).

A VM may be named by its server id, its server name or its straas node id.`,
		Example: `  straas cloud cn list
  straas cloud cn add --count 4 --az az2 --profile large
  straas cloud cn down cn-az1-0003
  straas cloud rack down az1-rack01 --az az1
  straas cloud vm crash demo-1-zk-2
  straas cloud agent silent demo-1-kafka-1
  straas cloud agent slow demo-1-kafka-1 --factor 20
  straas cloud install-failure --package kafka --version 0.10.2.1
  straas cloud boot-latency --min 2s --max 5s
  straas cloud stats`,
	}
	cmd.PersistentFlags().String("cloud-url", "", "mock cloud base URL (default: from the session, or http://127.0.0.1:8090)")
	cmd.AddCommand(cloudCNCmd(), cloudRackCmd(), cloudVMCmd(), cloudAgentCmd(), cloudKnobsCmd(), cloudInstallFailureCmd(),
		cloudBootLatencyCmd(), cloudStatsCmd())
	return cmd
}

// adminClient is a client of the mock cloud's admin API.
type adminClient struct{ c *client.Client }

func cloudClient(cmd *cobra.Command) (*adminClient, error) {
	s := loadSession()
	base, _ := cmd.Flags().GetString("cloud-url")
	if base == "" {
		base = os.Getenv("STRAAS_CLOUD_URL")
	}
	if base == "" && s.AuthURL != "" {
		base = strings.TrimSuffix(strings.TrimRight(s.AuthURL, "/"), "/identity/v3")
	}
	if base == "" {
		base = "http://127.0.0.1:8090"
	}
	token := os.Getenv("STRAAS_TOKEN")
	if token == "" {
		token = s.Token
		if token != "" && !s.ExpiresAt.IsZero() && time.Now().After(s.ExpiresAt) {
			return nil, fmt.Errorf("your token expired at %s: run `straas login`", s.ExpiresAt.Format(time.RFC3339))
		}
	}
	if token == "" {
		return nil, fmt.Errorf("not logged in: run `straas login` as admin (or set STRAAS_TOKEN)")
	}
	return &adminClient{c: client.New(base, token)}, nil
}

func (a *adminClient) do(ctx context.Context, method, path string, body, out any) error {
	_, err := a.c.Do(ctx, method, mockcn.AdminPrefix+path, body, out)
	return err
}

// vmID resolves a server id, server name or node id to a server id.
func (a *adminClient) vmID(ctx context.Context, ref string) (string, error) {
	var one struct {
		VM mockcn.VM `json:"vm"`
	}
	err := a.do(ctx, "GET", "/vms/"+url.PathEscape(ref), nil, &one)
	if err == nil {
		return one.VM.ID, nil
	}
	if ce := (*client.Error)(nil); !errors.As(err, &ce) || ce.Status != 404 {
		return "", err
	}
	var all struct {
		VMs []mockcn.VM `json:"vms"`
	}
	if err := a.do(ctx, "GET", "/vms", nil, &all); err != nil {
		return "", err
	}
	var found []string
	for _, v := range all.VMs {
		if v.Name == ref || v.NodeID == ref {
			found = append(found, v.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no VM with id, name or node id %q", ref)
	case 1:
		return found[0], nil
	default:
		return "", fmt.Errorf("%d VMs match %q: give a server id (%s)", len(found), ref, strings.Join(found, ", "))
	}
}

// --- compute nodes --------------------------------------------------------------------

// hardwareProfiles are named CN sizes for `cn add --profile`.
var hardwareProfiles = map[string]mockcn.Hardware{
	"small":   {CPUs: 8, RAMMB: 32 * 1024, DiskGB: 500},
	"default": mockcn.DefaultHardware,
	"large":   {CPUs: 64, RAMMB: 512 * 1024, DiskGB: 4000},
}

func profileNames() string {
	var ns []string
	for n, h := range hardwareProfiles {
		ns = append(ns, fmt.Sprintf("%s (%d CPUs, %d GiB, %d GB)", n, h.CPUs, h.RAMMB/1024, h.DiskGB))
	}
	sort.Strings(ns)
	return strings.Join(ns, ", ")
}

func cloudCNCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cn", Aliases: []string{"cns"}, Short: "List, add, remove compute nodes; take them down and up"}
	list := &cobra.Command{
		Use: "list", Short: "List compute nodes with their capacity, use and VMs", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := cloudClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				CNs []mockcn.CN `json:"cns"`
			}
			if err := a.do(cmd.Context(), "GET", "/cns", nil, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			printCNs(out.CNs)
			return nil
		},
	}
	show := &cobra.Command{
		Use: "show CN", Short: "Show a compute node (by id or hostname) with its VMs", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := cloudClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				CN mockcn.CN `json:"cn"`
			}
			if err := a.do(cmd.Context(), "GET", "/cns/"+url.PathEscape(args[0]), nil, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			printCNs([]mockcn.CN{out.CN})
			if len(out.CN.VMs) > 0 {
				fmt.Println()
				w := table("VM", "NAME", "STATUS", "NODE")
				for _, v := range out.CN.VMs {
					row(w, v.ID, v.Name, v.Status, v.NodeID)
				}
				return w.Flush()
			}
			return nil
		},
	}
	var spec mockcn.CNSpec
	var profile string
	add := &cobra.Command{
		Use: "add", Short: "Create compute nodes with a hardware profile", Args: cobra.NoArgs,
		Example: `  straas cloud cn add --count 10 --az az2
  straas cloud cn add --count 2 --az az1 --rack az1-rack09 --cpus 16 --ram-mb 65536 --disk-gb 1000`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if profile != "" {
				hw, ok := hardwareProfiles[profile]
				if !ok {
					return fmt.Errorf("--profile: no profile %q; have %s", profile, profileNames())
				}
				f := cmd.Flags()
				if !f.Changed("cpus") {
					spec.Hardware.CPUs = hw.CPUs
				}
				if !f.Changed("ram-mb") {
					spec.Hardware.RAMMB = hw.RAMMB
				}
				if !f.Changed("disk-gb") {
					spec.Hardware.DiskGB = hw.DiskGB
				}
			}
			a, err := cloudClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				CNs []mockcn.CN `json:"cns"`
			}
			if err := a.do(cmd.Context(), "POST", "/cns", spec, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			printCNs(out.CNs)
			return nil
		},
	}
	add.Flags().IntVar(&spec.Count, "count", 1, "how many")
	add.Flags().StringVar(&spec.AZ, "az", "", "availability zone (default: the cloud's first; a new name makes a new zone)")
	add.Flags().StringVar(&spec.Rack, "rack", "", "rack, the fault domain (default: spread over the zone's racks)")
	add.Flags().StringVar(&profile, "profile", "", "hardware profile: "+profileNames())
	add.Flags().IntVar(&spec.Hardware.CPUs, "cpus", 0, "CPU cores (default: the profile's, else the cloud's default)")
	add.Flags().IntVar(&spec.Hardware.RAMMB, "ram-mb", 0, "RAM in MiB")
	add.Flags().IntVar(&spec.Hardware.DiskGB, "disk-gb", 0, "disk in GB")

	var force bool
	remove := &cobra.Command{
		Use: "remove CN...", Aliases: []string{"rm", "delete"}, Short: "Delete compute nodes (with --force, and their VMs)", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := cloudClient(cmd)
			if err != nil {
				return err
			}
			for _, id := range args {
				if err := a.do(cmd.Context(), "DELETE", "/cns/"+url.PathEscape(id)+"?force="+fmt.Sprint(force), nil, nil); err != nil {
					return fmt.Errorf("%s: %w", id, err)
				}
				fmt.Printf("compute node %s removed\n", id)
			}
			return nil
		},
	}
	remove.Flags().BoolVar(&force, "force", false, "delete the CN's VMs too")
	cmd.AddCommand(list, show, add, remove, cnStateCmd("down"), cnStateCmd("up"))
	return cmd
}

func cnStateCmd(state string) *cobra.Command {
	short := "Take compute nodes down: their agents go silent, Nova shows the hypervisor down, nothing is placed there"
	if state == "up" {
		short = "Bring compute nodes back up"
	}
	return &cobra.Command{
		Use: state + " CN...", Short: short, Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := cloudClient(cmd)
			if err != nil {
				return err
			}
			for _, id := range args {
				if err := a.do(cmd.Context(), "POST", "/cns/"+url.PathEscape(id)+"/"+state, nil, nil); err != nil {
					return fmt.Errorf("%s: %w", id, err)
				}
				fmt.Printf("compute node %s is %s\n", id, state)
			}
			return nil
		},
	}
}

func printCNs(cns []mockcn.CN) {
	w := table("HOSTNAME", "AZ", "RACK", "STATE", "CPUS", "RAM GiB", "DISK GB", "VMS", "ID")
	for _, x := range cns {
		state := "up"
		if x.Down {
			state = "DOWN"
		}
		row(w, x.Hostname, x.AZ, x.Rack, state,
			fmt.Sprintf("%d/%d", x.Used.CPUs, x.Hardware.CPUs),
			fmt.Sprintf("%d/%d", x.Used.RAMMB/1024, x.Hardware.RAMMB/1024),
			fmt.Sprintf("%d/%d", x.Used.DiskGB, x.Hardware.DiskGB),
			len(x.VMs), x.ID)
	}
	_ = w.Flush()
}

func cloudRackCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rack", Short: "Take a whole rack (fault domain) down or up"}
	for _, state := range []string{"down", "up"} {
		var az string
		c := &cobra.Command{
			Use: state + " RACK", Short: "Take every compute node of a rack " + state, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				a, err := cloudClient(cmd)
				if err != nil {
					return err
				}
				var out struct {
					Changed int `json:"changed"`
				}
				path := "/racks/" + url.PathEscape(args[0]) + "/" + state
				if az != "" {
					path += "?az=" + url.QueryEscape(az)
				}
				if err := a.do(cmd.Context(), "POST", path, nil, &out); err != nil {
					return err
				}
				if jsonOutput(cmd) {
					return printJSON(out)
				}
				fmt.Printf("rack %s: %d compute nodes now %s\n", args[0], out.Changed, state)
				return nil
			},
		}
		c.Flags().StringVar(&az, "az", "", "the rack's availability zone (default: any zone with a rack of that name)")
		cmd.AddCommand(c)
	}
	return cmd
}

// --- VMs ------------------------------------------------------------------------------

func cloudVMCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "vm", Aliases: []string{"vms"}, Short: "List, show and crash VMs (servers)"}
	list := &cobra.Command{
		Use: "list", Short: "List every server with its CN, rack and agent state", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := cloudClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				VMs []mockcn.VM `json:"vms"`
			}
			if err := a.do(cmd.Context(), "GET", "/vms", nil, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			printVMs(out.VMs)
			return nil
		},
	}
	show := &cobra.Command{
		Use: "show VM", Short: "Show a server", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := cloudClient(cmd)
			if err != nil {
				return err
			}
			v, err := a.vm(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(map[string]any{"vm": v})
			}
			printVMs([]mockcn.VM{v})
			return nil
		},
	}
	var asError bool
	crash := &cobra.Command{
		Use: "crash VM...", Short: "Crash servers: SHUTOFF (or ERROR with --error), their agents stop; a reboot brings them back", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			status := mockcn.StatusShutoff
			if asError {
				status = mockcn.StatusError
			}
			return eachVM(cmd, args, func(a *adminClient, id string) (string, error) {
				return "crashed (" + status + ")", a.do(cmd.Context(), "POST", "/vms/"+url.PathEscape(id)+"/crash", map[string]string{"status": status}, nil)
			})
		},
	}
	crash.Flags().BoolVar(&asError, "error", false, "leave the server in ERROR with a fault instead of SHUTOFF")
	cmd.AddCommand(list, show, crash)
	return cmd
}

func (a *adminClient) vm(ctx context.Context, ref string) (mockcn.VM, error) {
	id, err := a.vmID(ctx, ref)
	if err != nil {
		return mockcn.VM{}, err
	}
	var out struct {
		VM mockcn.VM `json:"vm"`
	}
	err = a.do(ctx, "GET", "/vms/"+url.PathEscape(id), nil, &out)
	return out.VM, err
}

// eachVM resolves every argument to a server and applies fn, printing what it did.
func eachVM(cmd *cobra.Command, refs []string, fn func(a *adminClient, id string) (string, error)) error {
	a, err := cloudClient(cmd)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		id, err := a.vmID(cmd.Context(), ref)
		if err != nil {
			return err
		}
		what, err := fn(a, id)
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		fmt.Printf("%s (%s): %s\n", ref, id, what)
	}
	return nil
}

func printVMs(vms []mockcn.VM) {
	w := table("NAME", "STATUS", "AGENT", "AZ", "HOST", "RACK", "IP", "NODE", "FAULT", "ID")
	for _, v := range vms {
		row(w, v.Name, v.Status, v.Agent, v.AZ, v.Host, v.Rack, v.IP, v.NodeID, v.Fault, v.ID)
	}
	_ = w.Flush()
}

// --- agents ---------------------------------------------------------------------------

func cloudAgentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "agent", Short: "Silence, slow, crash or restart a VM's agent; give it fault knobs"}
	var off bool
	silent := &cobra.Command{
		Use: "silent VM...", Short: "Silence agents (no heartbeats, no commands taken; results held) or, with --off, let them speak", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachVM(cmd, args, func(a *adminClient, id string) (string, error) {
				on := !off
				what := "agent silent"
				if off {
					what = "agent speaks again"
				}
				return what, a.do(cmd.Context(), "PUT", "/vms/"+url.PathEscape(id)+"/agent", map[string]any{"silent": on}, nil)
			})
		},
	}
	silent.Flags().BoolVar(&off, "off", false, "end the silence")
	var factor float64
	slow := &cobra.Command{
		Use: "slow VM...", Short: "Make agents slow: every command takes --factor times as long (replaces the VM's own knobs; --factor 1: normal)", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if factor <= 0 {
				return fmt.Errorf("--factor must be positive")
			}
			return eachVM(cmd, args, func(a *adminClient, id string) (string, error) {
				k := dummy.Knobs{Slow: factor}
				return fmt.Sprintf("agent %g× slower", factor), a.do(cmd.Context(), "PUT", "/vms/"+url.PathEscape(id)+"/agent", map[string]any{"knobs": k}, nil)
			})
		},
	}
	slow.Flags().Float64Var(&factor, "factor", 10, "how many times slower")
	crash := &cobra.Command{
		Use: "crash VM...", Short: "Kill agents' processes (the VM stays ACTIVE); restart revives them", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachVM(cmd, args, func(a *adminClient, id string) (string, error) {
				return "agent crashed", a.do(cmd.Context(), "POST", "/vms/"+url.PathEscape(id)+"/agent/crash", nil, nil)
			})
		},
	}
	restart := &cobra.Command{
		Use: "restart VM...", Short: "Restart agents: they say hello again", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachVM(cmd, args, func(a *adminClient, id string) (string, error) {
				return "agent restarted", a.do(cmd.Context(), "POST", "/vms/"+url.PathEscape(id)+"/agent/restart", nil, nil)
			})
		},
	}
	var knobsJSON string
	var clear bool
	knobs := &cobra.Command{
		Use: "knobs VM... (--set JSON | --clear)", Short: "Give agents their own fault knobs (dummy.Knobs JSON), or clear them to follow the fleet's", Args: cobra.MinimumNArgs(1),
		Example: `  straas cloud agent knobs demo-1-zk-1 --set '{"fail":{"configure":"disk full"}}'
  straas cloud agent knobs demo-1-zk-1 --set '{"hang":["validate"]}'
  straas cloud agent knobs demo-1-zk-1 --clear`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (knobsJSON == "") == !clear {
				return fmt.Errorf("say --set JSON or --clear")
			}
			body := map[string]any{"clear_knobs": true}
			if !clear {
				k, err := parseKnobs(knobsJSON)
				if err != nil {
					return err
				}
				body = map[string]any{"knobs": k}
			}
			return eachVM(cmd, args, func(a *adminClient, id string) (string, error) {
				what := "agent knobs set"
				if clear {
					what = "agent knobs cleared"
				}
				return what, a.do(cmd.Context(), "PUT", "/vms/"+url.PathEscape(id)+"/agent", body, nil)
			})
		},
	}
	knobs.Flags().StringVar(&knobsJSON, "set", "", "knobs as JSON (durations, jitter, slow, fail_install, fail, hang, crash, restart, reboot, guest_output)")
	knobs.Flags().BoolVar(&clear, "clear", false, "drop the agent's own knobs")
	cmd.AddCommand(silent, slow, crash, restart, knobs)
	return cmd
}

func parseKnobs(s string) (*dummy.Knobs, error) {
	var k dummy.Knobs
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&k); err != nil {
		return nil, fmt.Errorf("knobs: %w", err)
	}
	return &k, nil
}

// --- fleet-wide settings --------------------------------------------------------------

func (a *adminClient) settings(ctx context.Context) (mockcn.Settings, error) {
	var s mockcn.Settings
	err := a.do(ctx, "GET", "/settings", nil, &s)
	return s, err
}

func (a *adminClient) putSettings(ctx context.Context, s mockcn.Settings) (mockcn.Settings, error) {
	var out mockcn.Settings
	err := a.do(ctx, "PUT", "/settings", s, &out)
	return out, err
}

func cloudKnobsCmd() *cobra.Command {
	var knobsJSON string
	var clear bool
	cmd := &cobra.Command{
		Use: "knobs [--set JSON | --clear]", Short: "Show or set the fleet-wide agent knobs (every agent without knobs of its own)", Args: cobra.NoArgs,
		Example: `  straas cloud knobs
  straas cloud knobs --set '{"slow":5,"fail":{"validate":"port 2181 closed"}}'
  straas cloud knobs --clear`,
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := cloudClient(cmd)
			if err != nil {
				return err
			}
			var s mockcn.Settings
			switch {
			case knobsJSON != "" && clear:
				return fmt.Errorf("--set and --clear exclude each other")
			case knobsJSON != "":
				k, err := parseKnobs(knobsJSON)
				if err != nil {
					return err
				}
				s, err = a.putSettings(cmd.Context(), mockcn.Settings{Knobs: k})
				if err != nil {
					return err
				}
			case clear:
				if s, err = a.putSettings(cmd.Context(), mockcn.Settings{Knobs: &dummy.Knobs{}}); err != nil {
					return err
				}
			default:
				if s, err = a.settings(cmd.Context()); err != nil {
					return err
				}
			}
			return printJSON(map[string]any{"knobs": s.Knobs})
		},
	}
	cmd.Flags().StringVar(&knobsJSON, "set", "", "knobs as JSON (replaces the fleet-wide knobs)")
	cmd.Flags().BoolVar(&clear, "clear", false, "back to normal behaviour")
	return cmd
}

func cloudInstallFailureCmd() *cobra.Command {
	var pkg, version string
	var vms []string
	var clear bool
	cmd := &cobra.Command{
		Use:   "install-failure --package NAME [--version V] [--vm VM...]",
		Short: "Make installs of a package version fail (the package manager cannot find it), fleet-wide or on some VMs",
		Long: `install-failure adds a package (and version; empty: any) to the knobs' fail_install list: the
dummy agent's install of it fails as apt does when the version is missing. Fleet-wide by default
(added to the fleet's knobs), or on the VMs named with --vm (their own knobs). --clear removes
the entry.`,
		Example: `  straas cloud install-failure --package kafka --version 0.10.2.1
  straas cloud install-failure --package zookeeper --vm demo-1-zk-2
  straas cloud install-failure --package kafka --version 0.10.2.1 --clear`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if pkg == "" {
				return fmt.Errorf("--package is required")
			}
			p := dummy.Package{Name: pkg, Version: version}
			edit := func(k dummy.Knobs) dummy.Knobs {
				var out []dummy.Package
				for _, x := range k.FailInstall {
					if x != p {
						out = append(out, x)
					}
				}
				if !clear {
					out = append(out, p)
				}
				k.FailInstall = out
				return k
			}
			a, err := cloudClient(cmd)
			if err != nil {
				return err
			}
			what := fmt.Sprintf("installs of %s %s fail", pkg, orAny(version))
			if clear {
				what = fmt.Sprintf("installs of %s %s succeed again", pkg, orAny(version))
			}
			if len(vms) == 0 {
				s, err := a.settings(cmd.Context())
				if err != nil {
					return err
				}
				k := dummy.Knobs{}
				if s.Knobs != nil {
					k = *s.Knobs
				}
				k = edit(k)
				if _, err := a.putSettings(cmd.Context(), mockcn.Settings{Knobs: &k}); err != nil {
					return err
				}
				fmt.Printf("fleet-wide: %s\n", what)
				return nil
			}
			// A VM without knobs of its own follows the fleet's: start from those.
			s, err := a.settings(cmd.Context())
			if err != nil {
				return err
			}
			base := dummy.Knobs{}
			if s.Knobs != nil {
				base = *s.Knobs
			}
			return eachVM(cmd, vms, func(a *adminClient, id string) (string, error) {
				k := edit(base)
				return what, a.do(cmd.Context(), "PUT", "/vms/"+url.PathEscape(id)+"/agent", map[string]any{"knobs": k}, nil)
			})
		},
	}
	cmd.Flags().StringVar(&pkg, "package", "", "package name, e.g. kafka")
	cmd.Flags().StringVar(&version, "version", "", "package version (default: any)")
	cmd.Flags().StringSliceVar(&vms, "vm", nil, "only these VMs (repeatable or comma-separated)")
	cmd.Flags().BoolVar(&clear, "clear", false, "remove the failure")
	return cmd
}

func orAny(v string) string {
	if v == "" {
		return "(any version)"
	}
	return v
}

func cloudBootLatencyCmd() *cobra.Command {
	var lo, hi time.Duration
	cmd := &cobra.Command{
		Use: "boot-latency [--min D --max D]", Short: "Show or set how long servers take to boot (uniform between min and max)", Args: cobra.NoArgs,
		Example: `  straas cloud boot-latency
  straas cloud boot-latency --min 30s --max 90s`,
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := cloudClient(cmd)
			if err != nil {
				return err
			}
			var s mockcn.Settings
			if cmd.Flags().Changed("min") || cmd.Flags().Changed("max") {
				cur, err := a.settings(cmd.Context())
				if err != nil {
					return err
				}
				l := mockcn.DefaultBootLatency
				if cur.BootLatency != nil {
					l = *cur.BootLatency
				}
				if cmd.Flags().Changed("min") {
					l.Min = dummy.Duration(lo)
				}
				if cmd.Flags().Changed("max") {
					l.Max = dummy.Duration(hi)
				}
				if s, err = a.putSettings(cmd.Context(), mockcn.Settings{BootLatency: &l}); err != nil {
					return err
				}
			} else if s, err = a.settings(cmd.Context()); err != nil {
				return err
			}
			if jsonOutput(cmd) || s.BootLatency == nil {
				return printJSON(map[string]any{"boot_latency": s.BootLatency})
			}
			fmt.Printf("boot latency: uniform between %v and %v\n", time.Duration(s.BootLatency.Min), time.Duration(s.BootLatency.Max))
			return nil
		},
	}
	cmd.Flags().DurationVar(&lo, "min", 0, "shortest boot")
	cmd.Flags().DurationVar(&hi, "max", 0, "longest boot")
	return cmd
}

func cloudStatsCmd() *cobra.Command {
	return &cobra.Command{
		Use: "stats", Short: "Count CNs, servers by status and what the agents have done", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := cloudClient(cmd)
			if err != nil {
				return err
			}
			var s mockcn.Stats
			if err := a.do(cmd.Context(), "GET", "/stats", nil, &s); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(s)
			}
			var st []string
			for k, v := range s.Status {
				st = append(st, fmt.Sprintf("%s %d", k, v))
			}
			sort.Strings(st)
			fmt.Printf("compute nodes: %d (%d down)\nservers:       %d (%s)\n", s.CNs, s.CNsDown, s.VMs, strings.Join(st, ", "))
			ag := s.Agents
			fmt.Printf("agents:        %d running; %d hellos, %d heartbeats, %d commands, %d results, %d events, %d receives, %d send errors, %d crashes\n",
				ag.Agents, ag.Hellos, ag.Heartbeats, ag.Commands, ag.Results, ag.Events, ag.Receives, ag.SendErrors, ag.Crashes)
			return nil
		},
	}
}
