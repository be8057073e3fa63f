package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/client"
)

// policyCmd is `straas policy`: policy types, policies, their attachment to components,
// and receivers.
func policyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Aliases: []string{"policies"},
		Short: "Policies (health, scaling, deletion, placement), their attachment to components, and receivers"}
	cmd.AddCommand(policyTypesCmd(), policyCreateCmd(), policyListCmd(), policyShowCmd(), policyUpdateCmd(), policyDeleteCmd(),
		policyAttachCmd(), policyDetachCmd(), policyToggleCmd(true), policyToggleCmd(false), policyBindingsCmd(), receiverCmd())
	return cmd
}

func policyTypesCmd() *cobra.Command {
	return &cobra.Command{
		Use: "types [NAME]", Short: "List the policy types, or document one (properties, defaults, example)", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				var out api.PolicyTypeResponse
				if _, err := c.Do(cmd.Context(), "GET", api.Prefix+"/policy_types/"+url.PathEscape(args[0]), nil, &out); err != nil {
					return err
				}
				if jsonOutput(cmd) {
					return printJSON(out)
				}
				d := out.PolicyType
				fmt.Printf("%s: %s\n\n%s\n\n", d.Name, d.Summary, d.Doc)
				w := table("PROPERTY", "TYPE", "DEFAULT", "CONSTRAINTS", "DOC")
				for _, p := range d.Properties {
					def := "-"
					if p.Default != nil {
						b, _ := json.Marshal(p.Default)
						def = string(b)
					}
					if p.Required {
						def = "(required)"
					}
					row(w, p.Name, p.Type, def, polDash(p.Constraints), p.Doc)
				}
				_ = w.Flush()
				ex, _ := json.MarshalIndent(d.Example, "", "  ")
				fmt.Printf("\nExample spec:\n%s\n", ex)
				return nil
			}
			var out api.PolicyTypeList
			if _, err := c.Do(cmd.Context(), "GET", api.Prefix+"/policy_types", nil, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			w := table("NAME", "SUMMARY")
			for _, d := range out.PolicyTypes {
				row(w, d.Name, d.Summary)
			}
			return w.Flush()
		},
	}
}

// readSpec reads a spec document from a file ("-": standard input).
func readSpec(path string) (json.RawMessage, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %w", path, err)
	}
	if s, ok := probe["spec"]; ok { // a whole creation body: take its spec
		return s, nil
	}
	return b, nil
}

func printPolicy(p api.PolicyView) {
	fmt.Printf("Policy %s  %q  %s-%s  revision %d", p.ID, p.Name, p.Type, p.Version, p.Revision)
	if p.Builtin {
		fmt.Print("  (built in)")
	}
	fmt.Println()
	if len(p.AttachedTo) > 0 {
		fmt.Printf("Attached to: %s\n", strings.Join(p.AttachedTo, ", "))
	}
	props, _ := json.MarshalIndent(p.Spec.Properties, "", "  ")
	fmt.Printf("Properties: %s\n", props)
}

