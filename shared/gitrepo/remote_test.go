package gitrepo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/straas/straas/shared/errs"
)

// gitServer serves bare repos config.git and scripts.git with git http-backend over
// net/http/cgi, requiring token as the basic-auth password: a stand-in for the remote
// git service of AWS mode, on loopback only.
func gitServer(t *testing.T, token string) (root, baseURL string) {
	t.Helper()
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		t.Fatalf("git --exec-path: %v", err)
	}
	backend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	root = t.TempDir()
	for _, name := range []string{"config.git", "scripts.git"} {
		dir := filepath.Join(root, name)
		gitCmd(t, "", "init", "--quiet", "--bare", dir)
		gitCmd(t, dir, "config", "http.receivepack", "true")
	}
	h := &cgi.Handler{
		Path: backend,
		Root: "/git",
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
		// Rejected racing pushes log "cannot lock ref" here: expected, and retried.
		Stderr: io.Discard,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pw, ok := r.BasicAuth(); !ok || pw != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return root, srv.URL + "/git"
}

// gitCmd runs the git binary (tests only) and returns its trimmed output.
func gitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "GIT_AUTHOR_NAME=test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=test", "GIT_COMMITTER_EMAIL=test@example.com", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func openRemote(t *testing.T, base, token string) *Repos {
	t.Helper()
	r, err := Open(context.Background(), Options{
		Dir: t.TempDir(),
		Remote: &RemoteOptions{
			ConfigURL: base + "/config.git", ScriptsURL: base + "/scripts.git", Token: token,
			RefreshInterval: -1,
		},
		Logger: quietLogger(),
	})
	if err != nil {
		t.Fatalf("open remote: %v", err)
	}
	return r
}

func TestRemoteSeedsOnceAndServesTwoInstances(t *testing.T) {
	ctx := context.Background()
	root, base := gitServer(t, "s3cret")
	a := openRemote(t, base, "s3cret")
	b := openRemote(t, base, "s3cret")
	for _, repo := range []string{"config.git", "scripts.git"} {
		if n := gitCmd(t, filepath.Join(root, repo), "rev-list", "--count", "master"); n != "1" {
			t.Errorf("%s: %s commits on master after two opens, want 1 (seeded once)", repo, n)
		}
	}
	ha, _ := a.ScriptsRef(ctx)
	hb, _ := b.ScriptsRef(ctx)
	remote := gitCmd(t, filepath.Join(root, "scripts.git"), "rev-parse", "master")
	if ha != remote || hb != remote {
		t.Errorf("scripts ref: a %s, b %s, want the remote's %s", ha, hb, remote)
	}
	types, err := b.ComponentTypes(ctx)
	if err != nil || len(types) != 3 {
		t.Fatalf("component types through the mirror: %v, %v", types, err)
	}
}

func TestRemoteRejectsBadToken(t *testing.T) {
	_, base := gitServer(t, "s3cret")
	_, err := Open(context.Background(), Options{
		Dir:    t.TempDir(),
		Remote: &RemoteOptions{ConfigURL: base + "/config.git", ScriptsURL: base + "/scripts.git", Token: "wrong"},
		Logger: quietLogger(),
	})
	if !errs.Is(err, errs.Unavailable) {
		t.Fatalf("open with a wrong token: got %v (kind %v), want an unavailable error", err, errs.KindOf(err))
	}
}

func TestRemoteConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	root, base := gitServer(t, "tok")
	a := openRemote(t, base, "tok")
	b := openRemote(t, base, "tok")
	const branch = "race-1@az1"
	if _, err := a.CreateBranch(ctx, branch); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateBranch(ctx, branch); err != nil { // idempotent from the other instance
		t.Fatalf("second create of %s: %v", branch, err)
	}
	const perWriter = 6
	var wg sync.WaitGroup
	errc := make(chan error, 2*perWriter)
	for w, r := range map[string]*Repos{"a": a, "b": b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				p := fmt.Sprintf("service/%s-%d.json", w, i)
				body := fmt.Sprintf(`{"type":"ini","content":[{"section":"DEFAULT","options":[{"key":"n","value":%d,"type":"int"}]}]}`, i)
				if _, err := r.WriteFile(ctx, branch, p, []byte(body), "write "+p, Author{Name: "writer-" + w}); err != nil {
					errc <- fmt.Errorf("%s: %w", p, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	remote := filepath.Join(root, "config.git")
	if n := gitCmd(t, remote, "rev-list", "--count", branch); n != fmt.Sprint(1+2*perWriter) {
		t.Errorf("remote %s has %s commits, want %d (seed + every write, none lost)", branch, n, 1+2*perWriter)
	}
	for _, r := range []*Repos{a, b} {
		for _, w := range []string{"a", "b"} {
			for i := range perWriter {
				p := fmt.Sprintf("service/%s-%d.json", w, i)
				if _, err := r.Config.ReadFile(ctx, branch, p); err != nil {
					t.Errorf("read %s: %v", p, err)
				}
			}
		}
	}
	authors := gitCmd(t, remote, "log", "--format=%an", branch)
	if !strings.Contains(authors, "writer-a") || !strings.Contains(authors, "writer-b") {
		t.Errorf("remote authors %q, want both writers", authors)
	}
}

func TestRemoteTagsAndBranchDeletion(t *testing.T) {
	ctx := context.Background()
	root, base := gitServer(t, "tok")
	a := openRemote(t, base, "tok")
	b := openRemote(t, base, "tok")
	const branch = "test-1@phx01"
	if _, err := a.CreateBranch(ctx, branch); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateTag(ctx, branch, "v1", TagRoleUser, "first", Author{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(root, "config.git")
	if got := gitCmd(t, remote, "tag", "-l"); got != "user&test-1@phx01&v1" {
		t.Errorf("remote tags %q, want user&test-1@phx01&v1", got)
	}
	if _, err := b.CreateTag(ctx, branch, "v1", TagRoleAdmin, "again", Author{Name: "root"}); !errs.Is(err, errs.Conflict) {
		t.Errorf("duplicate tag from the other instance: got %v, want a conflict", err)
	}
	if h, err := b.ResolveRef(ctx, branch+"&v1"); err != nil || h != gitCmd(t, remote, "rev-parse", "user&test-1@phx01&v1^{commit}") {
		t.Errorf("resolve tag through b: %s, %v", h, err)
	}
	if err := b.DeleteBranch(ctx, branch); err != nil {
		t.Fatal(err)
	}
	if got := gitCmd(t, remote, "for-each-ref", "--format=%(refname)"); got != "refs/heads/master" {
		t.Errorf("remote refs after delete: %q, want only master", got)
	}
	if _, err := a.ResolveRef(ctx, branch); !errs.Is(err, errs.NotFound) {
		t.Errorf("a still resolves the deleted branch: %v", err)
	}
}
