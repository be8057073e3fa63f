package main

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/model"
)

// eventsCmd is `straas events`: the timeline, filtered, optionally followed.
func eventsCmd() *cobra.Command {
	var topo, comp, node, action, level, typ, since, until string
	var limit int
	var follow bool
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List events (who did what, state changes, healing, scaling, alerts), filtered; --follow to keep watching",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"topology_id": topo, "component_id": comp, "node_id": node, "action_id": action, "level": level, "type": typ} {
				if v != "" {
					q.Set(k, v)
				}
			}
			for k, v := range map[string]string{"since": since, "until": until} {
				if v == "" {
					continue
				}
				t, err := parseWhen(v)
				if err != nil {
					return fmt.Errorf("--%s: %w", k, err)
				}
				q.Set(k, t.UTC().Format(time.RFC3339Nano))
			}
			if limit > 0 {
				q.Set("limit", fmt.Sprint(limit))
			}
			var all []model.Event
			seen := map[string]bool{}
			w := table("AT", "LEVEL", "TYPE", "MESSAGE")
			printed := false
			for {
				var out api.EventList
				if _, err := c.Do(cmd.Context(), "GET", api.Prefix+"/events?"+q.Encode(), nil, &out); err != nil {
					return err
				}
				for _, e := range out.Events {
					if seen[e.ID] {
						continue
					}
					seen[e.ID] = true
					if jsonOutput(cmd) {
						all = append(all, e)
						continue
					}
					row(w, e.At.Local().Format("2006-01-02 15:04:05.000"), e.Level, e.Type, e.Message)
					printed = true
				}
				if printed {
					_ = w.Flush()
				}
				if out.NextMarker != "" {
					q.Set("marker", out.NextMarker)
					continue
				}
				if !follow {
					break
				}
				// Follow: ask again for what came after the last event seen.
				q.Del("marker")
				if n := len(out.Events); n > 0 {
					q.Set("since", out.Events[n-1].At.UTC().Format(time.RFC3339Nano))
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(time.Second):
				}
			}
			if jsonOutput(cmd) {
				return printJSON(map[string]any{"events": all})
			}
			if !printed {
				_ = w.Flush()
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&topo, "topology", "", "only this topology's")
	f.StringVar(&comp, "component", "", "only this component's")
	f.StringVar(&node, "node", "", "only this node's")
	f.StringVar(&action, "action", "", "only this action's")
	f.StringVar(&level, "level", "", "info, warning, error (comma-separated)")
	f.StringVar(&typ, "type", "", "event types, e.g. node.heal,component.load (comma-separated)")
	f.StringVar(&since, "since", "", "a time (RFC 3339) or a duration ago, e.g. 10m")
	f.StringVar(&until, "until", "", "a time (RFC 3339) or a duration ago")
	f.IntVar(&limit, "limit", 0, "page size (default 100)")
	f.BoolVar(&follow, "follow", false, "keep printing new events")
	return cmd
}

// parseWhen reads an RFC 3339 time or a duration ago.
func parseWhen(s string) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return t, fmt.Errorf("want an RFC 3339 time or a duration such as 10m, got %q", s)
	}
	return t, nil
}

// cancelCmd is `straas cancel ACTION_ID`.
func cancelCmd() *cobra.Command {
	return &cobra.Command{
		Use: "cancel ACTION_ID", Short: "Cancel a pending or running action", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var out api.ActionCancelled
			if _, err := c.Do(cmd.Context(), "POST", api.Prefix+"/actions/"+url.PathEscape(args[0])+"/cancel", nil, &out); err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(out)
			}
			fmt.Printf("action %s (%s) %s\n", out.Action.ID, out.Action.Kind, strings.ToLower(out.Action.Status))
			return nil
		},
	}
}
