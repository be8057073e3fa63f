package agent_test

import (
	"strings"
	"testing"

	"github.com/straas/straas/agent"
	"github.com/straas/straas/shared/agentproto"
)

func TestSitePP(t *testing.T) {
	tests := []struct {
		name     string
		sections agentproto.Sections
		want     string
	}{
		{"empty", nil, ""},
		{"types", agentproto.Sections{"kafka": {
			"broker_id": 3.0, "ratio": 0.5, "enabled": true, "name": `a"b$c\d`, "none": nil,
			"zk_list": []any{"zk1:2181", "zk2:2181"}, "opts": map[string]any{"b": 1.0, "a": "x"},
		}}, `class { 'kafka':
  broker_id => 3,
  enabled => true,
  name => "a\"b\$c\\d",
  none => undef,
  opts => {"a" => "x", "b" => 1},
  ratio => 0.5,
  zk_list => ["zk1:2181", "zk2:2181"],
}
`},
		{"sections sorted", agentproto.Sections{"b": {"x": "1"}, "a": {"y": 2.0}}, "class { 'a':\n  y => 2,\n}\nclass { 'b':\n  x => \"1\",\n}\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := agent.SitePP(tc.sections)
			body := got[strings.Index(got, "\n")+1:] // after the header comment
			if body != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", body, tc.want)
			}
		})
	}
}

func TestSitePPPath(t *testing.T) {
	tests := []struct {
		role string
		want string
		ok   bool
	}{
		{"zookeeper", "/s/puppet/manifests/zookeeper/site.pp", true},
		{"nimbus-1.2", "/s/puppet/manifests/nimbus-1.2/site.pp", true},
		{"../etc", "", false},
		{"a/b", "", false},
		{"", "", false},
	}
	for _, tc := range tests {
		got, err := agent.SitePPPath("/s", tc.role)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("SitePPPath(%q) = %q, %v; want %q ok=%v", tc.role, got, err, tc.want, tc.ok)
		}
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("a", 100) + "END"
	got := agent.Truncate(long, 60)
	if len(got) > 60 || !strings.HasSuffix(got, "END") || !strings.Contains(got, "truncated") {
		t.Fatalf("Truncate = %q", got)
	}
	if agent.Truncate("short", 60) != "short" {
		t.Fatal("short strings change")
	}
}
