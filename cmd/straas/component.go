package main

import (
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

func componentCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "component", Aliases: []string{"components"}, Short: "Component types and flavors"}
	types := &cobra.Command{
		Use: "types", Short: "List the component types straas knows (from the script repo)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			ts, err := c.ComponentTypes(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(map[string]any{"components": ts})
			}
			w := table("TYPE", "VERSIONS", "ROLES", "DEFAULT FLAVOR")
			for _, t := range ts {
				row(w, t.Type, strings.Join(t.Versions, ","), strings.Join(t.Roles, ","), t.DefaultFlavor)
			}
			return w.Flush()
		},
	}
	var az string
	flavors := &cobra.Command{
		Use: "flavors TYPE", Short: "List the Nova flavors a component type can use", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			path := "/straas/v1.0/components/" + url.PathEscape(args[0]) + "/nova_flavors"
			if az != "" {
				path += "?availability_zone=" + url.QueryEscape(az)
			}
			var out struct {
				Default string `json:"default_flavor"`
				Flavors []struct {
					ID    string `json:"id"`
					Name  string `json:"name"`
					VCPUs int    `json:"vcpus"`
					RAM   int    `json:"ram"`
					Disk  int    `json:"disk"`
				} `json:"flavors"`
			}
			if _, err := c.Do(cmd.Context(), "GET", path, nil, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			w := table("NAME", "VCPUS", "RAM(MiB)", "DISK(GiB)", "DEFAULT")
			for _, f := range out.Flavors {
				def := ""
				if f.Name == out.Default {
					def = "*"
				}
				row(w, f.Name, f.VCPUs, f.RAM, f.Disk, def)
			}
			return w.Flush()
		},
	}
	flavors.Flags().StringVar(&az, "az", "", "availability zone (default: the first)")
	cmd.AddCommand(types, flavors)
	cmd.AddCommand(componentOpsCmds()...)
	return cmd
}