func policyCreateCmd() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use: "create NAME -f SPEC.json", Short: "Create a policy from a spec ({\"type\", \"version\", \"properties\"})", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			spec, err := readSpec(file)
			if err != nil {
				return err
			}
			var out api.PolicyResponse
			if _, err := c.Do(cmd.Context(), "POST", api.Prefix+"/policies", map[string]any{"name": args[0], "spec": spec}, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			printPolicy(out.Policy)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the spec (JSON; - for standard input)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func policyListCmd() *cobra.Command {
	var typ string
	cmd := &cobra.Command{
		Use: "list", Short: "List the policies you may see (built-in ones too)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			q := url.Values{}
			if typ != "" {
				q.Set("type", typ)
			}
			var all []api.PolicyView
			for {
				var out api.PolicyList
				if _, err := c.Do(cmd.Context(), "GET", api.Prefix+"/policies?"+q.Encode(), nil, &out); err != nil {
					return err
				}
				all = append(all, out.Policies...)
				if out.NextMarker == "" {
					break
				}
				q.Set("marker", out.NextMarker)
			}
			if jsonOutput(cmd) {
				return printJSON(map[string]any{"policies": all})
			}
			w := table("ID", "NAME", "TYPE", "REVISION", "ATTACHED TO")
			for _, p := range all {
				name := p.Name
				if p.Builtin {
					name += " (built in)"
				}
				row(w, p.ID, name, p.Type+"-"+p.Version, p.Revision, polDash(strings.Join(p.AttachedTo, ",")))
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "only this type, e.g. straas.policy.health")
	return cmd
}

func policyShowCmd() *cobra.Command {
	return &cobra.Command{
		Use: "show ID", Short: "Show a policy", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var out api.PolicyResponse
			if _, err := c.Do(cmd.Context(), "GET", api.Prefix+"/policies/"+url.PathEscape(args[0]), nil, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			printPolicy(out.Policy)
			return nil
		},
	}
}

func policyUpdateCmd() *cobra.Command {
	var file, name string
	cmd := &cobra.Command{
		Use: "update ID [--name NAME] [-f SPEC.json]", Short: "Rename a policy or give it a new spec (a new revision)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			body := map[string]any{}
			if name != "" {
				body["name"] = name
			}
			if file != "" {
				spec, err := readSpec(file)
				if err != nil {
					return err
				}
				body["spec"] = spec
			}
			if len(body) == 0 {
				return fmt.Errorf("nothing to update: give --name or -f")
			}
			var out api.PolicyResponse
			if _, err := c.Do(cmd.Context(), "PUT", api.Prefix+"/policies/"+url.PathEscape(args[0]), body, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			printPolicy(out.Policy)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the new spec (JSON; - for standard input)")
	cmd.Flags().StringVar(&name, "name", "", "the new name")
	return cmd
}

func policyDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use: "delete ID", Short: "Delete a policy attached to no component", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", api.Prefix+"/policies/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			if !jsonOutput(cmd) {
				fmt.Printf("policy %s deleted\n", args[0])
			}
			return nil
		},
	}
}

func printBinding(b api.BindingView) {
	state := "enabled"
	if !b.Enabled {
		state = "disabled"
	}
	fmt.Printf("policy %s (%s, %s) on component %s: %s\n", b.PolicyID, b.PolicyName, b.PolicyType, b.ComponentID, state)
}

func policyAttachCmd() *cobra.Command {
	var disabled bool
	cmd := &cobra.Command{
		Use: "attach COMPONENT_ID POLICY_ID", Short: "Attach a policy to a component", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var out api.BindingResponse
			if _, err := c.Do(cmd.Context(), "POST", api.Prefix+"/components/"+url.PathEscape(args[0])+"/policies",
				map[string]any{"policy_id": args[1], "enabled": !disabled}, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			printBinding(out.Binding)
			return nil
		},
	}
	cmd.Flags().BoolVar(&disabled, "disabled", false, "attach it disabled")
	return cmd
}

func policyDetachCmd() *cobra.Command {
	return &cobra.Command{
		Use: "detach COMPONENT_ID POLICY_ID", Short: "Detach a policy from a component", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", api.Prefix+"/components/"+url.PathEscape(args[0])+"/policies/"+url.PathEscape(args[1]), nil, nil); err != nil {
				return err
			}
			if !jsonOutput(cmd) {
				fmt.Printf("policy %s detached from component %s\n", args[1], args[0])
			}
			return nil
		},
	}
}

func policyToggleCmd(enable bool) *cobra.Command {
	verb := map[bool]string{true: "enable", false: "disable"}[enable]
	return &cobra.Command{
		Use: verb + " COMPONENT_ID POLICY_ID", Short: strings.ToUpper(verb[:1]) + verb[1:] + " a policy attached to a component", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var out api.BindingResponse
			if _, err := c.Do(cmd.Context(), "PUT", api.Prefix+"/components/"+url.PathEscape(args[0])+"/policies/"+url.PathEscape(args[1]),
				map[string]any{"enabled": enable}, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			printBinding(out.Binding)
			return nil
		},
	}
}

