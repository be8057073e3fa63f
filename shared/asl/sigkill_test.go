package asl

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/straas/straas/shared/workflow"
)

// The SIGKILL test runs the engine in child processes (this test binary, re-executed)
// and kills them with SIGKILL mid-run: nothing gets to clean up, as in a real crash.

const sigkillItems = 200

const sigkillMachine = `{"StartAt":"M","States":{
	"M":{"Type":"Map","ItemsPath":"$.items","MaxConcurrency":4,"ItemSelector":{"i.$":"$$.Map.Item.Value"},
		"ItemProcessor":{"StartAt":"Work","States":{
			"Work":{"Type":"Task","Resource":"arn:test:function:Work","ResultPath":"$.w","Next":"Mark"},
			"Mark":{"Type":"Pass","Parameters":{"i.$":"$.i","sq.$":"$.w.sq"},"End":true}}},
		"ResultSelector":{"n.$":"States.ArrayLength($)","last.$":"$[199]"},"End":true}}}`

// sigkillFuncs logs every call of Work (one line per call, flushed to the OS at once)
// so that the parent can watch progress and count re-runs.
func sigkillFuncs(logPath string) (map[string]workflow.Func, func()) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		panic(err)
	}
	var mu sync.Mutex
	return map[string]workflow.Func{
		"arn:test:function:Work": func(ctx context.Context, in json.RawMessage) (json.RawMessage, error) {
			var v struct{ I int }
			if err := json.Unmarshal(in, &v); err != nil {
				return nil, err
			}
			mu.Lock()
			_, err := fmt.Fprintf(f, "%d\n", v.I)
			mu.Unlock()
			if err != nil {
				return nil, err
			}
			return json.Marshal(map[string]int{"sq": v.I * v.I})
		},
	}, func() { f.Close() }
}

func sigkillInput() string {
	items := make([]int, sigkillItems)
	for i := range items {
		items[i] = i
	}
	b, _ := json.Marshal(map[string]any{"items": items})
	return string(b)
}

// TestSigkillHelper is the child process; it does nothing unless started by
// TestSigkill.
func TestSigkillHelper(t *testing.T) {
	db, logPath := os.Getenv("ASL_SIGKILL_DB"), os.Getenv("ASL_SIGKILL_LOG")
	if db == "" {
		return
	}
	st := openBolt(t, db)
	funcs, done := sigkillFuncs(logPath)
	defer done()
	eng, err := New(Config{Store: st, Machines: map[string]*Machine{"m": mustLoad(t, "m", sigkillMachine)}, Functions: funcs, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		if _, err := eng.Start(ctx, "m", "e1", []byte(sigkillInput())); err != nil {
			fmt.Fprintln(os.Stderr, "start:", err)
		}
	}()
	_ = eng.Run(ctx) // until SIGKILL
}

func countLines(t *testing.T, path string) map[int]int {
	f, err := os.Open(path)
	if err != nil {
		return map[int]int{}
	}
	defer f.Close()
	out := map[int]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var i int
		if _, err := fmt.Sscan(strings.TrimSpace(sc.Text()), &i); err == nil {
			out[i]++
		}
	}
	return out
}

func TestSigkill(t *testing.T) {
	dir := t.TempDir()
	db, logPath := filepath.Join(dir, "asl.db"), filepath.Join(dir, "calls.log")
	kills := 0
	for _, killAt := range []int{30, 90, 150} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSigkillHelper$")
		cmd.Env = append(os.Environ(), "ASL_SIGKILL_DB="+db, "ASL_SIGKILL_LOG="+logPath)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		total := 0
		for total < killAt && time.Now().Before(deadline) {
			total = 0
			for _, n := range countLines(t, logPath) {
				total += n
			}
			time.Sleep(time.Millisecond) // polling the child's progress
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL
			t.Fatal(err)
		}
		_ = cmd.Wait()
		kills++
		t.Logf("killed the process after %d calls", total)
	}

	// This process finishes the execution.
	st := openBolt(t, db)
	defer st.Close()
	funcs, done := sigkillFuncs(logPath)
	defer done()
	h := newHarness(t, map[string]*Machine{"m": mustLoad(t, "m", sigkillMachine)}, funcs, hopts{st: st})
	if _, err := h.eng.Start(context.Background(), "m", "e1", []byte(sigkillInput())); err != nil {
		t.Fatal(err) // idempotent: the execution the children started
	}
	x := h.await(ExecutionARN("m", "e1"), false)
	if x.Status != workflow.Succeeded {
		t.Fatalf("%s %s %s", x.Status, x.Error, x.Cause)
	}
	jsonEq(t, x.Output, fmt.Sprintf(`{"n":%d,"last":{"i":%d,"sq":%d}}`, sigkillItems, sigkillItems-1, (sigkillItems-1)*(sigkillItems-1)))
	calls := countLines(t, logPath)
	total := 0
	for i := 0; i < sigkillItems; i++ {
		if calls[i] < 1 {
			t.Errorf("item %d never ran", i)
		}
		total += calls[i]
	}
	// At most the iterations in flight at each kill (MaxConcurrency 4) ran twice.
	if total > sigkillItems+4*kills {
		t.Errorf("%d calls for %d items after %d kills: more re-runs than iterations in flight", total, sigkillItems, kills)
	}
	t.Logf("%d calls for %d items after %d kills", total, sigkillItems, kills)
}
