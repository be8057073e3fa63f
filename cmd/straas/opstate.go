package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/straas/straas/shared/api"
)

var opLevels = map[string]string{"topology": "topologies", "component": "components", "node": "nodes"}

// opstateCmd is `straas opstate`: operational states (seed 001).
func opstateCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "opstate", Aliases: []string{"operational-state"},
		Short: "Operational states: autoscaling, autohealing, maintenance of a topology, component or node"}
	show := &cobra.Command{
		Use: "show topology|component|node ID", Short: "Show the state set on a level, the state in effect, and the levels below", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := opPath(args)
			if err != nil {
				return err
			}
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var out api.OpStateResponse
			if _, err := c.Do(cmd.Context(), "GET", path, nil, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			printOpState(out.OperationalState)
			return nil
		},
	}
	var autoscaling, autohealing, maintenance, restartMode string
	var propagate, ignoreWindows, wait, clearWindows bool
	var windows []string
	set := &cobra.Command{
		Use:   "set topology|component|node ID [--autoscaling on|off] [--autohealing on|off] [--maintenance off|restart|replace]",
		Short: "Set an operational state (this level only, unless --propagate)",
		Long: `set changes the operational state of a level. Autoscaling and autohealing change at once;
maintenance restart signals the nodes (one member of a quorum at a time) and ends when each
has sent its resume event; maintenance replace re-creates the nodes one at a time, in the
component's maintenance window unless --ignore-windows. A command that conflicts with one in
progress is queued behind it, and says so.

Windows (components only): --window "CRON/DURATION[/TIME_ZONE]", e.g. --window "0 2 * * SAT/4h/Europe/Paris".`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := opPath(args)
			if err != nil {
				return err
			}
			body := map[string]any{}
			for k, v := range map[string]string{"autoscaling": autoscaling, "autohealing": autohealing, "maintenance": maintenance, "restart_mode": restartMode} {
				if v != "" {
					body[k] = v
				}
			}
			if propagate {
				body["propagate"] = true
			}
			if ignoreWindows {
				body["ignore_windows"] = true
			}
			if len(windows) > 0 || clearWindows {
				ws := []map[string]string{}
				for _, w := range windows {
					parts := strings.Split(w, "/")
					if len(parts) < 2 {
						return fmt.Errorf("--window %q: want CRON/DURATION[/TIME_ZONE]", w)
					}
					x := map[string]string{"cron": parts[0], "duration": parts[1]}
					if len(parts) > 2 {
						x["time_zone"] = strings.Join(parts[2:], "/")
					}
					ws = append(ws, x)
				}
				body["maintenance_windows"] = ws
			}
			if len(body) == 0 {
				return fmt.Errorf("nothing to set: give --autoscaling, --autohealing, --maintenance or --window")
			}
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if _, err := c.Do(cmd.Context(), "PUT", path, body, &raw); err != nil {
				return err
			}
			var out api.OpStateSet
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			if !jsonOutput(cmd) {
				fmt.Printf("changed: %s\n", polDash(strings.Join(out.Changed, ", ")))
				if out.Note != "" {
					fmt.Println(out.Note)
				}
			}
			if out.Action == nil {
				if jsonOutput(cmd) {
					_, err := os.Stdout.Write(raw)
					return err
				}
				printOpState(out.OperationalState)
				return nil
			}
			return followAction(cmd, c, out.Action.ID, wait, "maintenance "+maintenance, raw)
		},
	}
	f := set.Flags()
	f.StringVar(&autoscaling, "autoscaling", "", "on or off")
	f.StringVar(&autohealing, "autohealing", "", "on or off")
	f.StringVar(&maintenance, "maintenance", "", "off, restart or replace")
	f.StringVar(&restartMode, "restart-mode", "", "maintenance restart: restart (default) or reboot")
	f.BoolVar(&propagate, "propagate", false, "apply to every level below too")
	f.BoolVar(&ignoreWindows, "ignore-windows", false, "maintenance replace now, not in the next maintenance window")
	f.StringArrayVar(&windows, "window", nil, "maintenance window CRON/DURATION[/TIME_ZONE] (repeatable; components only)")
	f.BoolVar(&clearWindows, "clear-windows", false, "remove the component's maintenance windows")
	f.BoolVar(&wait, "wait", false, "wait until the maintenance action ends")
	cmd.AddCommand(show, set)
	return cmd
}

func opPath(args []string) (string, error) {
	p, ok := opLevels[args[0]]
	if !ok {
		return "", fmt.Errorf("level %q: want topology, component or node", args[0])
	}
	return api.Prefix + "/" + p + "/" + url.PathEscape(args[1]) + "/operational_state", nil
}

