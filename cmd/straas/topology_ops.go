package main

import (
	"encoding/json"
	"fmt"
	"net/url"

	"github.com/spf13/cobra"
)

// topologyOpsCmds are the lifecycle commands of topologies: guest commands on every node
// and the topology's model in the CMDB.
func topologyOpsCmds() []*cobra.Command {
	return []*cobra.Command{groupCmd("topology"), cmsCmd()}
}

func cmsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "cms", Short: "The topology's model in the CMDB: create, show, sync, delete"}
	verbs := []struct{ use, method, short string }{
		{"create", "POST", "Create the topology's model in the CMDB"},
		{"show", "GET", "Show the topology's model in the CMDB"},
		{"sync", "PUT", "Re-sync the topology's model from straas's records"},
		{"delete", "DELETE", "Remove the topology's model from the CMDB"},
	}
	for _, v := range verbs {
		v := v
		cmd.AddCommand(&cobra.Command{
			Use: v.use + " TOPOLOGY_ID", Short: v.short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := apiClient(cmd)
				if err != nil {
					return err
				}
				var raw json.RawMessage
				if _, err := c.Do(cmd.Context(), v.method, "/straas/v1.0/topologies/"+url.PathEscape(args[0])+"/cms", nil, &raw); err != nil {
					return err
				}
				if v.method == "DELETE" {
					if !jsonOutput(cmd) {
						fmt.Printf("CMS model of topology %s removed\n", args[0])
					}
					return nil
				}
				var out map[string]any
				if err := json.Unmarshal(raw, &out); err != nil {
					return err
				}
				return printJSON(out)
			},
		})
	}
	return cmd
}
