// Package awsendpoint gives the AWS-endpoint test suites their endpoint. When
// AWS_ENDPOINT_URL is set (LocalStack at http://localhost:4566, or a moto server started
// by hand) it is used as it is; otherwise Main starts moto_server on a free loopback port
// for the duration of the test binary and points the SDK at it. A missing moto fails the
// suite with instructions: this suite must run, never skip.
//
//	func TestMain(m *testing.M) { os.Exit(awsendpoint.Main(m)) }
//	func TestX(t *testing.T) { cfg := awsendpoint.Config(t); ... }
package awsendpoint

import (
	"bufio"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/straas/straas/infra/bootstrap"
	"github.com/straas/straas/shared/awsconf"
)

// Install tells a developer how to get moto; printed when it is missing.
const Install = `Install moto (>= 5.2.5) with:
	make test-aws        (creates .venv and installs moto, then runs this suite)
or by hand, from the repository root:
	python3 -m venv .venv && .venv/bin/pip install "moto[server]>=5.2.5"
The harness looks in $STRAAS_VENV/bin, ./.venv/bin (repository root) and PATH.
Alternatively point AWS_ENDPOINT_URL at a running endpoint (e.g. LocalStack, http://localhost:4566).`

// Environment read here.
const (
	EnvVenv = "STRAAS_VENV" // a Python venv holding moto_server
)

var (
	mu       sync.Mutex
	endpoint string
	isMoto   bool
	ran      = map[string]bool{} // test name -> failed
)

// Main prepares the endpoint, runs the tests, reports how many ran against it, and stops
// a moto server it started. It returns the exit code for os.Exit.
func Main(m *testing.M) int {
	stop, err := setup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: AWS endpoint suite cannot start: %v\n", err)
		return 1
	}
	code := m.Run()
	stop()
	report(os.Stdout)
	return code
}

func report(w io.Writer) {
	mu.Lock()
	defer mu.Unlock()
	failed := 0
	for _, f := range ran {
		if f {
			failed++
		}
	}
	what := "endpoint"
	if isMoto {
		what = "moto"
	}
	fmt.Fprintf(w, "awsendpoint: %d tests and subtests used %s at %s (%d of them failed)\n", len(ran), what, endpoint, failed)
}

// Endpoint returns the endpoint URL in use ("" before Main).
func Endpoint() string {
	mu.Lock()
	defer mu.Unlock()
	return endpoint
}

// Moto reports whether the endpoint is a moto server.
func Moto() bool {
	mu.Lock()
	defer mu.Unlock()
	return isMoto
}

// Config returns the SDK configuration for the endpoint and counts t as a test run
// against it. It fails t when Main did not set an endpoint up.
func Config(t testing.TB) aws.Config {
	t.Helper()
	mu.Lock()
	ep := endpoint
	name := t.Name()
	if _, ok := ran[name]; !ok {
		ran[name] = false
		t.Cleanup(func() {
			mu.Lock()
			ran[name] = t.Failed()
			mu.Unlock()
		})
	}
	mu.Unlock()
	if ep == "" {
		t.Fatal("awsendpoint: no endpoint; the package's TestMain must call awsendpoint.Main")
	}
	cfg, err := awsconf.Load(context.Background())
	if err != nil {
		t.Fatalf("awsendpoint: %v", err)
	}
	return cfg
}

// Name returns a resource name unique to this run: prefix-<8 hex>. Prefixes should be
// short, lowercase and made of letters, digits and '-', so the name is valid for every
// service (S3 buckets are the strictest).
func Name(prefix string) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux; nothing sensible to do if it does
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}

func setup() (stop func(), err error) {
	if os.Getenv("AWS_REGION") == "" {
		os.Setenv("AWS_REGION", awsconf.DefaultRegion)
	}
	if ep := os.Getenv(awsconf.EnvEndpoint); ep != "" {
		setDefaultCredentials(false)
		moto := enableMoto(ep) == nil
		mu.Lock()
		endpoint, isMoto = ep, moto
		mu.Unlock()
		return func() {}, nil
	}
	bin, err := findMoto()
	if err != nil {
		return nil, err
	}
	srv, err := startMoto(bin)
	if err != nil {
		return nil, err
	}
	os.Setenv(awsconf.EnvEndpoint, srv.url)
	setDefaultCredentials(true)
	if err := enableMoto(srv.url); err != nil {
		srv.stop()
		return nil, fmt.Errorf("configure moto: %w", err)
	}
	mu.Lock()
	endpoint, isMoto = srv.url, true
	mu.Unlock()
	return srv.stop, nil
}

// setDefaultCredentials sets the test credentials local stacks accept; force replaces
// any real ones so they are never sent to a server this process started.
func setDefaultCredentials(force bool) {
	if force || os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		os.Setenv("AWS_ACCESS_KEY_ID", "test")
		os.Setenv("AWS_SECRET_ACCESS_KEY", "test")
		os.Unsetenv("AWS_SESSION_TOKEN")
		os.Unsetenv("AWS_PROFILE")
	}
}

// enableMoto turns on moto's execution of state machines; it fails on an endpoint that
// is not moto.
func enableMoto(ep string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return bootstrap.EnableMotoExecution(ctx, ep)
}

func findMoto() (string, error) {
	root, _ := moduleRoot()
	return locate(os.Getenv(EnvVenv), root, exec.LookPath)
}