func printOpState(v api.OpStateView) {
	w := table("LEVEL", "NAME", "ID", "AUTOSCALING", "AUTOHEALING", "MAINTENANCE", "SET HERE", "STATE")
	var walk func(v api.OpStateView, indent string)
	walk = func(v api.OpStateView, indent string) {
		var own []string
		for k, x := range map[string]string{"autoscaling": v.Own.Autoscaling, "autohealing": v.Own.Autohealing, "maintenance": v.Own.Maintenance} {
			if x != "" {
				own = append(own, k+"="+x)
			}
		}
		if len(v.Propagated) > 0 {
			own = append(own, "propagated:"+strings.Join(v.Propagated, ","))
		}
		state := v.Status
		switch {
		case v.Load != "":
			state = "load " + v.Load
			if len(v.Queue) > 0 {
				state += fmt.Sprintf(", %d queued", len(v.Queue))
			}
			if v.NextWindow != nil {
				if v.NextWindow.Open {
					state += ", window open"
				} else {
					state += ", next window " + v.NextWindow.Opens.Local().Format(time.DateTime)
				}
			}
		case v.Flags != nil:
			if v.Flags.Maintenance != "" {
				state += ", in maintenance " + v.Flags.Maintenance
			}
			if v.Flags.Failure != nil {
				if v.Flags.Failure.Pending {
					state += fmt.Sprintf(", failure pending since %s (%s)", v.Flags.Failure.Since.Local().Format(time.TimeOnly), v.Flags.Failure.Why)
				} else {
					state += ", failed: " + v.Flags.Failure.Reason
				}
			}
			if v.Flags.Healing != "" {
				state += ", healing " + v.Flags.Healing
			}
		}
		row(w, indent+v.Level, v.Name, v.ID, v.Effective.Autoscaling, v.Effective.Autohealing, v.Effective.Maintenance,
			polDash(strings.Join(own, " ")), polDash(state))
		for _, c := range v.Components {
			walk(c, indent+"  ")
		}
		for _, n := range v.Nodes {
			walk(n, indent+"  ")
		}
	}
	walk(v, "")
	_ = w.Flush()
}

// convergeCmd is `straas converge`: desired-state convergence of a topology.
func convergeCmd() *cobra.Command {
	var file string
	var dry, wait, ignoreWindows bool
	cmd := &cobra.Command{
		Use:   "converge TOPOLOGY_ID -f DESIRED.json [--dry-run] [--ignore-windows] [--wait]",
		Short: "Converge a topology to a desired spec (a creation body): the plan, and its application",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			q := url.Values{}
			if dry {
				q.Set("dry_run", "true")
			}
			if ignoreWindows {
				q.Set("ignore_windows", "true")
			}
			path := api.Prefix + "/topologies/" + url.PathEscape(args[0]) + "?" + q.Encode()
			var raw json.RawMessage
			if _, err := c.Do(cmd.Context(), "PUT", path, body, &raw); err != nil {
				return err
			}
			var out api.ConvergeResponse
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
			if !jsonOutput(cmd) || out.Action == nil {
				if jsonOutput(cmd) {
					_, err := os.Stdout.Write(raw)
					return err
				}
				printPlan(out)
			}
			if out.Action == nil {
				return nil
			}
			return followAction(cmd, c, out.Action.ID, wait, "converging", raw)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the desired spec (the body of a creation)")
	cmd.Flags().BoolVar(&dry, "dry-run", false, "only print the plan")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the convergence ends")
	cmd.Flags().BoolVar(&ignoreWindows, "ignore-windows", false, "upgrade and replace at once, not in the components' maintenance windows")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func printPlan(out api.ConvergeResponse) {
	p := out.Plan
	what := "Plan"
	if out.DryRun {
		what = "Plan (dry run)"
	}
	fmt.Printf("%s for topology %s, revision %d: %d change(s)\n", what, p.TopologyID, p.Revision, p.Changes)
	for _, u := range p.Unsupported {
		fmt.Printf("  cannot: %s\n", u)
	}
	w := table("COMPONENT", "CHANGE", "DETAIL")
	for _, c := range p.Components {
		any := false
		for _, n := range c.Remove {
			row(w, c.Component, "remove", fmt.Sprintf("%s (%s): %s", n.Name, n.Role, n.Reason))
			any = true
		}
		if c.Upgrade != nil {
			row(w, c.Component, "upgrade", fmt.Sprintf("%s -> %s, %d node(s)", c.Upgrade.From, c.Upgrade.To, c.Upgrade.Nodes))
			any = true
		}
		for _, n := range c.Replace {
			row(w, c.Component, "replace", fmt.Sprintf("%s (%s): %s", n.Name, n.Role, n.Reason))
			any = true
		}
		for _, a := range c.Add {
			row(w, c.Component, "add", fmt.Sprintf("%d %s node(s)", a.Count, a.Role))
			any = true
		}
		for _, s := range c.Settings {
			row(w, c.Component, "setting", fmt.Sprintf("%s: %s -> %s", s.Field, s.From, s.To))
			any = true
		}
		if len(c.Reconfigure) > 0 {
			row(w, c.Component, "reconfigure", "configuration of "+strings.Join(c.Reconfigure, ", "))
		}
		if !any {
			row(w, c.Component, "-", "in sync")
		}
	}
	_ = w.Flush()
	if out.Action != nil {
		fmt.Printf("action %s\n", out.Action.ID)
	}
}
