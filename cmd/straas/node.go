package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/straas/straas/shared/client"
)

// The lifecycle commands of nodes: show, delete (flexdown), replace, services, guest
// commands, files and script sync.

func nodeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Aliases: []string{"nodes"}, Short: "Show, remove, replace nodes; their services, guest commands, files and scripts"}
	show := &cobra.Command{
		Use: "show ID", Short: "Show a node with its liveness and configuration", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Node client.Node `json:"node"`
			}
			if _, err := c.Do(cmd.Context(), "GET", "/straas/v1.0/nodes/"+url.PathEscape(args[0]), nil, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			n := out.Node
			fmt.Printf("Node %s  %s  role %s  index %d  %s  generation %d\n", n.ID, n.Name, n.Role, n.Index, n.Status, n.Generation)
			fmt.Printf("  server %s on %s, IPs %s, cname %s\n", dashIfEmpty(n.ServerID), dashIfEmpty(n.Hypervisor), dashIfEmpty(strings.Join(n.IPs, ",")), dashIfEmpty(n.CName))
			fmt.Printf("  version %s, config ref %s\n", dashIfEmpty(n.InstalledVersion), dashIfEmpty(n.ConfigRef))
			if n.Error != "" {
				fmt.Printf("  error: %s\n", n.Error)
			}
			for s, st := range n.Services {
				fmt.Printf("  service %s: %s\n", s, st)
			}
			return nil
		},
	}

	var force, wait bool
	del := &cobra.Command{
		Use: "delete ID", Aliases: []string{"rm", "flexdown"}, Short: "Remove a node from its component (flexdown): drain, delete, reconfigure",
		Example: "  straas node delete comp-...-4 --wait", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return nodeAction(cmd, "DELETE", "/straas/v1.0/nodes/"+url.PathEscape(args[0])+forceQuery(force), wait, "removing node "+args[0])
		},
	}
	del.Flags().BoolVar(&force, "force", false, "skip the drain (a node whose agent cannot answer; its data is lost)")
	del.Flags().BoolVar(&wait, "wait", false, "wait until the action ends, showing progress")

	var rforce, rwait bool
	replace := &cobra.Command{
		Use: "replace ID", Short: "Replace a node: a new server with the same identity, then a safe rolling restart of those that must notice",
		Example: "  straas node replace comp-...-2 --wait", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return nodeAction(cmd, "PUT", "/straas/v1.0/nodes/"+url.PathEscape(args[0])+forceQuery(rforce), rwait, "replacing node "+args[0])
		},
	}
	replace.Flags().BoolVar(&rforce, "force", false, "replace without draining first")
	replace.Flags().BoolVar(&rwait, "wait", false, "wait until the action ends, showing progress")

	cmd.AddCommand(show, del, replace, servicesCmd(), nodeGuestCmd(), filesCmd(), scriptsCmd())
	return cmd
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func forceQuery(force bool) string {
	if force {
		return "?force=true"
	}
	return ""
}

// nodeAction sends a call that starts an action and, with wait, follows it to its end.
func nodeAction(cmd *cobra.Command, method, path string, wait bool, what string) error {
	c, err := apiClient(cmd)
	if err != nil {
		return err
	}
	var out struct {
		Action client.ActionRef `json:"action"`
	}
	var raw json.RawMessage
	if _, err := c.Do(cmd.Context(), method, path, nil, &raw); err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	return followAction(cmd, c, out.Action.ID, wait, what, raw)
}

// followAction prints the action started (or, with wait, its end as `action show` does);
// a failed action is an error naming where and why.
func followAction(cmd *cobra.Command, c *client.Client, id string, wait bool, what string, answer json.RawMessage) error {
	if !wait {
		if jsonOutput(cmd) {
			_, err := os.Stdout.Write(answer)
			return err
		}
		fmt.Printf("%s; action %s (straas action wait %s)\n", what, id, id)
		return nil
	}
	if !jsonOutput(cmd) {
		fmt.Printf("%s; action %s\n", what, id)
	}
	a, err := waitAction(cmd, c, id, "")
	if err != nil {
		return err
	}
	if jsonOutput(cmd) {
		if err := printJSON(map[string]any{"action": a}); err != nil {
			return err
		}
	} else {
		printAction(a)
	}
	if a.Status != "SUCCEEDED" {
		return fmt.Errorf("action %s %s: %s", a.ID, a.Status, describeActionError(a))
	}
	return nil
}

func servicesCmd() *cobra.Command {
	var service string
	var force, wait bool
	cmd := &cobra.Command{
		Use: "services start|stop|restart ID", Short: "Start, stop or restart a node's services (their status follows in heartbeats)",
		Example: "  straas node services restart comp-...-1 --wait", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			method := map[string]string{"start": "POST", "stop": "DELETE", "restart": "PUT"}[args[0]]
			if method == "" {
				return fmt.Errorf("want start, stop or restart, not %q", args[0])
			}
			q := url.Values{}
			if service != "" {
				q.Set("service", service)
			}
			if force {
				q.Set("force", "true")
			}
			path := "/straas/v1.0/nodes/" + url.PathEscape(args[1]) + "/services"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			return nodeAction(cmd, method, path, wait, args[0]+" of node "+args[1])
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "one service (default: every service of the node's role)")
	cmd.Flags().BoolVar(&force, "force", false, "stop or restart even if a quorum type would lose its majority")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the action ends")
	return cmd
}

