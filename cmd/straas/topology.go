package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/straas/straas/shared/client"
)

func topologyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "topology", Aliases: []string{"topologies", "topo"}, Short: "Create, list, show and delete topologies"}
	var file string
	var wait bool
	create := &cobra.Command{
		Use:   "create -f FILE",
		Short: "Create a topology from a JSON file (- for stdin)",
		Example: `  straas topology create -f examples/zk-kafka-storm.json --wait
  straas topology create -f - < my-topology.json -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return fmt.Errorf("say which file: -f FILE")
			}
			var body []byte
			var err error
			if file == "-" {
				body, err = io.ReadAll(os.Stdin)
			} else {
				body, err = os.ReadFile(file)
			}
			if err != nil {
				return err
			}
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			t, a, err := c.CreateTopology(cmd.Context(), body)
			if err != nil {
				return err
			}
			if !jsonOutput(cmd) {
				fmt.Printf("topology %s (%s@%s) is %s; action %s\n", t.ID, t.Name, t.AvailabilityZone, t.Status, a.ID)
			}
			if wait {
				act, err := waitAction(cmd, c, a.ID, t.ID)
				if err != nil {
					return err
				}
				if act.Status != "SUCCEEDED" {
					return fmt.Errorf("action %s %s: %s", act.ID, act.Status, describeActionError(act))
				}
				t2, err := c.Topology(cmd.Context(), t.ID)
				if err != nil {
					return err
				}
				if jsonOutput(cmd) {
					return printJSON(map[string]any{"topology": t2, "action": act})
				}
				printTopology(t2)
				return nil
			}
			if jsonOutput(cmd) {
				return printJSON(map[string]any{"topology": t, "action": a})
			}
			return nil
		},
	}
	create.Flags().StringVarP(&file, "file", "f", "", "topology JSON (seed 000 §4.3.2.1 body)")
	create.Flags().BoolVar(&wait, "wait", false, "wait until the topology is ACTIVE (or failed), showing progress")

	list := &cobra.Command{
		Use: "list", Short: "List your topologies (all of them for admins)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			ts, err := c.Topologies(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(map[string]any{"topologies": ts})
			}
			w := table("ID", "NAME", "AZ", "STATUS", "OWNER", "CREATED")
			for _, t := range ts {
				row(w, t.ID, t.Name, t.AvailabilityZone, t.Status, t.OwnerName, t.CreatedAt.Local().Format(time.DateTime))
			}
			return w.Flush()
		},
	}
	show := &cobra.Command{
		Use: "show ID|NAME", Short: "Show a topology with its components and nodes", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			id, err := topologyID(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			t, err := c.Topology(cmd.Context(), id)
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(map[string]any{"topology": t})
			}
			printTopology(t)
			return nil
		},
	}
	var delWait bool
	del := &cobra.Command{
		Use: "delete ID|NAME", Short: "Delete a topology: its servers, configuration branch and records", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			id, err := topologyID(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			a, err := c.DeleteTopology(cmd.Context(), id)
			if err != nil {
				return err
			}
			if !jsonOutput(cmd) {
				fmt.Printf("deleting topology %s; action %s\n", id, a.ID)
			}
			if delWait {
				act, err := waitAction(cmd, c, a.ID, "")
				if err != nil {
					return err
				}
				if act.Status != "SUCCEEDED" {
					return fmt.Errorf("action %s %s: %s", act.ID, act.Status, describeActionError(act))
				}
				if jsonOutput(cmd) {
					return printJSON(map[string]any{"action": act})
				}
				fmt.Printf("topology %s deleted\n", id)
				return nil
			}
			if jsonOutput(cmd) {
				return printJSON(map[string]any{"action": a})
			}
			return nil
		},
	}
	del.Flags().BoolVar(&delWait, "wait", false, "wait until the deletion is done")
	cmd.AddCommand(create, list, show, del)
	cmd.AddCommand(topologyOpsCmds()...)
	return cmd
}

func printTopology(t client.Topology) {
	fmt.Printf("Topology %s  %s@%s  %s  owner %s\n", t.ID, t.Name, t.AvailabilityZone, t.Status, t.OwnerName)
	for _, c := range t.Components {
		deps := ""
		if len(c.DependsOn) > 0 {
			deps = " depends on " + strings.Join(c.DependsOn, ",")
		}
		fmt.Printf("\nComponent %s (%s %s) %s, %d nodes%s\n", c.Name, c.Type, c.Version, c.Status, len(c.Nodes), deps)
		w := table("  NODE", "ROLE", "STATUS", "IPS", "CN", "SERVER", "LAST HEARTBEAT")
		for _, n := range c.Nodes {
			hb := "-"
			if n.LastHeartbeat != nil {
				if ts, err := time.Parse(time.RFC3339Nano, *n.LastHeartbeat); err == nil {
					hb = time.Since(ts).Round(time.Second).String() + " ago"
				}
			}
			row(w, "  "+n.Name, n.Role, n.Status, strings.Join(n.IPs, ","), n.Hypervisor, short(n.ServerID), hb)
		}
		_ = w.Flush()
	}
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// topologyID turns a topology's id or name into its id. An id (topo-...) is used as it
// is; a name must match exactly one topology the caller can see (an admin sees every
// tenant's, so a name can be ambiguous: the error lists the ids).
func topologyID(ctx context.Context, c *client.Client, arg string) (string, error) {
	if strings.HasPrefix(arg, "topo-") {
		return arg, nil
	}
	ts, err := c.TopologiesWhere(ctx, url.Values{"name": {arg}})
	if err != nil {
		return "", err
	}
	switch len(ts) {
	case 0:
		return "", fmt.Errorf("no topology named %q (see straas topology list)", arg)
	case 1:
		return ts[0].ID, nil
	}
	var ids []string
	for _, t := range ts {
		ids = append(ids, t.ID+" (owner "+t.OwnerName+")")
	}
	return "", fmt.Errorf("%d topologies are named %q: give the id, one of %s", len(ts), arg, strings.Join(ids, ", "))
}
