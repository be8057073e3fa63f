package main

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/straas/straas/shared/client"
)

func actionCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "action", Aliases: []string{"actions"}, Short: "Show and wait for actions (the handle of every change)"}
	show := &cobra.Command{
		Use: "show ID", Short: "Show an action: status, stages per component, per-node progress, errors", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			a, err := c.Action(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(map[string]any{"action": a})
			}
			printAction(a)
			return nil
		},
	}
	wait := &cobra.Command{
		Use: "wait ID", Short: "Wait until an action ends, showing progress", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			a, err := waitAction(cmd, c, args[0], "")
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(map[string]any{"action": a})
			}
			printAction(a)
			if a.Status != "SUCCEEDED" {
				return fmt.Errorf("action %s %s", a.ID, a.Status)
			}
			return nil
		},
	}
	cmd.AddCommand(show, wait)
	return cmd
}

func printAction(a client.Action) {
	fmt.Printf("Action %s  %s  %s  (topology %s)\n", a.ID, a.Kind, a.Status, a.TopologyID)
	if a.Error != nil {
		fmt.Printf("Error: %s\n", describeActionError(a))
	}
	w := table("COMPONENT", "STAGE", "STATUS", "NODES", "STARTED", "TOOK", "DETAIL")
	for _, s := range a.Stages {
		took := "-"
		if s.FinishedAt != nil {
			took = s.FinishedAt.Sub(s.StartedAt).Round(time.Millisecond).String()
		}
		nodes := "-"
		if s.NodesTotal > 0 {
			nodes = fmt.Sprintf("%d/%d", s.NodesDone, s.NodesTotal)
			if s.NodesFailed > 0 {
				nodes += fmt.Sprintf(" (%d failed)", s.NodesFailed)
			}
		}
		comp := s.Component
		if comp == "" {
			comp = "-"
		}
		row(w, comp, s.Name, s.Status, nodes, s.StartedAt.Local().Format(time.TimeOnly), took, s.Detail)
	}
	_ = w.Flush()
}

func describeActionError(a client.Action) string {
	if a.Error == nil {
		return "no error recorded"
	}
	e := a.Error
	var parts []string
	if e.Component != "" {
		parts = append(parts, "component "+e.Component)
	}
	if e.Stage != "" {
		parts = append(parts, "stage "+e.Stage)
	}
	if e.Node != "" {
		parts = append(parts, "node "+e.Node)
	}
	where := strings.Join(parts, ", ")
	if where != "" {
		where += ": "
	}
	return fmt.Sprintf("%s%s: %s", where, e.Error, e.Cause)
}

// waitAction polls an action until it ends, drawing a progress bar on a terminal (or
// printing a line per change otherwise, e.g. in CI logs). With topologyID it also shows
// how many nodes are ACTIVE.
func waitAction(cmd *cobra.Command, c *client.Client, actionID, topologyID string) (client.Action, error) {
	ctx := cmd.Context()
	tty := isTerminal(os.Stderr) && !jsonOutput(cmd)
	var bar *progressbar.ProgressBar
	if tty {
		bar = progressbar.NewOptions(100, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(), progressbar.OptionSetElapsedTime(true), progressbar.OptionSetPredictTime(false),
			progressbar.OptionShowDescriptionAtLineEnd(), progressbar.OptionClearOnFinish())
	}
	last := ""
	interval := 250 * time.Millisecond
	for {
		a, err := c.Action(ctx, actionID)
		if err != nil {
			return a, err
		}
		done, total, desc := summarize(a)
		if topologyID != "" {
			if t, err := c.Topology(ctx, topologyID); err == nil {
				active, all := 0, 0
				for _, comp := range t.Components {
					for _, n := range comp.Nodes {
						all++
						if n.Status == "ACTIVE" {
							active++
						}
					}
				}
				desc = fmt.Sprintf("nodes ACTIVE %d/%d | %s", active, all, desc)
			}
		}
		ended := a.Status == "SUCCEEDED" || a.Status == "FAILED" || a.Status == "CANCELLED"
		if bar != nil {
			bar.ChangeMax(max(total, 1))
			_ = bar.Set(done)
			bar.Describe(desc)
		} else if desc != last && !jsonOutput(cmd) {
			fmt.Fprintf(os.Stderr, "[%s] %s %d/%d stages | %s\n", time.Now().Format(time.TimeOnly), a.Status, done, total, desc)
			last = desc
		}
		if ended {
			if bar != nil {
				_ = bar.Finish()
			}
			return a, nil
		}
		select {
		case <-ctx.Done():
			return a, ctx.Err()
		case <-time.After(interval):
		}
		interval = min(interval+100*time.Millisecond, time.Second)
	}
}

// summarize counts finished stages and describes where each component is.
func summarize(a client.Action) (done, total int, desc string) {
	current := map[string]string{}
	var comps []string
	for _, s := range a.Stages {
		total++
		if s.Status == "SUCCEEDED" || s.Status == "FAILED" {
			done++
		}
		name := s.Component
		if name == "" {
			name = "job"
		}
		if _, ok := current[name]; !ok {
			comps = append(comps, name)
		}
		state := s.Name
		if s.NodesTotal > 0 && s.Status == "RUNNING" {
			state = fmt.Sprintf("%s %d/%d", s.Name, s.NodesDone+s.NodesFailed, s.NodesTotal)
		}
		if s.Status == "FAILED" {
			state = s.Name + " FAILED"
		}
		// Stages come in start order: the latest started says where a component is.
		current[name] = state
	}
	// Creation has nine stages per component and one for the job: estimate the total
	// before every stage has started.
	if a.Kind == "create_topology" {
		total = max(total, 1+9*max(len(comps)-1, 1))
	}
	sort.Strings(comps)
	var parts []string
	for _, c := range comps {
		parts = append(parts, c+": "+current[c])
	}
	return done, total, strings.Join(parts, " | ")
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