// commandResult is a guest command's answer.
type commandResult struct {
	Command string      `json:"command"`
	Args    string      `json:"args"`
	Result  nodeOutcome `json:"result"`
}

type nodeOutcome struct {
	NodeID     string `json:"node_id"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	ExitStatus int    `json:"exit_status"`
	Output     string `json:"output"`
	Error      string `json:"error,omitempty"`
}

func nodeGuestCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use: "cmd ID COMMAND [ARGS...]", Aliases: []string{"command", "guestcmd"},
		Short:   "Run a guest command (<group>/<name> from the script repo) on a node; prints its output",
		Example: "  straas node cmd comp-...-1 zk-cmd/srvr\n  straas node cmd comp-...-1 assist-cmd/list", Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			body := map[string]any{"command": args[1], "args": strings.Join(args[2:], " "), "timeout_seconds": int(timeout / time.Second)}
			var out commandResult
			if _, err := c.Do(cmd.Context(), "POST", "/straas/v1.0/nodes/"+url.PathEscape(args[0])+"/commands", body, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			return printOutcome(out.Result)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 25*time.Second, "how long to wait for the node's answer")
	return cmd
}

func printOutcome(o nodeOutcome) error {
	if o.Output != "" {
		fmt.Println(strings.TrimRight(o.Output, "\n"))
	}
	if o.Status != "ok" {
		return fmt.Errorf("node %s: %s (exit status %d): %s", o.Name, o.Status, o.ExitStatus, o.Error)
	}
	return nil
}

func scopeFlags(cmd *cobra.Command, scope *string, items *[]string) {
	cmd.Flags().StringVar(scope, "scope", "node", "topology, component or node")
	cmd.Flags().StringSliceVar(items, "item", nil, "an id of the scope (repeatable)")
}

func filesCmd() *cobra.Command {
	var scope, container, filename, target, storageType, region string
	var items []string
	var wait bool
	cmd := &cobra.Command{
		Use: "files", Short: "Put a stored file (straas storage put) on nodes",
		Example: "  straas node files --scope component --item comp-... --container conf --filename app.properties --target /etc/app/app.properties --wait",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			body := map[string]any{"scope": scope, "items": items, "container": container, "filename": filename, "target_path": target}
			if storageType != "" {
				body["storage_type"] = storageType
			}
			if region != "" {
				body["region"] = region
			}
			var raw json.RawMessage
			if _, err := c.Do(cmd.Context(), "POST", "/straas/v1.0/nodes/files", body, &raw); err != nil {
				return err
			}
			var out struct {
				Action client.ActionRef `json:"action"`
				Nodes  int              `json:"nodes"`
			}
			_ = json.Unmarshal(raw, &out)
			return followAction(cmd, c, out.Action.ID, wait, fmt.Sprintf("putting %s/%s at %s on %d nodes", container, filename, target, out.Nodes), raw)
		},
	}
	scopeFlags(cmd, &scope, &items)
	cmd.Flags().StringVar(&container, "container", "", "the file's container (first path segment in storage)")
	cmd.Flags().StringVar(&filename, "filename", "", "the file's name in the container")
	cmd.Flags().StringVar(&target, "target", "", "absolute path on the nodes")
	cmd.Flags().StringVar(&storageType, "storage-type", "", "storage type (default swift)")
	cmd.Flags().StringVar(&region, "region", "", "region (default: the topology's zone)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the action ends")
	return cmd
}

func scriptsCmd() *cobra.Command {
	var scope string
	var items []string
	var apply, wait bool
	cmd := &cobra.Command{
		Use: "scripts", Short: "Sync the script repo to nodes (and, with --apply, reconfigure their components)",
		Example: "  straas node scripts --scope topology --item topo-... --wait", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if _, err := c.Do(cmd.Context(), "PUT", "/straas/v1.0/nodes/scripts", map[string]any{"scope": scope, "items": items, "apply": apply}, &raw); err != nil {
				return err
			}
			var out struct {
				Action client.ActionRef `json:"action"`
				Nodes  int              `json:"nodes"`
				Ref    string           `json:"scripts_ref"`
			}
			_ = json.Unmarshal(raw, &out)
			return followAction(cmd, c, out.Action.ID, wait, fmt.Sprintf("syncing scripts %s to %d nodes", short(out.Ref), out.Nodes), raw)
		},
	}
	scopeFlags(cmd, &scope, &items)
	cmd.Flags().BoolVar(&apply, "apply", false, "then run a configuration change of each component")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the action ends")
	return cmd
}
