package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/straas/straas/shared/client"
)

// componentOpsCmds are the lifecycle commands of components: flexup, guest commands on
// every node, health-check status, dependencies and the legacy storm jar.
func componentOpsCmds() []*cobra.Command {
	return []*cobra.Command{flexupCmd(), groupCmd("component"), componentStatusCmd(), componentDepsCmd(), stormJarCmd()}
}

func flexupCmd() *cobra.Command {
	var count int
	var role string
	var wait bool
	cmd := &cobra.Command{
		Use: "flexup ID", Short: "Add nodes to a component; whoever lists its members is reconfigured",
		Example: "  straas component flexup comp-... --count 2 --role supervisor --wait", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			body := map[string]any{"count": count}
			if role != "" {
				body["role"] = role
			}
			var raw json.RawMessage
			if _, err := c.Do(cmd.Context(), "POST", "/straas/v1.0/components/"+url.PathEscape(args[0]), body, &raw); err != nil {
				return err
			}
			var out struct {
				Action client.ActionRef `json:"action"`
				Role   string           `json:"role"`
			}
			_ = json.Unmarshal(raw, &out)
			return followAction(cmd, c, out.Action.ID, wait, fmt.Sprintf("adding %d %s nodes to %s", count, out.Role, args[0]), raw)
		},
	}
	cmd.Flags().IntVar(&count, "count", 1, "how many nodes")
	cmd.Flags().StringVar(&role, "role", "", "the role (submodule) of the new nodes (default: the type's scalable role)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the action ends, showing progress")
	return cmd
}

type groupResult struct {
	Command  string        `json:"command"`
	Results  []nodeOutcome `json:"results"`
	OK       int           `json:"ok"`
	Failed   int           `json:"failed"`
	TimedOut int           `json:"timed_out"`
	Skipped  int           `json:"skipped"`
}

// groupCmd runs a guest command on every node of a component or topology.
func groupCmd(kind string) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use: "cmd ID COMMAND [ARGS...]", Aliases: []string{"command", "guestcmd"},
		Short: "Run a guest command on every node of the " + kind + "; one outcome per node", Args: cobra.MinimumNArgs(2),
		Example: "  straas " + kind + " cmd ID zk-cmd/srvr --timeout 5s",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			path := map[string]string{"component": "/straas/v1.0/components/", "topology": "/straas/v1.0/topologies/"}[kind] + url.PathEscape(args[0]) + "/commands"
			var out groupResult
			body := map[string]any{"command": args[1], "args": strings.Join(args[2:], " "), "timeout_seconds": int(timeout / time.Second)}
			if _, err := c.Do(cmd.Context(), "POST", path, body, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			w := table("NODE", "STATUS", "EXIT", "OUTPUT")
			for _, o := range out.Results {
				text := strings.ReplaceAll(strings.TrimSpace(o.Output), "\n", " | ")
				if o.Error != "" {
					text = strings.TrimSpace(text + " " + o.Error)
				}
				row(w, o.Name, o.Status, o.ExitStatus, text)
			}
			_ = w.Flush()
			fmt.Printf("%d ok, %d failed, %d timed out, %d skipped\n", out.OK, out.Failed, out.TimedOut, out.Skipped)
			if out.Failed+out.TimedOut > 0 {
				return fmt.Errorf("%s did not succeed on every node", args[1])
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 25*time.Second, "how long to wait for each node's answer")
	return cmd
}

func componentStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use: "status ID NODE=ACTIVE|INACTIVE|SKIPPED|UNREACHABLE...", Short: "Write back a health check's verdicts on a component's nodes",
		Example: "  straas component status comp-... demo-1-zk-2=UNREACHABLE", Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			body := map[string]string{}
			for _, a := range args[1:] {
				name, st, ok := strings.Cut(a, "=")
				if !ok {
					return fmt.Errorf("%q: want NODE=STATUS", a)
				}
				body[name] = strings.ToUpper(st)
			}
			var out struct {
				Status string `json:"status"`
				Nodes  []struct {
					Name, Reported, From, To, Note string
				} `json:"nodes"`
			}
			if _, err := c.Do(cmd.Context(), "POST", "/straas/v1.0/components/"+url.PathEscape(args[0])+"/status", body, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			w := table("NODE", "REPORTED", "FROM", "TO", "NOTE")
			for _, n := range out.Nodes {
				row(w, n.Name, n.Reported, n.From, n.To, n.Note)
			}
			_ = w.Flush()
			fmt.Printf("component is %s\n", out.Status)
			return nil
		},
	}
}

func componentDepsCmd() *cobra.Command {
	return &cobra.Command{
		Use: "deps ID", Aliases: []string{"dependencies"}, Short: "What a component depends on and what depends on it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			type comp struct{ ID, Name, Type, Version, Status string }
			var out struct {
				Component  comp   `json:"component"`
				DependsOn  []comp `json:"depends_on"`
				Dependents []comp `json:"dependents"`
			}
			if _, err := c.Do(cmd.Context(), "GET", "/straas/v1.0/components/"+url.PathEscape(args[0])+"/dependencies", nil, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			w := table("RELATION", "COMPONENT", "TYPE", "VERSION", "STATUS", "ID")
			for _, d := range out.DependsOn {
				row(w, "depends on", d.Name, d.Type, d.Version, d.Status, d.ID)
			}
			for _, d := range out.Dependents {
				row(w, "depended on by", d.Name, d.Type, d.Version, d.Status, d.ID)
			}
			return w.Flush()
		},
	}
}

func stormJarCmd() *cobra.Command {
	var storageURL, container, filename, mainClass, name string
	cmd := &cobra.Command{
		Use: "stormjar ID [ARGS...]", Short: "Submit a storm topology jar (stored with straas storage put) on the component's nimbus",
		Example: "  straas component stormjar comp-... --container jars --filename wc.jar --main-class org.example.WordCount --name wc",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			body := map[string]any{"storage_url": storageURL, "container": container, "filename": filename, "main_class": mainClass,
				"topology_name": name, "args": args[1:]}
			var out struct {
				Nimbus string      `json:"nimbus"`
				Jar    string      `json:"jar"`
				Upload nodeOutcome `json:"upload"`
				Submit nodeOutcome `json:"submit"`
			}
			if _, err := c.Do(cmd.Context(), "POST", "/straas/stormjar/"+url.PathEscape(args[0]), body, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			fmt.Printf("jar %s on nimbus %s: %s\n", out.Jar, out.Nimbus, out.Upload.Status)
			if out.Upload.Status != "ok" {
				return printOutcome(out.Upload)
			}
			return printOutcome(out.Submit)
		},
	}
	cmd.Flags().StringVar(&storageURL, "storage-url", "", "a pre-authenticated storage URL to fetch from (default: straas storage)")
	cmd.Flags().StringVar(&container, "container", "", "the jar's container")
	cmd.Flags().StringVar(&filename, "filename", "", "the jar's name in the container")
	cmd.Flags().StringVar(&mainClass, "main-class", "", "the topology's main class")
	cmd.Flags().StringVar(&name, "name", "", "the storm topology's name")
	return cmd
}