// locate looks for moto_server in venv/bin, root/.venv/bin and then on PATH.
func locate(venv, root string, lookPath func(string) (string, error)) (string, error) {
	var tried []string
	try := func(dir string) string {
		p := filepath.Join(dir, "moto_server")
		tried = append(tried, p)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
		return ""
	}
	if venv != "" {
		if p := try(filepath.Join(venv, "bin")); p != "" {
			return p, nil
		}
	}
	if root != "" {
		if p := try(filepath.Join(root, ".venv", "bin")); p != "" {
			return p, nil
		}
	}
	if p, err := lookPath("moto_server"); err == nil {
		return p, nil
	}
	tried = append(tried, "moto_server on PATH")
	return "", fmt.Errorf("moto_server not found. %s\n(tried: %s)", Install, strings.Join(tried, ", "))
}

// moduleRoot is the directory of the nearest go.mod above the working directory (tests
// run in their package directory).
func moduleRoot() (string, error) {
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
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

type server struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
	dir  string // temporary: the launcher script and the log
}

func startMoto(bin string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	py, version := python(bin)
	if py != "" && oldMoto(version) {
		return nil, fmt.Errorf("moto %s at %s is too old: the suites need moto >= %d.%d.%d. %s",
			version, bin, MinMoto[0], MinMoto[1], MinMoto[2], Install)
	}
	dir, err := os.MkdirTemp("", "straas-moto-")
	if err != nil {
		return nil, err
	}
	script := filepath.Join(dir, "moto_server.py")
	if err := os.WriteFile(script, launcher, 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "moto.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(py, script, "127.0.0.1", port)
	if py == "" {
		// No interpreter found that imports moto: run moto_server as it is, without the
		// launcher's fixes (the DynamoDB concurrency and SendTaskFailure tests may fail).
		fmt.Fprintf(os.Stderr, "awsendpoint: no Python with moto found for %s; running it without %s's fixes\n", bin, "moto_server.py")
		cmd = exec.Command(bin, "-H", "127.0.0.1", "-p", port)
	}
	// MOTO_PORT is where moto's Step Functions interpreter sends its own service calls
	// (sqs:sendMessage tasks): it must be this server.
	cmd.Env = append(os.Environ(), "MOTO_PORT="+port)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	s := &server{url: "http://127.0.0.1:" + port, cmd: cmd, done: make(chan struct{}), log: logf, dir: dir}
	go func() { // owned by the server: ends when the process does, which stop ensures
		cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(60 * time.Second); err != nil {
		out := tail(logf.Name())
		s.stop()
		return nil, fmt.Errorf("moto (%s) did not become ready: %w\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	return s, nil
}

//go:embed moto_server.py
var launcher []byte

// launcher (moto_server.py) runs moto with DynamoDB served one request at a time, as
// atomic as the real service, under the Python interpreter of the moto_server script,
// which is the one that has moto installed.

// MinMoto is the oldest moto the suites pass on: earlier 5.2 releases fail to start an
// execution while another one runs (they deep-copy the running one's threads).
var MinMoto = [3]int{5, 2, 5}

// python returns an interpreter that can import moto, to run the launcher with: the
// moto_server script's own (its #! line), else a python3 beside it (a pyenv shim or a
// venv's bin), or "" when none can; and that moto's version.
func python(bin string) (py, version string) {
	var cands []string
	if py, err := interpreter(bin); err == nil && strings.Contains(filepath.Base(py), "python") {
		cands = append(cands, py)
	}
	dir := filepath.Dir(bin)
	cands = append(cands, filepath.Join(dir, "python3"), filepath.Join(dir, "python"))
	for _, c := range cands {
		out, err := exec.Command(c, "-c", "import moto.server, moto; print(moto.__version__)").Output()
		if err == nil {
			return c, strings.TrimSpace(string(out))
		}
	}
	return "", ""
}

// oldMoto reports whether version (e.g. "5.2.1", "5.2.5.dev3") is below MinMoto.
func oldMoto(version string) bool {
	parts := strings.SplitN(version, ".", 4)
	for i := 0; i < 3; i++ {
		n := 0
		if i < len(parts) {
			fmt.Sscanf(parts[i], "%d", &n)
		}
		if n != MinMoto[i] {
			return n < MinMoto[i]
		}
	}
	return false
}

// interpreter reads the #! line of the moto_server script.
func interpreter(bin string) (string, error) {
	f, err := os.Open(bin)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	if !strings.HasPrefix(line, "#!") {
		return "", errors.New("not a Python script (no #! line)")
	}
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if len(fields) == 0 {
		return "", errors.New("empty #! line")
	}
	if filepath.Base(fields[0]) == "env" && len(fields) > 1 {
		return exec.LookPath(fields[len(fields)-1])
	}
	return fields[0], nil
}

func (s *server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(s.url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %s: %w", limit, err)
		}
		select {
		case <-s.done:
			return fmt.Errorf("exited: %v", s.cmd.ProcessState)
		case <-tick.C:
		}
	}
}

func (s *server) stop() {
	select {
	case <-s.done:
	default:
		s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
	}
	s.log.Close()
	os.RemoveAll(s.dir)
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port), nil
}

func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// Tests returns the names of the tests counted so far, sorted (for the harness's own test).
func Tests() []string {
	mu.Lock()
	defer mu.Unlock()
	out := make([]string, 0, len(ran))
	for n := range ran {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
