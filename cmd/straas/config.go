package main

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/shared/gitrepo"
	"github.com/straas/straas/shared/stages"
)

// configCmd is `straas config`: the configuration management API (seed 000 §4.1.1.2) and
// applying configuration to a component.
func configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Aliases: []string{"configuration", "cfg"},
		Short: "Read, change, tag and apply the git-backed configuration",
		Long: `The config repo holds service/ (straas's own settings) and app/<type>/<version>/
(default.json, and user.json on each topology's branch <name>@<az>). A ref is a branch
(master, test-1@az1), <branch>&<tag>, or a commit. Every change is a commit authored by
you; apply rolls a ref onto a component's nodes one at a time. See docs/configuration.md.`}
	cmd.AddCommand(configGetCmd(), configPutCmd(), configTagsCmd(), configTagCmd(), configUntagCmd(), configApplyCmd())
	return cmd
}

func treeURL(ref, p string) string {
	return api.Prefix + "/configurations/tree/" + url.PathEscape(ref) + "/" + strings.TrimPrefix(p, "/")
}

func configGetCmd() *cobra.Command {
	return &cobra.Command{
		Use: "get REF [PATH]", Short: "List a folder, or print a file, of the config repo at a ref", Args: cobra.RangeArgs(1, 2),
		Example: "  straas config get master app/kafka\n  straas config get demo-1@az1 app/kafka/2.8.1/user.json",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			p := ""
			if len(args) == 2 {
				p = args[1]
			}
			var e api.ConfigEntry
			if _, err := c.Do(cmd.Context(), "GET", treeURL(args[0], p), nil, &e); err != nil {
				return err
			}
			return printEntry(cmd, e)
		},
	}
}

// printEntry prints a file's content as is, or a folder as a table.
func printEntry(cmd *cobra.Command, e api.ConfigEntry) error {
	if jsonOutput(cmd) {
		return printJSON(e)
	}
	if e.Type == gitrepo.EntryFile && e.Content != nil {
		fmt.Print(*e.Content)
		if !strings.HasSuffix(*e.Content, "\n") {
			fmt.Println()
		}
		return nil
	}
	fmt.Printf("%s at %s (%s)\n", orRoot(e.Path), e.Ref, short(e.Commit))
	w := table("NAME", "TYPE", "SIZE")
	for _, f := range e.Files {
		size := "-"
		if f.Type == gitrepo.EntryFile {
			size = fmt.Sprint(f.Size)
		}
		row(w, f.Name, f.Type, size)
	}
	return w.Flush()
}

func orRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

func configPutCmd() *cobra.Command {
	var file, content, message string
	cmd := &cobra.Command{
		Use: "put BRANCH PATH (-f FILE | --content TEXT)", Short: "Commit a file of the config repo (you are the author)", Args: cobra.ExactArgs(2),
		Long: `put commits one file. JSON-ini files are validated (a bad field is named); users may
change only the user-changeable keys of app/<type>/<version>/user.json on their own
topologies' branches.`,
		Example: "  straas config get demo-1@az1 app/kafka/2.8.1/user.json > user.json\n  $EDITOR user.json\n" +
			"  straas config put demo-1@az1 app/kafka/2.8.1/user.json -f user.json -m 'more partitions'",
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case file != "" && content != "":
				return fmt.Errorf("give -f or --content, not both")
			case file == "-":
				b, err := io.ReadAll(os.Stdin)
				if err != nil {
					return err
				}
				content = string(b)
			case file != "":
				b, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				content = string(b)
			case content == "":
				return fmt.Errorf("give the new content with -f FILE (- for stdin) or --content TEXT")
			}
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var out api.ConfigWritten
			if _, err := c.Do(cmd.Context(), "PUT", treeURL(args[0], args[1]), map[string]string{"content": content, "message": message}, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			fmt.Printf("committed %s to %s: %s\n", out.Path, out.Branch, out.Commit)
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "file with the new content (- for stdin)")
	cmd.Flags().StringVar(&content, "content", "", "the new content")
	cmd.Flags().StringVarP(&message, "message", "m", "", "commit message")
	return cmd
}

func tagsURL(branch string) string {
	return api.Prefix + "/configurations/tree/" + url.PathEscape(branch) + "/tags"
}

func configTagsCmd() *cobra.Command {
	return &cobra.Command{
		Use: "tags BRANCH", Short: "List the tags of a branch", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var out api.ConfigTagList
			if _, err := c.Do(cmd.Context(), "GET", tagsURL(args[0]), nil, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			w := table("TAG", "REF", "ROLE", "COMMIT", "BY", "DATE", "MESSAGE")
			for _, t := range out.Tags {
				row(w, t.Name, t.Ref, t.Role, short(t.Commit), t.Tagger.Name, t.Date.Local().Format("2006-01-02 15:04"), t.Message)
			}
			return w.Flush()
		},
	}
}

