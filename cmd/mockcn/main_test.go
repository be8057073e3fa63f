package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/straas/straas/mockcn"
	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/shared/queue/sqsq"
	"github.com/straas/straas/test/awsendpoint"
)

// The agents of the standalone mock cloud talk to SQS: moto here.
func TestMain(m *testing.M) { os.Exit(awsendpoint.Main(m)) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestParse(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		ok   bool
		chk  func(o options) bool
	}{
		{nil, nil, true, func(o options) bool {
			return o.listen == ":8080" && len(o.azs) == 1 && o.cnsPerAZ == 4 && o.queue == "sqs" && o.bootMax == 80*time.Millisecond
		}},
		{[]string{"-azs", "az1, az2,", "-cns-per-az", "10", "-queue", "none"}, nil, true, func(o options) bool {
			return len(o.azs) == 2 && o.azs[1] == "az2" && o.cnsPerAZ == 10 && o.queue == "none"
		}},
		{nil, map[string]string{"MOCKCN_RACKS_PER_AZ": "5", "MOCKCN_LOG_LEVEL": "debug"}, true, func(o options) bool {
			return o.racksPerAZ == 5 && o.logLevel == slog.LevelDebug
		}},
		{[]string{"-queue", "kafka"}, nil, false, nil},
		{[]string{"-cns-per-az", "many"}, nil, false, nil},
		{[]string{"-boot-min", "soon"}, nil, false, nil},
		{[]string{"-nope"}, nil, false, nil},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			o, err := parse(tc.args, io.Discard)
			if (err == nil) != tc.ok || (tc.ok && !tc.chk(o)) {
				t.Fatalf("parse(%q) = %+v, %v", tc.args, o, err)
			}
		})
	}
}

func serve(t *testing.T, args ...string) (*httptest.Server, context.Context) {
	t.Helper()
	o, err := parse(append([]string{"-root", t.TempDir()}, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cloud, h, err := build(ctx, o, quiet)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cloud.Run(ctx); close(done) }()
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return srv, ctx
}

func computeClient(t *testing.T, ctx context.Context, url string) *gophercloud.ServiceClient {
	t.Helper()
	p, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: url + "/identity/v3", Username: "demo", Password: "demo", TenantName: "demo", DomainName: "Default"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := openstack.NewComputeV2(p, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitActive(t *testing.T, ctx context.Context, c *gophercloud.ServiceClient, id string) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); ; {
		s, err := servers.Get(ctx, c, id).Extract()
		if err == nil && s.Status == "ACTIVE" {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("server %s not ACTIVE: %+v %v", id, s, err)
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
}

func TestServeWithoutAgents(t *testing.T) {
	srv, ctx := serve(t, "-queue", "none", "-azs", "a,b")
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	c := computeClient(t, ctx, srv.URL)
	s, err := servers.Create(ctx, c, servers.CreateOpts{Name: "x", FlavorRef: "1", ImageRef: "i", AvailabilityZone: "b", UserData: mockcn.NewUserData("n1", "").JSON()}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitActive(t, ctx, c, s.ID)
}

func TestAgentsOnSQS(t *testing.T) {
	cfg := awsendpoint.Config(t)
	q := sqsq.New(cfg, sqsq.Options{Visibility: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	status := awsendpoint.Name("status")
	node := awsendpoint.Name("n")
	for _, name := range []string{status, queue.NodeQueue(node)} {
		if err := q.Ensure(ctx, name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Remove(context.Background(), name) })
	}
	srv, sctx := serve(t, "-queue", "sqs", "-poll-max", "200ms", "-pollers", "4")
	c := computeClient(t, sctx, srv.URL)
	ud := mockcn.NewUserData(node, "v1")
	ud.StatusQueue = status
	s, err := servers.Create(sctx, c, servers.CreateOpts{Name: "sqs-node", FlavorRef: "1", ImageRef: "i", UserData: ud.JSON()}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitActive(t, sctx, c, s.ID)

	// Hello and heartbeat arrive on SQS; a command sent on SQS is answered there.
	recv := func(pred func(agentproto.Envelope) bool) agentproto.Envelope {
		t.Helper()
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
			msgs, err := q.Receive(ctx, status, queue.MaxBatch, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				q.Ack(ctx, status, m.Receipt)
				if e, err := agentproto.Decode(m.Body); err == nil && pred(e) {
					return e
				}
			}
		}
		t.Fatal("timed out waiting on the status queue")
		return agentproto.Envelope{}
	}
	hello := recv(func(e agentproto.Envelope) bool { return e.Type == agentproto.TypeHello })
	if hello.Node != node || hello.Hello.ServerID != s.ID || !strings.HasPrefix(hello.Hello.Hostname, "sqs-node") {
		t.Fatalf("hello = %+v %+v", hello, hello.Hello)
	}
	b, err := agentproto.Encode(agentproto.Envelope{Type: agentproto.TypeCommand, Node: node, At: time.Now(), Command: &agentproto.Command{ID: "c1", Kind: agentproto.CmdInstall, Type: "zookeeper", Version: "3.8.4", Reply: "r"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Send(ctx, queue.NodeQueue(node), b); err != nil {
		t.Fatal(err)
	}
	res := recv(func(e agentproto.Envelope) bool { return e.Type == agentproto.TypeResult })
	if !res.Result.OK || res.Result.Code != agentproto.InstallSuccess || res.Result.Reply != "r" {
		t.Fatalf("result = %+v", res.Result)
	}
}

func TestRunStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-root", t.TempDir(), "-queue", "none", "-log-level", "error"}, io.Discard)
	}()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	if err := run(context.Background(), []string{"-healthcheck", "-listen", "127.0.0.1:1"}, io.Discard); err == nil {
		t.Fatal("healthcheck of nothing succeeded")
	}
}
