// Package harness runs `straas up` as a subprocess on free ports and a temporary data
// directory, for end-to-end tests that drive it over HTTP only. A test can kill it
// (SIGKILL) and start it again on the same data directory.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/straas/straas/shared/client"
	"github.com/straas/straas/shared/cloud"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// RepoRoot finds the module root from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Binary builds cmd/straas once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "straas-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "straas")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/straas")...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/straas: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Options for Start.
type Options struct {
	DataDir   string   // default: a new temp dir (kept for restarts via Straas.DataDir)
	Heartbeat int      // seconds; default 1 so tests see heartbeats quickly
	Args      []string // more flags for `straas up`
}

// Straas is a running `straas up`.
type Straas struct {
	t        testing.TB
	cmd      *exec.Cmd
	opts     Options
	DataDir  string
	APIURL   string // e.g. http://127.0.0.1:41234
	CloudURL string // the mock cloud: Keystone at /identity/v3, Nova at /compute/v2.1
	LogPath  string // the process's stderr (slog), appended across restarts
	done     chan struct{}
	stopped  bool
}

var urlLine = regexp.MustCompile(`^\s+(API|Keystone):\s+(http://\S+?)(/straas/v1\.0|/identity/v3)?\s`)

// Start runs `straas up` and waits until it serves. It is stopped when the test ends.
func Start(t testing.TB, o Options) *Straas {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = 1
	}
	s := &Straas{t: t, opts: o, DataDir: o.DataDir, LogPath: filepath.Join(o.DataDir, "straas.log")}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Straas) start() {
	t := s.t
	t.Helper()
	args := append([]string{"up", "--listen", "127.0.0.1:0", "--cloud-listen", "127.0.0.1:0", "--data-dir", s.DataDir,
		"--heartbeat", fmt.Sprint(s.opts.Heartbeat), "--log-level", "debug"}, s.opts.Args...)
	cmd := exec.Command(Binary(t), args...)
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd, s.done, s.stopped = cmd, make(chan struct{}), false
	urls := make(chan [2]string, 1)
	go func() {
		var api, cloud string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := urlLine.FindStringSubmatch(sc.Text() + " "); m != nil {
				if m[1] == "API" {
					api = m[2]
				} else {
					cloud = m[2]
				}
				if api != "" && cloud != "" {
					urls <- [2]string{api, cloud}
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(s.done)
	}()
	select {
	case u := <-urls:
		s.APIURL, s.CloudURL = u[0], u[1]
	case <-s.done:
		t.Fatalf("straas up exited before serving; log:\n%s", s.tail(4000))
	case <-time.After(60 * time.Second):
		t.Fatalf("straas up did not print its URLs within 60 s; log:\n%s", s.tail(4000))
	}
	s.waitHealthy()
}

func (s *Straas) waitHealthy() {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.APIURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-s.done:
			s.t.Fatalf("straas up exited; log:\n%s", s.tail(4000))
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.t.Fatalf("straas up not healthy within 30 s")
}

// Kill stops the process at once (SIGKILL), as a crash would.
func (s *Straas) Kill() {
	if s.stopped {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	s.stopped = true
	s.checkLog()
}

// checkLog fails the test on what must never be in the log: a data race (the binary is
// built with -race when the tests are) or a panic.
func (s *Straas) checkLog() {
	log := s.Log()
	for _, bad := range []string{"WARNING: DATA RACE", "panic: ", "fatal error: "} {
		if i := bytes.Index(log, []byte(bad)); i >= 0 {
			end := min(len(log), i+3000)
			s.t.Errorf("straas logged %q:\n%s", bad, log[i:end])
		}
	}
}

// Stop stops the process gracefully (SIGTERM), killing it after 15 s.
func (s *Straas) Stop() {
	if s.stopped {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
	s.stopped = true
	s.checkLog()
}

// Restart starts the process again on the same data directory (new ports).
func (s *Straas) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// StartAgain starts a killed process again on the same data directory.
func (s *Straas) StartAgain() {
	s.t.Helper()
	if !s.stopped {
		s.t.Fatal("StartAgain on a running process")
	}
	s.start()
}

// Log returns everything the process logged so far.
func (s *Straas) Log() []byte {
	b, _ := os.ReadFile(s.LogPath)
	return b
}

func (s *Straas) tail(n int) string {
	b := s.Log()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// AuthURL is the mock Keystone's v3 URL.
func (s *Straas) AuthURL() string { return s.CloudURL + "/identity/v3" }

// Token logs in to the mock Keystone.
func (s *Straas) Token(t testing.TB, user, password, project string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, _, err := client.Login(ctx, s.AuthURL(), user, password, project, "")
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return tok
}

// CLI returns a runner of the straas binary against s: STRAAS_URL is s's API,
// STRAAS_CONFIG a session file of the runner's own, and env is added (a STRAAS_TOKEN,
// say). It returns stdout and stderr together.
func (s *Straas) CLI(t testing.TB, env ...string) func(args ...string) (string, error) {
	t.Helper()
	bin := Binary(t)
	base := []string{"STRAAS_URL=" + s.APIURL, "STRAAS_CONFIG=" + filepath.Join(t.TempDir(), "session.json")}
	return func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(append(os.Environ(), base...), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
}

// Client returns an API client logged in as user (password = user name, project =
// the user's dev project: admin -> admin, demo/demo2 -> demo, other -> other).
func (s *Straas) Client(t testing.TB, user string) *client.Client {
	t.Helper()
	project := map[string]string{"admin": "admin", "demo": "demo", "demo2": "demo", "other": "other"}[user]
	if project == "" {
		project = user
	}
	return client.New(s.APIURL, s.Token(t, user, user, project))
}

// Nova returns a compute client of the mock cloud, as admin.
func (s *Straas) Nova(t testing.TB) *cloud.Cloud {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := cloud.Connect(ctx, cloud.Options{AuthURL: s.AuthURL(), Username: "admin", Password: "admin", Project: "admin"})
	if err != nil {
		t.Fatalf("connect to the mock cloud: %v", err)
	}
	return c
}

// Admin calls the mock cloud's admin API (under /mockcn/v1) as admin.
func (s *Straas) Admin(t testing.TB, method, path string, body any) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, s.CloudURL+"/mockcn/v1"+path, rd)
	req.Header.Set("X-Auth-Token", s.Token(t, "admin", "admin", "admin"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("mock cloud admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("mock cloud admin %s %s: %s %s", method, path, resp.Status, strings.TrimSpace(string(out)))
	}
	return out
}

// WaitAction polls an action until it ends or the deadline passes.
func WaitAction(t testing.TB, c *client.Client, id string, within time.Duration) client.Action {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		a, err := c.Action(context.Background(), id)
		if err != nil {
			t.Fatalf("action %s: %v", id, err)
		}
		switch a.Status {
		case "SUCCEEDED", "FAILED", "CANCELLED":
			return a
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(a, "", "  ")
			t.Fatalf("action %s still %s after %s:\n%s", id, a.Status, within, b)
		}
		time.Sleep(100 * time.Millisecond) // polling interval of a deadline-bounded wait
	}
}

// Eventually polls cond until it holds or the deadline passes.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(50 * time.Millisecond) // polling interval of a deadline-bounded wait
	}
}