func configTagCmd() *cobra.Command {
	var message string
	cmd := &cobra.Command{
		Use: "tag BRANCH TAG", Short: "Tag the head of a branch (apply BRANCH&TAG later to roll back to it)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var out api.ConfigTagResponse
			if _, err := c.Do(cmd.Context(), "POST", tagsURL(args[0]), map[string]string{"tag": args[1], "message": message}, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			fmt.Printf("tagged %s at %s (git tag %s)\n", out.Tag.Ref, out.Tag.Commit, out.Tag.GitName)
			return nil
		},
	}
	cmd.Flags().StringVarP(&message, "message", "m", "", "tag message")
	return cmd
}

func configUntagCmd() *cobra.Command {
	return &cobra.Command{
		Use: "untag BRANCH TAG", Short: "Delete a tag of a branch", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			if _, err := c.Do(cmd.Context(), "DELETE", tagsURL(args[0])+"/"+url.PathEscape(args[1]), nil, nil); err != nil {
				return err
			}
			if !jsonOutput(cmd) {
				fmt.Printf("deleted tag %s of %s\n", args[1], args[0])
			}
			return nil
		},
	}
}

func configApplyCmd() *cobra.Command {
	var dryRun, wait bool
	var restart string
	var parallel int
	cmd := &cobra.Command{
		Use: "apply COMPONENT_ID REF", Short: "Roll a config ref onto a component's nodes, one at a time", Args: cobra.ExactArgs(2),
		Long: `apply re-runs pre-config for the component and rolls the nodes whose configuration
changes, one at a time: pre_configure, configure, restart (only where an option marked
restart_required changed, unless --restart says otherwise), validate. A failed validate
stops the roll; the action names the node. Roll back by applying an earlier tag
(BRANCH&TAG). --dry-run shows the diff per node and changes nothing.`,
		Example: "  straas config apply comp-... demo-1@az1 --dry-run\n  straas config apply comp-... demo-1@az1 --wait\n" +
			"  straas config apply comp-... 'demo-1@az1&before' --wait   # roll back",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			q := url.Values{}
			if dryRun {
				q.Set("dry_run", "true")
			}
			if restart != "" {
				q.Set("restart", restart)
			}
			if parallel > 0 {
				q.Set("parallel", fmt.Sprint(parallel))
			}
			p := api.Prefix + "/components/" + url.PathEscape(args[0]) + "/tree/" + url.PathEscape(args[1])
			if len(q) > 0 {
				p += "?" + q.Encode()
			}
			var out api.ConfigApplied
			if _, err := c.Do(cmd.Context(), "PUT", p, nil, &out); err != nil {
				return err
			}
			return reportChange(cmd, c, out.Action, out.Plan, wait)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only show what would change on each node")
	cmd.Flags().StringVar(&restart, "restart", "", "changed (default), all or none")
	cmd.Flags().IntVar(&parallel, "parallel", 0, "nodes rolled at once (default 1; a quorum type keeps a majority up)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the roll to end, showing progress")
	return cmd
}

// reportChange prints a change's plan, then waits for its action if asked.
func reportChange(cmd *cobra.Command, c *client.Client, ref *api.ActionRef, plan stages.ConfigPlan, wait bool) error {
	if jsonOutput(cmd) && !wait {
		return printJSON(map[string]any{"action": ref, "plan": plan})
	}
	if !jsonOutput(cmd) {
		printConfigPlan(plan)
	}
	if ref == nil {
		return nil
	}
	if !jsonOutput(cmd) {
		fmt.Printf("action %s\n", ref.ID)
	}
	if !wait {
		return nil
	}
	a, err := waitAction(cmd, c, ref.ID, "")
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
}

// printConfigPlan shows what a configuration change does to each node.
func printConfigPlan(p stages.ConfigPlan) {
	fmt.Printf("component %s (%s %s): %s at %s: %d nodes to roll (%d restarted), %d unchanged, %d skipped; %d at a time\n",
		p.Component, p.Type, p.Version, p.Ref, short(p.Commit), p.ToRoll, p.ToRestart, p.Unchanged, p.Skipped, p.Parallel)
	w := table("NODE", "ROLL", "RESTART", "CHANGES")
	for _, n := range p.Nodes {
		var ch []string
		if n.Install != "" {
			ch = append(ch, "install "+n.Install)
		}
		if n.First {
			ch = append(ch, "first configuration")
		}
		if n.Incomplete {
			ch = append(ch, "incomplete earlier roll")
		}
		for _, k := range n.Changes {
			ch = append(ch, fmt.Sprintf("%s: %v -> %v", k.Key, cfgOrNone(k.From), cfgOrNone(k.To)))
		}
		if n.Skipped != "" {
			ch = append(ch, "skipped: "+n.Skipped)
		}
		if len(ch) == 0 {
			ch = append(ch, "-")
		}
		row(w, n.Name, cfgYesNo(n.Roll), cfgYesNo(n.Restart), strings.Join(ch, "; "))
	}
	_ = w.Flush()
}

func cfgOrNone(v any) any {
	if v == nil {
		return "(none)"
	}
	return v
}

func cfgYesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