func policyBindingsCmd() *cobra.Command {
	return &cobra.Command{
		Use: "bindings COMPONENT_ID", Short: "List the policies attached to a component", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var out api.BindingList
			if _, err := c.Do(cmd.Context(), "GET", api.Prefix+"/components/"+url.PathEscape(args[0])+"/policies", nil, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			w := table("POLICY", "NAME", "TYPE", "REVISION", "ENABLED")
			for _, b := range out.Bindings {
				row(w, b.PolicyID, b.PolicyName, b.PolicyType, b.Revision, b.Enabled)
			}
			return w.Flush()
		},
	}
}

// --- receivers ------------------------------------------------------------------------

func receiverCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "receiver", Aliases: []string{"receivers"}, Short: "Receivers: signed URLs that scale a component without a token"}
	var comp, action string
	var count int
	create := &cobra.Command{
		Use: "create NAME --component ID --action scale_out|scale_in [--count N]", Short: "Create a receiver and print its URL", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			body := map[string]any{"name": args[0], "component_id": comp, "action": action}
			if count > 0 {
				body["params"] = map[string]any{"count": count}
			}
			var out api.ReceiverResponse
			if _, err := c.Do(cmd.Context(), "POST", api.Prefix+"/receivers", body, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			fmt.Printf("receiver %s (%s on component %s)\nURL (POST it; keep it secret): %s\n", out.Receiver.ID, out.Receiver.Action, out.Receiver.ComponentID, out.Receiver.URL)
			return nil
		},
	}
	create.Flags().StringVar(&comp, "component", "", "the component it scales")
	create.Flags().StringVar(&action, "action", "scale_out", "scale_out or scale_in")
	create.Flags().IntVar(&count, "count", 0, "nodes per trigger (default: the scaling policy's adjustment)")
	_ = create.MarkFlagRequired("component")
	var listComp string
	list := &cobra.Command{
		Use: "list", Short: "List your receivers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			q := url.Values{}
			if listComp != "" {
				q.Set("component_id", listComp)
			}
			var out api.ReceiverList
			if _, err := c.Do(cmd.Context(), "GET", api.Prefix+"/receivers?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			w := table("ID", "NAME", "ACTION", "COMPONENT", "TRIGGERED", "LAST")
			for _, v := range out.Receivers {
				last := "-"
				if v.LastTriggered != nil {
					last = v.LastTriggered.Local().Format(time.DateTime)
				}
				row(w, v.ID, v.Name, v.Action, v.ComponentID, v.Triggered, last)
			}
			return w.Flush()
		},
	}
	list.Flags().StringVar(&listComp, "component", "", "only this component's")
	del := &cobra.Command{
		Use: "delete ID", Short: "Delete (revoke) a receiver", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", api.Prefix+"/receivers/"+url.PathEscape(args[0]), nil, nil); err != nil {
				return err
			}
			if !jsonOutput(cmd) {
				fmt.Printf("receiver %s deleted: its URL no longer works\n", args[0])
			}
			return nil
		},
	}
	trigger := &cobra.Command{
		Use: "trigger URL", Short: "POST a receiver's URL (no token needed), as an alarm would", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := http.NewRequestWithContext(cmd.Context(), "POST", args[0], bytes.NewReader(nil))
			if err != nil {
				return err
			}
			resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode >= 300 {
				var e struct {
					Error client.Error `json:"error"`
				}
				if json.Unmarshal(b, &e) == nil && e.Error.Status != 0 {
					return &e.Error
				}
				return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
			}
			if jsonOutput(cmd) {
				_, err := os.Stdout.Write(b)
				return err
			}
			var out api.TriggerAccepted
			_ = json.Unmarshal(b, &out)
			fmt.Printf("%s; action %s\n", out.Decision.Reason, out.Action.ID)
			return nil
		},
	}
	cmd.AddCommand(create, list, del, trigger)
	return cmd
}

func polDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
