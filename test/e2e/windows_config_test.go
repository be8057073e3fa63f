package e2e

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/test/harness"
)

// Maintenance windows of configuration changes and upgrades: a user's rolling change is
// disruptive and not urgent, so it waits for the component's next window and says so on
// its action; ignore_windows runs it at once; reconfigurations that follow a change of
// membership are urgent and never wait.

// wcDaily is a window that opens every day at at (UTC) for an hour.
func wcDaily(at time.Time) map[string]any {
	return map[string]any{"maintenance_windows": []map[string]string{
		{"cron": fmt.Sprintf("%d %d * * *", at.Minute(), at.Hour()), "duration": "1h"}}}
}

// wcWaiting polls an action until its config_change/wait_window stage runs, and returns it.
func wcWaiting(t *testing.T, c *client.Client, actionID string, within time.Duration) client.Stage {
	t.Helper()
	var st client.Stage
	harness.Eventually(t, within, "action "+actionID+" waits for the maintenance window", func() bool {
		a, err := c.Action(t.Context(), actionID)
		if err != nil {
			t.Fatalf("action %s: %v", actionID, err)
		}
		if a.Status != "RUNNING" && a.Status != "PENDING" {
			t.Fatalf("action %s is %s before its window opened:\n%s", actionID, a.Status, lcStages(a))
		}
		var ok bool
		st, ok = lcStage(a, "", "config_change/wait_window")
		return ok && st.Status == "RUNNING"
	})
	return st
}

// TestConfigApplyWaitsForWindow: outside its component's maintenance window an apply
// that rolls nodes waits, the action saying until when, and rolls once the window opens;
// with ignore_windows it rolls at once; an apply that changes nothing and a flexup's
// reconfiguration of the ensemble do not wait.
func TestConfigApplyWaitsForWindow(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	topo := lcCreate(t, c, zkBody("cfgw-1", 1))
	zk := lcComp(t, topo, "zk")
	branch := topo.ConfigBranch
	userFile := treePath(branch, "app/zookeeper/3.4.6/user.json")
	var w configWritten
	cfgMust(t, c, "PUT", userFile, userJSON("zookeeper", map[string]any{"tick_time": 3000}), &w)

	// The window opens at the next whole minute that leaves time to see the wait.
	now := time.Now().UTC()
	opens := now.Truncate(time.Minute).Add(time.Minute)
	if opens.Sub(now) < 8*time.Second {
		opens = opens.Add(time.Minute)
	}
	plSetOp(t, c, "component", zk.ID, wcDaily(opens))
	var applied configApplied
	cfgMust(t, c, "PUT", v1+"/components/"+zk.ID+"/tree/"+url.PathEscape(branch), nil, &applied)
	if applied.Action == nil || applied.Plan.ToRoll != 1 {
		t.Fatalf("apply: %+v", applied)
	}
	st := wcWaiting(t, c, applied.Action.ID, 5*time.Second)
	if want := "opens at " + opens.Format(time.RFC3339); !strings.Contains(st.Detail, want) || !strings.Contains(st.Detail, "not urgent") {
		t.Errorf("wait stage says %q, want it to say it is not urgent and %q", st.Detail, want)
	}
	if n := lcNode(t, lcComp(t, lcTopo(t, c, topo.ID), "zk"), 1); n.ConfigRef == w.Commit || lcSection(n, "zookeeper", "tick_time") == "3000" {
		t.Errorf("node %s got the change before the window opened (ref %s)", n.Name, n.ConfigRef)
	}
	evs := plEvents(t, c, url.Values{"topology_id": {topo.ID}, "type": {"maintenance.deferred"}, "action_id": {applied.Action.ID}})
	if len(evs) != 1 || fmt.Sprint(evs[0].Data["opens_at"]) != opens.Format(time.RFC3339) {
		t.Errorf("maintenance.deferred events %+v, want one saying it opens at %s", evs, opens.Format(time.RFC3339))
	}

	// The window opens: the roll runs.
	a := harness.WaitAction(t, c, applied.Action.ID, time.Until(opens)+60*time.Second)
	lcSucceeded(t, a)
	n := lcNode(t, lcComp(t, lcTopo(t, c, topo.ID), "zk"), 1)
	if n.ConfigRef != w.Commit || lcSection(n, "zookeeper", "tick_time") != "3000" {
		t.Errorf("after the window opened, node %s has ref %s tick_time %s; want %s and 3000", n.Name, n.ConfigRef, lcSection(n, "zookeeper", "tick_time"), w.Commit)
	}
	waited, _ := lcStage(a, "zk", "config_change/wait_window")
	roll, ok := lcStage(a, "zk", "config_change/"+n.Name)
	if waited.Status != "SUCCEEDED" || !strings.Contains(waited.Detail, "is open until") || !ok || roll.StartedAt.Before(opens) {
		t.Errorf("the node rolled before its window opened at %s:\n%s", opens.Format(time.RFC3339), lcStages(a))
	}

	// The window is two hours away now: ignore_windows rolls at once.
	plSetOp(t, c, "component", zk.ID, wcDaily(time.Now().UTC().Add(2*time.Hour)))
	cfgMust(t, c, "PUT", userFile, userJSON("zookeeper", map[string]any{"tick_time": 4000}), &w)
	_, a = apply(t, c, zk.ID, branch, "ignore_windows=true")
	lcSucceeded(t, a)
	if _, ok := lcStage(a, "zk", "config_change/wait_window"); ok {
		t.Errorf("an apply with ignore_windows waited:\n%s", lcStages(a))
	}
	if n := lcNode(t, lcComp(t, lcTopo(t, c, topo.ID), "zk"), 1); n.ConfigRef != w.Commit {
		t.Errorf("after ignore_windows, node %s has ref %s, want %s", n.Name, n.ConfigRef, w.Commit)
	}
	// The same ref again rolls no node: nothing disruptive, nothing to wait for.
	_, a = apply(t, c, zk.ID, branch, "")
	lcSucceeded(t, a)
	if _, ok := lcStage(a, "zk", "config_change/wait_window"); ok {
		t.Errorf("an apply that changes nothing waited:\n%s", lcStages(a))
	}

	// A flexup's reconfiguration of the ensemble is urgent: the window does not hold it.
	a = lcStart(t, c, "POST", lcAPI+"/components/"+zk.ID, map[string]any{"count": 1})
	lcSucceeded(t, a)
	if _, ok := lcStage(a, "zk", "config_change/wait_window"); ok {
		t.Errorf("a flexup's reconfiguration waited for the window:\n%s", lcStages(a))
	}
	if _, ok := lcStage(a, "zk", "config_change/"+n.Name); !ok {
		t.Errorf("the flexup did not reconfigure %s:\n%s", n.Name, lcStages(a))
	}
}

