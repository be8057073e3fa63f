package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/shared/deps"
	"github.com/straas/straas/shared/model"
)

// addComponentTest adds `component add`, `component test` and `component upgrade` to the
// `component` command: adding a component type is committing files to the script and
// config repos (docs/adding-a-component.md), and `test` tries a candidate on an
// in-process mock cloud before it is committed anywhere real.
func addComponentTest(root *cobra.Command) {
	var comp *cobra.Command
	for _, c := range root.Commands() {
		if c.Name() == "component" {
			comp = c
		}
	}
	if comp == nil {
		comp = &cobra.Command{Use: "component", Aliases: []string{"components"}, Short: "Component types"}
		root.AddCommand(comp)
	}
	comp.AddCommand(componentAddCmd(), componentTestCmd(), componentUpgradeCmd())
}

// candidate is a component type's files: DIR/scripts/... go to the script repo,
// DIR/config/... to the config repo's master, DIR/test.json says how to try it.
type candidate struct {
	dir     string
	scripts map[string]scriptFile
	config  map[string][]byte
	types   []candidateType
	plan    testPlan
}

type scriptFile struct {
	content    []byte
	executable bool
}

// candidateType is what `component test` needs of components/<type>.json.
type candidateType struct {
	Type          string   `json:"type"`
	Versions      []string `json:"versions"`
	Roles         []string `json:"roles"`
	MinSize       int      `json:"min_size"`
	DefaultFlavor string   `json:"default_flavor"`
	Dependencies  []struct {
		Type     string `json:"type"`
		Required bool   `json:"required"`
	} `json:"dependencies"`
}

// testPlan is DIR/test.json; every part is optional.
type testPlan struct {
	// Topology is a create-topology body; default: one component per new type (of its
	// min_size, at its last version: the one a candidate usually adds) and one of each type they require.
	Topology json.RawMessage `json:"topology,omitempty"`
	// Flexup names the components to add a node to; default: those of the new types.
	Flexup []string `json:"flexup,omitempty"`
	// Config gives, per component, the user.json options to set ("section.key": value);
	// default: the first user_changeable option of the version's default.json, changed.
	Config map[string]map[string]any `json:"config,omitempty"`
}

func loadCandidate(dir string) (*candidate, error) {
	c := &candidate{dir: dir, scripts: map[string]scriptFile{}, config: map[string][]byte{}}
	walk := func(sub string, fn func(rel string, b []byte, mode fs.FileMode)) error {
		root := filepath.Join(dir, sub)
		if _, err := os.Stat(root); os.IsNotExist(err) {
			return nil
		}
		return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if strings.HasPrefix(filepath.Base(rel), ".") {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			fn(filepath.ToSlash(rel), b, info.Mode())
			return nil
		})
	}
	if err := walk("scripts", func(rel string, b []byte, mode fs.FileMode) {
		c.scripts[rel] = scriptFile{content: b, executable: mode&0o111 != 0 || strings.HasSuffix(rel, ".sh") || strings.HasPrefix(rel, "guestcmds/")}
	}); err != nil {
		return nil, err
	}
	if err := walk("config", func(rel string, b []byte, _ fs.FileMode) { c.config[rel] = b }); err != nil {
		return nil, err
	}
	if len(c.scripts) == 0 && len(c.config) == 0 {
		return nil, fmt.Errorf("%s has neither scripts/ nor config/: see docs/adding-a-component.md", dir)
	}
	for _, p := range ctSortedKeys(c.scripts) {
		if !strings.HasPrefix(p, "components/") || path.Ext(p) != ".json" {
			continue
		}
		var t candidateType
		if err := json.Unmarshal(c.scripts[p].content, &t); err != nil {
			return nil, fmt.Errorf("scripts/%s: %w", p, err)
		}
		c.types = append(c.types, t)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "test.json")); err == nil {
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c.plan); err != nil {
			return nil, fmt.Errorf("test.json: %w", err)
		}
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	return c, nil
}

func ctSortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// commit adds the candidate's files through the API: the config files first (so that
// the script repo's check finds each version's default.json), then the scripts in one
// commit. It returns what the repos still lack.
func (c *candidate) commit(ctx context.Context, cl *client.Client, message string) (string, []string, error) {
	for _, p := range ctSortedKeys(c.config) {
		body := map[string]string{"content": string(c.config[p]), "message": message + ": " + p}
		if _, err := cl.Do(ctx, "PUT", treeURL("master", p), body, nil); err != nil {
			return "", nil, fmt.Errorf("config/%s: %w", p, err)
		}
	}
	if len(c.scripts) == 0 {
		return "", nil, nil
	}
	var files []map[string]any
	for _, p := range ctSortedKeys(c.scripts) {
		f := c.scripts[p]
		files = append(files, map[string]any{"path": p, "content": string(f.content), "executable": f.executable})
	}
	var out api.ScriptsCommitted
	if _, err := cl.Do(ctx, "POST", api.Prefix+"/scripts/commits", map[string]any{"message": message, "files": files}, &out); err != nil {
		return "", nil, fmt.Errorf("scripts: %w", err)
	}
	return out.Commit, out.Problems, nil
}

func componentAddCmd() *cobra.Command {
	var message string
	cmd := &cobra.Command{
		Use: "add DIR", Short: "Add (or update) component types: commit DIR/config to the config repo and DIR/scripts to the script repo",
		Long: `add commits a component type's files through the API (admins): DIR/config/... to the
config repo's master (app/<type>/<version>/default.json, user.json), then DIR/scripts/...
to the script repo's master in one commit (components/<type>.json, cmd/<role>/<version>/,
pre_config/<type>/, puppet/, guestcmds/). The type is usable at once. Try it first with
` + "`straas component test DIR`" + `; see docs/adding-a-component.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cand, err := loadCandidate(args[0])
			if err != nil {
				return err
			}
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			if message == "" {
				message = "Add " + strings.Join(cand.typeNames(), ", ")
			}
			commit, problems, err := cand.commit(cmd.Context(), c, message)
			if err != nil {
				return err
			}
			if jsonOutput(cmd) {
				return printJSON(map[string]any{"scripts_commit": commit, "types": cand.typeNames(), "problems": problems})
			}
			fmt.Printf("committed %d config files and %d script files (%s): %s\n", len(cand.config), len(cand.scripts), short(commit), strings.Join(cand.typeNames(), ", "))
			for _, p := range problems {
				fmt.Println("problem:", p)
			}
			if len(problems) > 0 {
				return fmt.Errorf("the repos still lack %d things", len(problems))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&message, "message", "m", "", "commit message")
	return cmd
}

func (c *candidate) typeNames() []string {
	var out []string
	for _, t := range c.types {
		out = append(out, t.Type)
	}
	return out
}

func componentUpgradeCmd() *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use: "upgrade ID VERSION", Short: "Change a component's version: its nodes are rolled through install, config and validate one at a time",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			var out api.ComponentUpdated
			if _, err := c.Do(cmd.Context(), "PUT", api.Prefix+"/components/"+url.PathEscape(args[0]), map[string]string{"version": args[1]}, &out); err != nil {
				return err
			}
			ref := out.Action
			return reportChange(cmd, c, &ref, out.Plan, wait)
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the upgrade to end, showing progress")
	return cmd
}

// ctStep is one line of `component test`'s report.
type ctStep struct {
	Step   string        `json:"step"`
	Target string        `json:"target,omitempty"`
	OK     bool          `json:"ok"`
	Took   time.Duration `json:"took_ns"`
	Detail string        `json:"detail,omitempty"`
}

func componentTestCmd() *cobra.Command {
	var keep bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "test DIR",
		Short: "Try a candidate component type on an in-process mock cloud: install, configure, validate, flexup, config change",
		Long: `test starts a private straas (the embedded control plane and a mock cloud, in this
process, on a temporary data directory), commits DIR's files through its API as
` + "`straas component add`" + ` would, checks that the repos hold everything the type promises,
then creates a topology using the type (DIR/test.json, or one component per new type with
the types it requires), adds a node to each new component, changes one user-changeable
option of each and applies it, and deletes the topology. It reports each step and fails if
one did. Scripts are checked with bash -n; mock nodes run the real agent on the dummy
backend, so the scripts' effects on a host are not exercised.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cand, err := loadCandidate(args[0])
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			steps := runComponentTest(ctx, cand, keep)
			failed := 0
			for _, s := range steps {
				if !s.OK {
					failed++
				}
			}
			if jsonOutput(cmd) {
				if err := printJSON(map[string]any{"steps": steps, "failed": failed}); err != nil {
					return err
				}
			} else {
				w := table("STEP", "TARGET", "RESULT", "TOOK", "DETAIL")
				for _, s := range steps {
					res := "ok"
					if !s.OK {
						res = "FAILED"
					}
					row(w, s.Step, ctOrDash(s.Target), res, s.Took.Round(time.Millisecond), s.Detail)
				}
				_ = w.Flush()
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d steps failed", failed, len(steps))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary data directory (repos, log) and print where it is")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	return cmd
}

func ctOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// componentTester runs the steps against a private control plane.
type componentTester struct {
	ctx   context.Context
	cand  *candidate
	c     *client.Client
	steps []ctStep
}

func (t *componentTester) record(name, target string, start time.Time, err error, detail string) bool {
	s := ctStep{Step: name, Target: target, OK: err == nil, Took: time.Since(start), Detail: detail}
	if err != nil {
		s.Detail = err.Error()
	}
	t.steps = append(t.steps, s)
	return err == nil
}

func runComponentTest(ctx context.Context, cand *candidate, keep bool) []ctStep {
	t := &componentTester{ctx: ctx, cand: cand}
	start := time.Now()
	t.record("load", cand.dir, start, nil, fmt.Sprintf("%d script files, %d config files; types %s", len(cand.scripts), len(cand.config), strings.Join(cand.typeNames(), ", ")))
	t.lint()

	start = time.Now()
	dir, err := os.MkdirTemp("", "straas-component-test-")
	if err != nil {
		t.record("start", "", start, err, "")
		return t.steps
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	logf, err := os.Create(filepath.Join(dir, "straas.log"))
	if err != nil {
		t.record("start", "", start, err, "")
		return t.steps
	}
	defer logf.Close()
	runCtx, stop := context.WithCancel(ctx)
	e, err := deps.New(runCtx, deps.Config{DataDir: dir, Listen: "127.0.0.1:0", CloudListen: "127.0.0.1:0", CNs: 6, HeartbeatSeconds: 1,
		StageTimeout: time.Minute, Logger: slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		stop()
		t.record("start", "", start, err, "")
		return t.steps
	}
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	defer func() { stop(); <-done }()
	select {
	case <-e.Ready():
	case err := <-done:
		done <- err
		t.record("start", "", start, fmt.Errorf("the control plane stopped: %v", err), "")
		return t.steps
	case <-ctx.Done():
		t.record("start", "", start, ctx.Err(), "")
		return t.steps
	}
	tok, _, err := client.Login(ctx, e.CloudURL+"/identity/v3", "admin", "admin", "admin", "")
	if err != nil {
		t.record("start", "", start, err, "")
		return t.steps
	}
	t.c = client.New(e.APIURL, tok)
	where := "an in-process straas"
	if keep {
		where += " in " + dir
	}
	t.record("start", e.APIURL, start, nil, where)

	start = time.Now()
	commit, problems, err := cand.commit(ctx, t.c, "component test: add "+strings.Join(cand.typeNames(), ", "))
	if !t.record("commit", "config and script repos", start, err, "script repo at "+short(commit)) {
		return t.steps
	}
	var perr error
	if len(problems) > 0 {
		perr = fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	if !t.record("verify", "repos", time.Now(), perr, "every type, version and role has its scripts, install metadata, pre-config and default.json") {
		return t.steps
	}
	t.topology()
	return t.steps
}

// lint checks what can be checked without running anything: JSON files parse, shell
// scripts pass bash -n.
func (t *componentTester) lint() {
	start := time.Now()
	var bad []string
	checkJSON := func(name string, b []byte) {
		if path.Ext(name) == ".json" && !json.Valid(b) {
			bad = append(bad, name+": not valid JSON")
		}
	}
	for p, f := range t.cand.scripts {
		checkJSON("scripts/"+p, f.content)
	}
	for p, b := range t.cand.config {
		checkJSON("config/"+p, b)
	}
	shells := 0
	if bash, err := exec.LookPath("bash"); err == nil {
		for _, p := range ctSortedKeys(t.cand.scripts) {
			f := t.cand.scripts[p]
			if !f.executable || !(strings.HasPrefix(string(f.content), "#!/bin/sh") || strings.HasPrefix(string(f.content), "#!/bin/bash") ||
				strings.HasPrefix(string(f.content), "#!/usr/bin/env bash") || strings.HasSuffix(p, ".sh")) {
				continue
			}
			shells++
			cmd := exec.CommandContext(t.ctx, bash, "-n")
			cmd.Stdin = strings.NewReader(string(f.content))
			if out, err := cmd.CombinedOutput(); err != nil {
				bad = append(bad, fmt.Sprintf("scripts/%s: %s", p, strings.TrimSpace(string(out))))
			}
		}
	}
	sort.Strings(bad)
	var err error
	if len(bad) > 0 {
		err = fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	t.record("lint", "files", start, err, fmt.Sprintf("JSON parses; %d shell scripts pass bash -n", shells))
}

// topology creates the test topology, flexes the new components up, changes their
// configuration and deletes it.
func (t *componentTester) topology() {
	start := time.Now()
	body, err := t.topologyBody()
	if err != nil {
		t.record("create", "", start, err, "")
		return
	}
	topo, ref, err := t.c.CreateTopology(t.ctx, body)
	if err != nil {
		t.record("create", "", start, err, "")
		return
	}
	a, err := t.wait(ref.ID)
	if !t.record("create", topo.Name, start, actionErr(a, err), fmt.Sprintf("%d components ACTIVE", len(topo.Components))) {
		t.stagesReport(a)
		t.remove(topo.ID, topo.Name)
		return
	}
	t.stagesReport(a)
	view, err := t.c.Topology(t.ctx, topo.ID)
	if err != nil {
		t.record("create", topo.Name, start, err, "")
		return
	}
	newType := map[string]bool{}
	for _, ty := range t.cand.types {
		newType[ty.Type] = true
	}
	flex := t.cand.plan.Flexup
	if flex == nil {
		for _, comp := range view.Components {
			if newType[comp.Type] {
				flex = append(flex, comp.Name)
			}
		}
	}
	for _, name := range flex {
		comp, ok := componentByName(view, name)
		start := time.Now()
		if !ok {
			t.record("flexup", name, start, fmt.Errorf("no component %q in the topology", name), "")
			continue
		}
		var out struct {
			Action client.ActionRef `json:"action"`
		}
		if _, err := t.c.Do(t.ctx, "POST", api.Prefix+"/components/"+comp.ID, map[string]any{"count": 1}, &out); err != nil {
			t.record("flexup", name, start, err, "")
			continue
		}
		a, err := t.wait(out.Action.ID)
		t.record("flexup", name, start, actionErr(a, err), fmt.Sprintf("%d -> %d nodes", len(comp.Nodes), len(comp.Nodes)+1))
	}
	for _, comp := range view.Components {
		if _, listed := t.cand.plan.Config[comp.Name]; !newType[comp.Type] && !listed {
			continue
		}
		t.configChange(view.Topology, comp)
	}
	t.remove(topo.ID, topo.Name)
}

func componentByName(t client.Topology, name string) (client.Component, bool) {
	for _, c := range t.Components {
		if c.Name == name {
			return c, true
		}
	}
	return client.Component{}, false
}

// stagesReport adds a line per component: how its install, configure and validate went.
func (t *componentTester) stagesReport(a client.Action) {
	by := map[string][]string{}
	var names []string
	ok := map[string]bool{}
	for _, s := range a.Stages {
		switch s.Name {
		case "install", "pre_config", "config", "validate":
		default:
			continue
		}
		if _, seen := by[s.Component]; !seen {
			names = append(names, s.Component)
			ok[s.Component] = true
		}
		d := fmt.Sprintf("%s %s", s.Name, strings.ToLower(s.Status))
		if s.NodesTotal > 0 {
			d += fmt.Sprintf(" %d/%d", s.NodesDone, s.NodesTotal)
		}
		if s.Status == "FAILED" {
			ok[s.Component] = false
			for _, f := range s.Failures {
				d += fmt.Sprintf(" (%s: %s)", f.Name, f.Error)
				break
			}
		}
		by[s.Component] = append(by[s.Component], d)
	}
	for _, n := range names {
		var err error
		if !ok[n] {
			err = fmt.Errorf("%s", strings.Join(by[n], ", "))
		}
		t.record("install/configure/validate", n, time.Now(), err, strings.Join(by[n], ", "))
	}
}

// configChange sets an option in the component's user.json on the topology's branch and
// applies it.
func (t *componentTester) configChange(topo model.Topology, comp client.Component) {
	start := time.Now()
	opts, err := t.configOptions(comp)
	if err != nil {
		t.record("config change", comp.Name, start, err, "")
		return
	}
	q := ""
	detail := "no user-changeable option: re-rolled with restart=all"
	if len(opts) > 0 {
		content, err := userJSONOf(opts)
		if err != nil {
			t.record("config change", comp.Name, start, err, "")
			return
		}
		p := fmt.Sprintf("app/%s/%s/user.json", comp.Type, comp.Version)
		if _, err := t.c.Do(t.ctx, "PUT", treeURL(topo.ConfigBranch, p), map[string]string{"content": content, "message": "component test"}, nil); err != nil {
			t.record("config change", comp.Name, start, err, "")
			return
		}
		var keys []string
		for _, k := range ctSortedKeys(opts) {
			keys = append(keys, fmt.Sprintf("%s=%v", k, opts[k]))
		}
		detail = strings.Join(keys, ", ")
	} else {
		q = "?restart=all"
	}
	var out api.ConfigApplied
	if _, err := t.c.Do(t.ctx, "PUT", api.Prefix+"/components/"+comp.ID+"/tree/"+url.PathEscape(topo.ConfigBranch)+q, nil, &out); err != nil {
		t.record("config change", comp.Name, start, err, "")
		return
	}
	a, err := t.wait(out.Action.ID)
	t.record("config change", comp.Name, start, actionErr(a, err),
		fmt.Sprintf("%s: %d nodes rolled, %d restarted", detail, out.Plan.ToRoll, out.Plan.ToRestart))
}

// configOptions are the options to set: test.json's, or the first user-changeable option
// of the version's default.json with another value.
func (t *componentTester) configOptions(comp client.Component) (map[string]any, error) {
	if o, ok := t.cand.plan.Config[comp.Name]; ok {
		return o, nil
	}
	var e api.ConfigEntry
	if _, err := t.c.Do(t.ctx, "GET", treeURL("master", fmt.Sprintf("app/%s/%s/default.json", comp.Type, comp.Version)), nil, &e); err != nil {
		return nil, err
	}
	var f struct {
		Content []struct {
			Section string `json:"section"`
			Options []struct {
				Key            string `json:"key"`
				Value          any    `json:"value"`
				UserChangeable bool   `json:"user_changeable"`
			} `json:"options"`
		} `json:"content"`
	}
	if e.Content == nil {
		return nil, fmt.Errorf("default.json is empty")
	}
	if err := json.Unmarshal([]byte(*e.Content), &f); err != nil {
		return nil, err
	}
	for _, s := range f.Content {
		for _, o := range s.Options {
			if !o.UserChangeable {
				continue
			}
			var v any
			switch x := o.Value.(type) {
			case float64:
				v = x + 1
			case bool:
				v = !x
			case string:
				v = x + "-test"
			case []any:
				v = append(x, "test")
			default:
				continue
			}
			return map[string]any{s.Section + "." + o.Key: v}, nil
		}
	}
	return nil, nil
}

// userJSONOf renders {"section.key": value} as a user.json.
func userJSONOf(opts map[string]any) (string, error) {
	type opt struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	}
	type sec struct {
		Section string `json:"section"`
		Options []opt  `json:"options"`
	}
	var secs []sec
	idx := map[string]int{}
	for _, k := range ctSortedKeys(opts) {
		s, key, ok := strings.Cut(k, ".")
		if !ok {
			return "", fmt.Errorf("option %q: want section.key", k)
		}
		i, seen := idx[s]
		if !seen {
			i = len(secs)
			idx[s] = i
			secs = append(secs, sec{Section: s})
		}
		secs[i].Options = append(secs[i].Options, opt{Key: key, Value: opts[k]})
	}
	b, err := json.MarshalIndent(map[string]any{"type": "ini", "content": secs}, "", "  ")
	return string(b), err
}

func (t *componentTester) remove(topoID, name string) {
	start := time.Now()
	ref, err := t.c.DeleteTopology(t.ctx, topoID)
	if err != nil {
		t.record("delete", name, start, err, "")
		return
	}
	a, err := t.wait(ref.ID)
	t.record("delete", name, start, actionErr(a, err), "")
}

// wait polls an action until it ends.
func (t *componentTester) wait(id string) (client.Action, error) {
	for {
		a, err := t.c.Action(t.ctx, id)
		if err != nil {
			return a, err
		}
		switch a.Status {
		case "SUCCEEDED", "FAILED", "CANCELLED":
			return a, nil
		}
		select {
		case <-t.ctx.Done():
			return a, fmt.Errorf("action %s still %s: %w", id, a.Status, t.ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func actionErr(a client.Action, err error) error {
	switch {
	case err != nil:
		return err
	case a.Status == "SUCCEEDED":
		return nil
	case a.Error != nil:
		return fmt.Errorf("%s", describeActionError(a))
	}
	return fmt.Errorf("action %s %s", a.ID, a.Status)
}

// topologyBody is test.json's topology, or one component per new type (dependencies
// first) plus one of each other type they require.
func (t *componentTester) topologyBody() ([]byte, error) {
	if len(t.cand.plan.Topology) > 0 {
		return t.cand.plan.Topology, nil
	}
	known, err := t.c.ComponentTypes(t.ctx)
	if err != nil {
		return nil, err
	}
	byType := map[string]candidateType{}
	for _, ty := range t.cand.types {
		byType[ty.Type] = ty
	}
	for _, k := range known {
		if _, ok := byType[k.Type]; !ok {
			byType[k.Type] = candidateType{Type: k.Type, Versions: k.Versions, MinSize: k.MinSize}
		}
	}
	type comp struct {
		Name      string   `json:"name"`
		Type      string   `json:"type"`
		Version   string   `json:"version"`
		Size      int      `json:"size"`
		DependsOn []string `json:"depends_on,omitempty"`
	}
	var out []comp
	added := map[string]bool{}
	var visit func(typ string, path []string) error
	visit = func(typ string, path []string) error {
		if added[typ] {
			return nil
		}
		for _, p := range path {
			if p == typ {
				return fmt.Errorf("types depend on each other in a cycle: %s", strings.Join(append(path, typ), " -> "))
			}
		}
		ty, ok := byType[typ]
		if !ok {
			return fmt.Errorf("a type requires %q, which neither straas nor the candidate has", typ)
		}
		if len(ty.Versions) == 0 {
			return fmt.Errorf("type %s has no versions", typ)
		}
		c := comp{Name: typ, Type: typ, Version: ty.Versions[len(ty.Versions)-1], Size: max(ty.MinSize, 1)}
		for _, d := range ty.Dependencies {
			if !d.Required {
				continue
			}
			if err := visit(d.Type, append(path, typ)); err != nil {
				return err
			}
			c.DependsOn = append(c.DependsOn, d.Type)
		}
		added[typ] = true
		out = append(out, c)
		return nil
	}
	for _, ty := range t.cand.types {
		if err := visit(ty.Type, nil); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no component type in scripts/components/")
	}
	return json.Marshal(map[string]any{"name": "ctest-" + fmt.Sprint(time.Now().Unix()%100000), "availability_zone": "az1", "components": out})
}
