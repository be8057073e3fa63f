package lambda

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/shared/deps"
)

// What a function does at init, each measured by both benchmarks below.
var initCases = []struct {
	name, dir string
	build     func(*deps.Lambda, context.Context) error
}{
	{"api", "api", func(l *deps.Lambda, ctx context.Context) error { _, err := l.API(ctx); return err }},
	{"authorizer", "authorizer", func(l *deps.Lambda, ctx context.Context) error { _, err := l.Authorizer(ctx); return err }},
	{"conductor", "conductor", func(l *deps.Lambda, ctx context.Context) error { _, err := l.Conductor(ctx); return err }},
	{"checker", "checker", func(l *deps.Lambda, ctx context.Context) error { _, err := l.Checker(ctx); return err }},
	{"stage-Spawn", "stages/spawn", func(l *deps.Lambda, ctx context.Context) error { _, err := l.Stage(ctx, "Spawn"); return err }},
}

// BenchmarkHandlerInit measures building each function's handler from the environment
// (what main does before lambda.Start), against the test endpoint: parsing the
// configuration, loading the SDK configuration and making the clients. It sends no
// request.
func BenchmarkHandlerInit(b *testing.B) {
	s := newStack(b)
	for k, v := range s.env {
		b.Setenv(k, v)
	}
	for _, c := range initCases {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				l, err := deps.LambdaFromEnv()
				if err != nil {
					b.Fatal(err)
				}
				if err := c.build(l, ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkColdStart measures a function's init as Lambda reports it (Init Duration):
// from starting its binary to its first request for an invocation, against a stand-in
// of the Lambda Runtime API on loopback. It reports the median over b.N starts in
// ms-p50; the binary is built for this machine, not arm64.
func BenchmarkColdStart(b *testing.B) {
	s := newStack(b)
	dir := b.TempDir()
	for _, c := range initCases {
		b.Run(c.name, func(b *testing.B) {
			bin := filepath.Join(dir, strings.ReplaceAll(c.dir, "/", "-"))
			if _, err := os.Stat(bin); err != nil {
				out, err := exec.Command("go", "build", "-trimpath", "-ldflags=-s", "-o", bin, "./"+filepath.Join(root, "functions", c.dir)).CombinedOutput()
				if err != nil {
					b.Fatalf("build %s: %v\n%s", c.dir, err, out)
				}
			}
			next := make(chan time.Time, 1)
			rt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/runtime/invocation/next") {
					select {
					case next <- time.Now():
					default:
					}
					<-r.Context().Done() // hold the request: no invocation comes
					return
				}
				w.WriteHeader(http.StatusAccepted) // init/error reports
			}))
			defer rt.Close()
			env := os.Environ()
			for k, v := range s.env {
				env = append(env, k+"="+v)
			}
			env = append(env, "AWS_LAMBDA_RUNTIME_API="+strings.TrimPrefix(rt.URL, "http://"),
				"AWS_LAMBDA_FUNCTION_NAME=bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST")
			var times []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cmd := exec.Command(bin)
				cmd.Env = env
				t0 := time.Now()
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				select {
				case at := <-next:
					times = append(times, at.Sub(t0))
				case <-time.After(30 * time.Second):
					cmd.Process.Kill()
					cmd.Wait()
					b.Fatalf("%s never asked for an invocation", c.dir)
				}
				cmd.Process.Kill()
				cmd.Wait()
			}
			b.StopTimer()
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.ReportMetric(float64(times[len(times)/2])/float64(time.Millisecond), "ms-p50")
			b.ReportMetric(float64(times[len(times)*99/100])/float64(time.Millisecond), "ms-p99")
		})
	}
}
