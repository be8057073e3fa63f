package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/test/harness"
)

// Helpers of the configuration tests: raw calls with their status, and the shapes of the
// configuration routes' answers.

// cfgCall does a request and returns its status, decoding a 2xx body into out and an
// error body into the returned error.
func cfgCall(t *testing.T, c *client.Client, method, path string, body, out any) (int, *client.Error) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("X-Auth-Token", c.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var e struct {
			Error client.Error `json:"error"`
		}
		if err := json.Unmarshal(data, &e); err != nil || e.Error.Status != resp.StatusCode {
			t.Fatalf("%s %s: %d with a body that is not the error schema: %s", method, path, resp.StatusCode, data)
		}
		return resp.StatusCode, &e.Error
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, data, err)
		}
	}
	return resp.StatusCode, nil
}

// cfgMust does a request that must succeed.
func cfgMust(t *testing.T, c *client.Client, method, path string, body, out any) {
	t.Helper()
	if _, err := c.Do(context.Background(), method, path, body, out); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
}

const v1 = "/straas/v1.0"

func treePath(ref, p string) string {
	return v1 + "/configurations/tree/" + url.PathEscape(ref) + "/" + p
}

type configEntry struct {
	Path    string  `json:"path"`
	Ref     string  `json:"ref"`
	Commit  string  `json:"commit"`
	Type    string  `json:"type"`
	Content *string `json:"content"`
	Files   []struct {
		Name, Path, Type string
	} `json:"files"`
}

type configWritten struct {
	Branch, Path, Commit string
}

type keyChange struct {
	Key  string `json:"key"`
	From any    `json:"from"`
	To   any    `json:"to"`
}

type nodePlan struct {
	NodeID          string      `json:"node_id"`
	Name            string      `json:"name"`
	Changes         []keyChange `json:"changes"`
	RestartRequired bool        `json:"restart_required"`
	Roll            bool        `json:"roll"`
	Restart         bool        `json:"restart"`
	Install         string      `json:"install"`
	First           bool        `json:"first_configuration"`
}

type configPlan struct {
	Ref       string     `json:"ref"`
	Commit    string     `json:"commit"`
	Version   string     `json:"version"`
	Nodes     []nodePlan `json:"nodes"`
	ToRoll    int        `json:"nodes_to_roll"`
	ToRestart int        `json:"nodes_to_restart"`
	Parallel  int        `json:"parallel"`
}

type configApplied struct {
	Action *client.ActionRef `json:"action"`
	DryRun bool              `json:"dry_run"`
	Plan   configPlan        `json:"plan"`
}

// userJSON is a user.json setting the given zookeeper options.
func userJSON(section string, kv map[string]any) map[string]any {
	var opts []string
	for _, k := range mapKeys(kv) {
		b, _ := json.Marshal(kv[k])
		opts = append(opts, fmt.Sprintf(`{"key":%q,"value":%s}`, k, b))
	}
	content := fmt.Sprintf(`{"type":"ini","content":[{"section":%q,"options":[%s]}]}`, section, strings.Join(opts, ","))
	return map[string]any{"content": content, "message": "set " + strings.Join(mapKeys(kv), ", ")}
}

func mapKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// apply applies ref to a component and waits for the action.
func apply(t *testing.T, c *client.Client, compID, ref, query string) (configApplied, client.Action) {
	t.Helper()
	var out configApplied
	p := v1 + "/components/" + compID + "/tree/" + url.PathEscape(ref)
	if query != "" {
		p += "?" + query
	}
	cfgMust(t, c, "PUT", p, nil, &out)
	if out.Action == nil {
		t.Fatalf("apply %s answered no action: %+v", ref, out)
	}
	return out, harness.WaitAction(t, c, out.Action.ID, 60*time.Second)
}

func stageOf(a client.Action, name string) (client.Stage, bool) {
	for _, s := range a.Stages {
		if s.Name == name {
			return s, true
		}
	}
	return client.Stage{}, false
}

func componentNamed(t *testing.T, c *client.Client, topoID, name string) client.Component {
	t.Helper()
	tp, err := c.Topology(context.Background(), topoID)
	if err != nil {
		t.Fatal(err)
	}
	for _, comp := range tp.Components {
		if comp.Name == name {
			return comp
		}
	}
	t.Fatalf("topology %s has no component %s", topoID, name)
	return client.Component{}
}

func zkBody(name string, size int) []byte {
	return []byte(fmt.Sprintf(`{"name":%q,"availability_zone":"az1","components":[{"name":"zk","type":"zookeeper","version":"3.4.6","size":%d,"flavor":"small"}]}`, name, size))
}
