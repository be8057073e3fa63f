package lambda

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/straas/straas/shared/deps"
)

// runtimeAPI stands in for the Lambda Runtime API on loopback: it hands the function
// one event per invocation and collects what the function posts back.
type runtimeAPI struct {
	events  chan []byte
	replies chan runtimeReply
}

type runtimeReply struct {
	id    string
	error bool
	body  []byte
}

func newRuntimeAPI(t *testing.T) (*runtimeAPI, string) {
	rt := &runtimeAPI{events: make(chan []byte), replies: make(chan runtimeReply, 4)}
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		const base = "/2018-06-01/runtime/invocation/"
		switch {
		case r.Method == http.MethodGet && r.URL.Path == base+"next":
			select {
			case ev := <-rt.events:
				n++
				w.Header().Set("Lambda-Runtime-Aws-Request-Id", strconv.Itoa(n))
				w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
				w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:straas-Start")
				w.Write(ev)
			case <-r.Context().Done():
			}
		case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, base):
			rest := strings.TrimPrefix(r.URL.Path, base)
			id, kind, _ := strings.Cut(rest, "/")
			b, _ := io.ReadAll(r.Body)
			rt.replies <- runtimeReply{id: id, error: kind == "error", body: b}
			w.WriteHeader(http.StatusAccepted)
		default:
			w.WriteHeader(http.StatusAccepted) // init errors and the like
		}
	}))
	t.Cleanup(srv.Close)
	return rt, strings.TrimPrefix(srv.URL, "http://")
}

func (rt *runtimeAPI) invoke(t *testing.T, ev []byte) runtimeReply {
	t.Helper()
	select {
	case rt.events <- ev:
	case <-time.After(time.Minute):
		t.Fatal("the function never asked for an invocation")
	}
	select {
	case r := <-rt.replies:
		return r
	case <-time.After(time.Minute):
		t.Fatal("the function never answered")
	}
	return runtimeReply{}
}

// The stage function's binary, under aws-lambda-go's own invoke loop, reports errors to
// the Runtime API under the names Step Functions' Retry and Catch match.
func TestRuntimeReportsStatesErrorNames(t *testing.T) {
	s := newStack(t)
	bin := filepath.Join(t.TempDir(), "start")
	if out, err := exec.Command("go", "build", "-o", bin, "./"+filepath.Join(root, "functions/stages/start")).CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	rt := startFunction(t, s, bin, nil)
	gone := startFunction(t, s, bin, map[string]string{deps.EnvTable: "no-such-table"})

	ids := s.topology(t, "runtime-1")
	tests := []struct {
		name      string
		rt        *runtimeAPI
		event     []byte
		errorType string // "" = success
	}{
		{"success", rt, event(t, "stages/start.json", ids), ""},
		{"bad input", rt, []byte(`{"action_id": 5}`), "TaskFailed"},
		{"unknown action", rt, event(t, "stages/start.json", map[string]string{"act-sample": "act-missing", "topo-sample": ids["topo-sample"]}), "TaskFailed"},
		{"no table", gone, event(t, "stages/start.json", ids), "Transient"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.rt.invoke(t, tc.event)
			if tc.errorType == "" {
				if r.error || !strings.Contains(string(r.body), ids["cmp-sample"]) {
					t.Fatalf("got error=%v %s, want the start output", r.error, r.body)
				}
				return
			}
			var e struct {
				Type    string `json:"errorType"`
				Message string `json:"errorMessage"`
			}
			if err := json.Unmarshal(r.body, &e); err != nil || !r.error {
				t.Fatalf("got error=%v %s, %v", r.error, r.body, err)
			}
			if e.Type != tc.errorType || e.Message == "" {
				t.Errorf("errorType: got %q (%s), want %s", e.Type, e.Message, tc.errorType)
			}
		})
	}
}

// startFunction runs the function's binary with the stack's environment (changed by
// change) against its own stand-in Runtime API.
func startFunction(t *testing.T, s *stack, bin string, change map[string]string) *runtimeAPI {
	t.Helper()
	rt, addr := newRuntimeAPI(t)
	cmd := exec.Command(bin)
	cmd.Env = os.Environ()
	for k, v := range s.env {
		if c, ok := change[k]; ok {
			v = c
		}
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "AWS_LAMBDA_RUNTIME_API="+addr, "AWS_LAMBDA_FUNCTION_NAME=straas-Start", "AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512", deps.EnvLogLevel+"=error")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return rt
}
