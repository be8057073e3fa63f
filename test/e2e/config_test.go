package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/test/harness"
)

// TestConfigChangeApply: a user changes his topology's user.json, sees the diff per node
// (dry run), applies it, and every node gets the new configuration and ref; services are
// restarted only where a restart_required option changed; restart=none leaves nodes
// RESTART_REQUIRED until a later roll restarts them.
func TestConfigChangeApply(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo, act := create(t, c, zkBody("cfg-apply", 3), 60*time.Second)
	if act.Status != "SUCCEEDED" {
		t.Fatalf("creation %s: %+v", act.Status, act.Error)
	}
	zk := componentNamed(t, c, topo.ID, "zk")
	branch := topo.ConfigBranch
	userFile := treePath(branch, "app/zookeeper/3.4.6/user.json")

	// A restart_required option (tick_time) and one that is not (autopurge_snap_retain_count).
	var w configWritten
	cfgMust(t, c, "PUT", userFile, userJSON("zookeeper", map[string]any{"tick_time": 3000, "autopurge_snap_retain_count": 5}), &w)
	if w.Commit == "" || w.Branch != branch {
		t.Fatalf("write answered %+v", w)
	}

	// Dry run: the diff per node, nothing changes.
	var dry configApplied
	if st, err := cfgCall(t, c, "PUT", v1+"/components/"+zk.ID+"/tree/"+branch+"?dry_run=true", nil, &dry); st != 202 {
		t.Fatalf("dry run: %d %v", st, err)
	}
	if !dry.DryRun || dry.Action != nil || dry.Plan.Commit != w.Commit || dry.Plan.ToRoll != 3 || dry.Plan.ToRestart != 3 || dry.Plan.Parallel != 1 {
		t.Fatalf("dry run plan: %+v", dry)
	}
	for _, n := range dry.Plan.Nodes {
		var ks []string
		for _, ch := range n.Changes {
			ks = append(ks, ch.Key)
		}
		if strings.Join(ks, ",") != "zookeeper.autopurge_snap_retain_count,zookeeper.tick_time" || !n.RestartRequired || !n.Roll || !n.Restart {
			t.Errorf("dry run, node %s: %+v", n.Name, n)
		}
		if n.Changes[1].From != float64(2000) || n.Changes[1].To != float64(3000) {
			t.Errorf("dry run, node %s: tick_time %v -> %v, want 2000 -> 3000", n.Name, n.Changes[1].From, n.Changes[1].To)
		}
	}
	for _, n := range componentNamed(t, c, topo.ID, "zk").Nodes {
		if n.ConfigRef == w.Commit {
			t.Errorf("node %s has the new ref after a dry run", n.Name)
		}
	}

	// Rolling zookeeper 3 at a time would lose its quorum: a majority stays up.
	if st, err := cfgCall(t, c, "PUT", v1+"/components/"+zk.ID+"/tree/"+branch+"?dry_run=true&parallel=3", nil, &dry); st != 202 || dry.Plan.Parallel != 1 {
		t.Errorf("dry run with parallel=3: %d %v, %d at a time, want 1", st, err, dry.Plan.Parallel)
	}

	// Apply: 202 with the action; every node rolled with a restart.
	applied, a := apply(t, c, zk.ID, branch, "")
	if a.Status != "SUCCEEDED" || a.Kind != "change_config" || a.ComponentID != zk.ID {
		t.Fatalf("apply: %s %s %+v", a.Kind, a.Status, a.Error)
	}
	if applied.Plan.ToRoll != 3 {
		t.Errorf("apply's plan: %+v", applied.Plan)
	}
	for _, name := range []string{"config_change/pre_config", "config_change/done"} {
		if st, ok := stageOf(a, name); !ok || st.Status != "SUCCEEDED" {
			t.Errorf("stage %s: %+v", name, st)
		}
	}
	zk = componentNamed(t, c, topo.ID, "zk")
	for _, n := range zk.Nodes {
		st, ok := stageOf(a, "config_change/"+n.Name)
		if !ok || st.Status != "SUCCEEDED" || !strings.Contains(st.Detail, "restart") {
			t.Errorf("stage of node %s: %+v", n.Name, st)
		}
		if n.Status != "ACTIVE" || n.ConfigRef != w.Commit || n.Config == nil || n.Config.Ref != w.Commit {
			t.Errorf("node %s after apply: status %s config_ref %s", n.Name, n.Status, n.ConfigRef)
			continue
		}
		if got := fmt.Sprint(n.Config.Sections["zookeeper"]["tick_time"]); got != "3000" {
			t.Errorf("node %s: tick_time %s, want 3000", n.Name, got)
		}
		if !strings.Contains(n.Config.SitePP, "tick_time") || !strings.Contains(n.Config.SitePP, "3000") {
			t.Errorf("node %s: site.pp lacks tick_time 3000:\n%s", n.Name, n.Config.SitePP)
		}
	}

	// The same ref again: nothing to roll.
	if again, a2 := apply(t, c, zk.ID, branch, ""); a2.Status != "SUCCEEDED" || again.Plan.ToRoll != 0 {
		t.Errorf("re-apply: %s, plan %+v", a2.Status, again.Plan)
	}

	// An option without restart_required: rolled, not restarted.
	cfgMust(t, c, "PUT", userFile, userJSON("zookeeper", map[string]any{"tick_time": 3000, "autopurge_snap_retain_count": 7}), &w)
	noRestart, a := apply(t, c, zk.ID, branch, "")
	if a.Status != "SUCCEEDED" || noRestart.Plan.ToRoll != 3 || noRestart.Plan.ToRestart != 0 {
		t.Fatalf("apply without restart: %s %+v", a.Status, noRestart.Plan)
	}
	for _, n := range componentNamed(t, c, topo.ID, "zk").Nodes {
		if st, _ := stageOf(a, "config_change/"+n.Name); strings.Contains(st.Detail, "restart") {
			t.Errorf("node %s restarted for a change that needs none: %s", n.Name, st.Detail)
		}
	}

	// restart=none: nodes stay RESTART_REQUIRED; a later roll restarts them.
	cfgMust(t, c, "PUT", userFile, userJSON("zookeeper", map[string]any{"tick_time": 4000, "autopurge_snap_retain_count": 7}), &w)
	if _, a := apply(t, c, zk.ID, branch, "restart=none"); a.Status != "SUCCEEDED" {
		t.Fatalf("apply restart=none: %s %+v", a.Status, a.Error)
	}
	for _, n := range componentNamed(t, c, topo.ID, "zk").Nodes {
		if n.Status != "RESTART_REQUIRED" || n.ConfigRef != w.Commit {
			t.Errorf("node %s after restart=none: %s at %s", n.Name, n.Status, n.ConfigRef)
		}
	}
	pending, a := apply(t, c, zk.ID, branch, "")
	if a.Status != "SUCCEEDED" || pending.Plan.ToRestart != 3 {
		t.Fatalf("apply after restart=none: %s %+v", a.Status, pending.Plan)
	}
	for _, n := range componentNamed(t, c, topo.ID, "zk").Nodes {
		if n.Status != "ACTIVE" {
			t.Errorf("node %s after the restarting roll: %s", n.Name, n.Status)
		}
	}
	if got := componentNamed(t, c, topo.ID, "zk").Status; got != "ACTIVE" {
		t.Errorf("component after the changes: %s", got)
	}
}
