package conductor

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/asl/asltest"
	"github.com/straas/straas/shared/batch"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/policy/actions"
	"github.com/straas/straas/shared/policy/records"
)

func TestResumeEndsMaintenance(t *testing.T) {
	for _, tc := range []struct {
		name       string
		detail     string
		inMaint    bool
		wantStatus string
		wantEntry  string // batch entry status; "" = no batch
	}{
		{"restart resumed", "restart", true, model.NodeActive, batch.OK},
		{"reboot failed", "reboot failed: disk", true, model.NodeActive, batch.Failed},
		{"resume nobody waits for", "restart", false, model.NodeActive, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			d := db.New(asltest.NewMemStore(), clock.NewFake(time.Now()))
			bs := &batch.Service{DB: d, Log: slog.Default()}
			c := &Conductor{DB: d, Batches: bs, Log: slog.Default()}
			n := model.Node{ID: "n1", Name: "t-zk-1", TopologyID: "t", ComponentID: "c", Tenant: "p", Status: model.NodeActive}
			if err := d.PutNode(ctx, &n); err != nil {
				t.Fatal(err)
			}
			svc := actions.New(d, nil, nil)
			bid := batch.ID("act-1", "c", "maintenance/resume#0")
			if tc.inMaint {
				if _, err := bs.Open(ctx, batch.Spec{ID: bid, ActionID: "act-1", ComponentID: "c", Stage: "maintenance/resume#0",
					OnOK: batch.Keep, OnFail: batch.Keep, Timeout: time.Minute, Targets: []batch.Target{{NodeID: "n1", NodeName: n.Name}}}); err != nil {
					t.Fatal(err)
				}
				if err := svc.BeginNodeMaintenance(ctx, &n, "restart", "act-1", bid); err != nil {
					t.Fatal(err)
				}
				if got, _, _ := d.Node(ctx, "n1"); got.Status != model.NodeMaintenance {
					t.Fatalf("in maintenance the node is %s, want MAINTENANCE", got.Status)
				}
			}
			body, _ := agentproto.Encode(agentproto.Envelope{Type: agentproto.TypeEvent, Node: "n1",
				Event: &agentproto.Event{Name: agentproto.EventResume, Detail: tc.detail}})
			for i := 0; i < 2; i++ { // delivered twice: at least once
				if err := c.Handle(ctx, body); err != nil {
					t.Fatal(err)
				}
			}
			got, _, _ := d.Node(ctx, "n1")
			if got.Status != tc.wantStatus {
				t.Errorf("status %s, want %s", got.Status, tc.wantStatus)
			}
			f, err := records.New(d).NodeFlags(ctx, &n)
			if err != nil {
				t.Fatal(err)
			}
			if f.Maintenance != "" {
				t.Errorf("maintenance flag still %q", f.Maintenance)
			}
			if tc.wantEntry != "" {
				es, err := bs.Entries(ctx, bid)
				if err != nil || len(es) != 1 || es[0].Status != tc.wantEntry {
					t.Errorf("batch entries %+v (%v), want one %s", es, err, tc.wantEntry)
				}
			}
			evs, _, err := d.Events(ctx, db.EventFilter{TopologyID: "t", Type: "agent.resume"})
			if err != nil || len(evs) != 2 {
				t.Errorf("resume events %d (%v), want 2 (one per delivery)", len(evs), err)
			}
		})
	}
}

func TestHelloRestoresUnreachable(t *testing.T) {
	ctx := context.Background()
	d := db.New(asltest.NewMemStore(), nil)
	c := &Conductor{DB: d, Batches: &batch.Service{DB: d, Log: slog.Default()}, Log: slog.Default()}
	for _, tc := range []struct {
		name, installed, want string
	}{
		{"a serving node", "3.4.6", model.NodeActive},
		{"a node being created", "", model.NodeUnreachable},
	} {
		n := model.Node{ID: "n-" + tc.want, Name: "t-zk-1", TopologyID: "t", ComponentID: "c", Status: model.NodeUnreachable,
			Error: "no heartbeat", InstalledVersion: tc.installed}
		if err := d.PutNode(ctx, &n); err != nil {
			t.Fatal(err)
		}
		body, _ := agentproto.Encode(agentproto.Envelope{Type: agentproto.TypeHello, Node: n.ID, Hello: &agentproto.Hello{Hostname: "h"}})
		if err := c.Handle(ctx, body); err != nil {
			t.Fatal(err)
		}
		if got, _, _ := d.Node(ctx, n.ID); got.Status != tc.want {
			t.Errorf("%s after hello: %s, want %s", tc.name, got.Status, tc.want)
		}
	}
}