// TestUpgradeWaitsForWindow: an upgrade outside the component's window waits, saying
// so, and installs nothing; with ignore_windows it runs at once.
func TestUpgradeWaitsForWindow(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	c := s.Client(t, "demo")
	later := wcDaily(time.Now().UTC().Add(2 * time.Hour))
	waits := lcComp(t, lcCreate(t, c, zkBody("upgw-1", 1)), "zk")
	now := lcComp(t, lcCreate(t, c, zkBody("upgw-2", 1)), "zk")
	plSetOp(t, c, "component", waits.ID, later)
	plSetOp(t, c, "component", now.ID, later)

	var up struct {
		Component struct{ Version, Status string }
		Action    struct{ ID string }
	}
	cfgMust(t, c, "PUT", v1+"/components/"+waits.ID, map[string]any{"version": "3.5.9"}, &up)
	waiting := up.Action.ID
	st := wcWaiting(t, c, waiting, 5*time.Second)
	if !strings.Contains(st.Detail, "upgrade of component zk to 3.5.9") || !strings.Contains(st.Detail, "opens at") {
		t.Errorf("wait stage says %q", st.Detail)
	}
	// Meanwhile, the same upgrade told to ignore the window runs at once.
	cfgMust(t, c, "PUT", v1+"/components/"+now.ID+"?ignore_windows=true", map[string]any{"version": "3.5.9"}, &up)
	a := harness.WaitAction(t, c, up.Action.ID, 60*time.Second)
	lcSucceeded(t, a)
	if _, ok := lcStage(a, "zk", "config_change/wait_window"); ok {
		t.Errorf("an upgrade with ignore_windows waited:\n%s", lcStages(a))
	}
	if n := lcNode(t, componentNamed(t, c, now.TopologyID, "zk"), 1); n.InstalledVersion != "3.5.9" {
		t.Errorf("node %s runs %s after the upgrade, want 3.5.9", n.Name, n.InstalledVersion)
	}
	// The first still waits, and has installed nothing.
	a, err := c.Action(t.Context(), waiting)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := lcStage(a, "zk", "config_change/pre_config"); ok || a.Status != "RUNNING" {
		t.Errorf("the waiting upgrade planned or ended (%s):\n%s", a.Status, lcStages(a))
	}
	if n := lcNode(t, componentNamed(t, c, waits.TopologyID, "zk"), 1); n.InstalledVersion != "3.4.6" {
		t.Errorf("node %s installed %s while its upgrade waited", n.Name, n.InstalledVersion)
	}
}
