// Package sam checks template.yaml against the code it deploys: every ${...} of
// statemachines/*.asl.json has its Lambda function in the template and its stage function
// in the embedded registry, and the reverse; every function is built the same way
// (provided.al2023, arm64, go1.x) from a functions/ folder; the table matches the store's
// indexes; every function has sample events.
package sam

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/straas/straas/shared/api"
	"github.com/straas/straas/shared/deps"
	"github.com/straas/straas/shared/stages"
	"github.com/straas/straas/shared/store"
	"github.com/straas/straas/shared/store/dynamo"
	"github.com/straas/straas/statemachines"
)

const root = "../.."

// apiOnly lists registered stage functions that no state machine uses on purpose
// (called by the API directly); each needs a reason.
var apiOnly = map[string]string{}

// template is template.yaml as a node tree (CloudFormation's !Ref and !GetAtt are tags).
type template struct{ root *yaml.Node }

func load(t *testing.T) template {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("template.yaml: %v", err)
	}
	return template{doc.Content[0]}
}

// get walks mapping keys; nil when a key is missing.
func get(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
}

func keys(n *yaml.Node) []string {
	var out []string
	if n != nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			out = append(out, n.Content[i].Value)
		}
	}
	return out
}

func scalar(n *yaml.Node) string {
	if n == nil {
		return ""
	}
	return n.Value
}

func seq(n *yaml.Node) []string {
	var out []string
	if n != nil && n.Kind == yaml.SequenceNode {
		for _, c := range n.Content {
			out = append(out, c.Value)
		}
	}
	return out
}

// resources of a type, by logical id.
func (tp template) resources(typ string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	res := get(tp.root, "Resources")
	for _, id := range keys(res) {
		if r := get(res, id); scalar(get(r, "Type")) == typ {
			out[id] = r
		}
	}
	return out
}

// function property, falling back to Globals.
func (tp template) fnProp(fn *yaml.Node, prop string) *yaml.Node {
	if v := get(fn, "Properties", prop); v != nil {
		return v
	}
	return get(tp.root, "Globals", "Function", prop)
}

var stageNamed = regexp.MustCompile(`deps\.StageNamed\("([A-Za-z0-9]+)"\)`)

// mainOf reads the main.go of a function's CodeUri.
func mainOf(t *testing.T, codeURI string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, codeURI, "main.go"))
	if err != nil {
		t.Errorf("CodeUri %s: %v", codeURI, err)
		return ""
	}
	return string(b)
}

func registry() map[string]bool {
	out := map[string]bool{}
	for name := range stages.NewEnv(stages.Env{}).Functions() {
		out[name] = true
	}
	return out
}

func TestEverySubstitutionHasItsFunctionInTemplateAndRegistry(t *testing.T) {
	tp := load(t)
	reg := registry()
	machines := tp.resources("AWS::Serverless::StateMachine")
	byURI := map[string]string{}
	for id, m := range machines {
		byURI[scalar(get(m, "Properties", "DefinitionUri"))] = id
	}
	fns := tp.resources("AWS::Serverless::Function")
	if len(statemachines.Names()) == 0 {
		t.Fatal("no state machines embedded")
	}
	for _, name := range statemachines.Names() {
		t.Run(name, func(t *testing.T) {
			def, err := statemachines.Definition(name)
			if err != nil {
				t.Fatal(err)
			}
			uri := "statemachines/" + name + ".asl.json"
			id, ok := byURI[uri]
			if !ok {
				t.Fatalf("no AWS::Serverless::StateMachine with DefinitionUri %s", uri)
			}
			m := machines[id]
			subs := get(m, "Properties", "DefinitionSubstitutions")
			want := statemachines.Substitutions(def)
			got := keys(subs)
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s DefinitionSubstitutions: got %v, want exactly the file's %v", id, got, want)
			}
			invoke := map[string]bool{}
			for _, p := range get(m, "Properties", "Policies").Content {
				if f := get(p, "LambdaInvokePolicy", "FunctionName"); f != nil {
					invoke[f.Value] = true
				}
			}
			for _, k := range want {
				fn, ok := statemachines.FunctionName(k)
				if !ok {
					child, ok := deps.MachineOfSubstitution(k)
					if !ok {
						t.Errorf("${%s}: neither a function nor a state machine", k)
						continue
					}
					v := get(subs, k)
					if v == nil || v.Tag != "!Ref" || byURI["statemachines/"+child+".asl.json"] != v.Value {
						t.Errorf("${%s}: got %s %q, want !Ref of the machine of statemachines/%s.asl.json", k, tagOf(v), scalar(v), child)
					}
					continue
				}
				if !reg[fn] {
					t.Errorf("${%s}: no stage function %q in (*stages.Env).Functions()", k, fn)
				}
				v := get(subs, k)
				if v == nil || v.Tag != "!GetAtt" || v.Value != fn+"Function.Arn" {
					t.Errorf("${%s}: got %s %q, want !GetAtt %sFunction.Arn", k, tagOf(v), scalar(v), fn)
				}
				f, ok := fns[fn+"Function"]
				if !ok {
					t.Errorf("${%s}: template has no function %sFunction", k, fn)
					continue
				}
				uri := scalar(get(f, "Properties", "CodeUri"))
				if got := stageNamed.FindStringSubmatch(mainOf(t, uri)); got == nil || got[1] != fn {
					t.Errorf("%sFunction (CodeUri %s): main.go does not build deps.StageNamed(%q)", fn, uri, fn)
				}
				if !invoke[fn+"Function"] {
					t.Errorf("%s may not invoke %sFunction: add a LambdaInvokePolicy", id, fn)
				}
			}
		})
	}
}

func tagOf(n *yaml.Node) string {
	if n == nil {
		return "nothing"
	}
	return n.Tag
}

func TestEveryStageFunctionIsUsed(t *testing.T) {
	tp := load(t)
	used := map[string]bool{}
	for _, name := range statemachines.Names() {
		def, err := statemachines.Definition(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range statemachines.Substitutions(def) {
			if fn, ok := statemachines.FunctionName(k); ok {
				used[fn] = true
			}
		}
	}
	for name := range registry() {
		if !used[name] && apiOnly[name] == "" {
			t.Errorf("stage function %q is used by no state machine and not listed as API-only", name)
		}
	}
	// Every stage function of the template is one a state machine uses.
	for id, f := range tp.resources("AWS::Serverless::Function") {
		uri := scalar(get(f, "Properties", "CodeUri"))
		if !strings.HasPrefix(uri, "functions/stages/") {
			continue
		}
		m := stageNamed.FindStringSubmatch(mainOf(t, uri))
		if m == nil {
			t.Errorf("%s (CodeUri %s): main.go builds no deps.StageNamed", id, uri)
			continue
		}
		if id != m[1]+"Function" {
			t.Errorf("%s builds stage %s: name it %sFunction, as ${%sFunctionArn} expects", id, m[1], m[1], m[1])
		}
		if !used[m[1]] && apiOnly[m[1]] == "" {
			t.Errorf("%s: stage %s is used by no state machine", id, m[1])
		}
	}
}

func TestEveryFunctionIsBuiltTheSameWay(t *testing.T) {
	tp := load(t)
	fns := tp.resources("AWS::Serverless::Function")
	if len(fns) == 0 {
		t.Fatal("no functions")
	}
	seen := map[string]string{}
	for id, f := range fns {
		if got := scalar(tp.fnProp(f, "Runtime")); got != "provided.al2023" {
			t.Errorf("%s Runtime: got %q, want provided.al2023", id, got)
		}
		if got := scalar(tp.fnProp(f, "Handler")); got != "bootstrap" {
			t.Errorf("%s Handler: got %q, want bootstrap", id, got)
		}
		if got := seq(tp.fnProp(f, "Architectures")); strings.Join(got, ",") != "arm64" {
			t.Errorf("%s Architectures: got %v, want [arm64]", id, got)
		}
		if got := scalar(get(f, "Metadata", "BuildMethod")); got != "go1.x" {
			t.Errorf("%s Metadata.BuildMethod: got %q, want go1.x", id, got)
		}
		uri := scalar(get(f, "Properties", "CodeUri"))
		if !strings.HasPrefix(uri, "functions/") {
			t.Errorf("%s CodeUri %q: want a folder under functions/", id, uri)
		}
		if other, dup := seen[uri]; dup {
			t.Errorf("%s and %s share CodeUri %s", id, other, uri)
		}
		seen[uri] = id
		if src := mainOf(t, uri); !strings.Contains(src, "lambda.Start(") {
			t.Errorf("%s: %s/main.go does not call lambda.Start", id, uri)
		}
	}
	// No function folder is left out of the template.
	err := filepath.WalkDir(filepath.Join(root, "functions"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "main.go" {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(p))
		if _, ok := seen[filepath.ToSlash(rel)]; !ok {
			t.Errorf("%s/main.go is deployed by no function of template.yaml", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTableMatchesTheStore(t *testing.T) {
	tp := load(t)
	tables := tp.resources("AWS::DynamoDB::Table")
	tbl, ok := tables["Table"]
	if !ok {
		t.Fatal("no AWS::DynamoDB::Table named Table")
	}
	p := get(tbl, "Properties")
	attrs := map[string]string{}
	for _, a := range get(p, "AttributeDefinitions").Content {
		attrs[scalar(get(a, "AttributeName"))] = scalar(get(a, "AttributeType"))
	}
	key := func(n *yaml.Node) string {
		var parts []string
		for _, k := range n.Content {
			parts = append(parts, scalar(get(k, "AttributeName"))+"/"+scalar(get(k, "KeyType")))
		}
		return strings.Join(parts, ",")
	}
	if got := key(get(p, "KeySchema")); got != "pk/HASH,sk/RANGE" {
		t.Errorf("KeySchema: got %s, want pk/HASH,sk/RANGE", got)
	}
	gsis := map[string]*yaml.Node{}
	for _, g := range get(p, "GlobalSecondaryIndexes").Content {
		gsis[scalar(get(g, "IndexName"))] = g
	}
	if len(gsis) != len(store.Indexes) {
		t.Errorf("got %d GSIs, want one per store index (%v)", len(gsis), store.Indexes)
	}
	for _, idx := range store.Indexes {
		g, ok := gsis[dynamo.GSIName(idx)]
		if !ok {
			t.Errorf("no GSI %s for store index %s", dynamo.GSIName(idx), idx)
			continue
		}
		if got, want := key(get(g, "KeySchema")), idx+"_pk/HASH,"+idx+"_sk/RANGE"; got != want {
			t.Errorf("GSI %s KeySchema: got %s, want %s", dynamo.GSIName(idx), got, want)
		}
		if got := scalar(get(g, "Projection", "ProjectionType")); got != "ALL" {
			t.Errorf("GSI %s projection: got %s, want ALL", dynamo.GSIName(idx), got)
		}
		for _, a := range []string{idx + "_pk", idx + "_sk"} {
			if attrs[a] != "S" {
				t.Errorf("attribute %s: got type %q, want S", a, attrs[a])
			}
		}
	}
	if got := scalar(get(p, "BillingMode")); got != "PAY_PER_REQUEST" {
		t.Errorf("BillingMode: got %s, want PAY_PER_REQUEST", got)
	}
	if got := scalar(get(p, "TimeToLiveSpecification", "AttributeName")); got != "ttl" {
		t.Errorf("TTL attribute: got %q, want ttl", got)
	}
}

func TestPublicRoutesBypassTheAuthorizer(t *testing.T) {
	tp := load(t)
	api0 := tp.resources("AWS::Serverless::Function")["ApiFunction"]
	if api0 == nil {
		t.Fatal("no ApiFunction")
	}
	open := map[string]bool{}
	proxy := false
	for _, id := range keys(get(api0, "Properties", "Events")) {
		e := get(api0, "Properties", "Events", id, "Properties")
		path, method := scalar(get(e, "Path")), scalar(get(e, "Method"))
		if scalar(get(e, "Auth", "Authorizer")) == "NONE" {
			open[strings.ToUpper(method)+" "+path] = true
		}
		if path == "/{proxy+}" && strings.EqualFold(method, "ANY") {
			proxy = true
		}
	}
	if !proxy {
		t.Error("ApiFunction has no ANY /{proxy+} event: routes would be missing")
	}
	if got := scalar(get(tp.root, "Resources", "Api", "Properties", "Auth", "DefaultAuthorizer")); got == "" {
		t.Error("the API has no DefaultAuthorizer")
	}
	want := []string{"GET /healthz"}
	for _, r := range api.Routes() {
		if r.Public {
			want = append(want, r.Method+" "+r.Pattern)
		}
	}
	for _, w := range want {
		if !open[w] {
			t.Errorf("public route %s has no ApiFunction event with Auth.Authorizer NONE", w)
		}
	}
}

func TestEveryFunctionHasSampleEvents(t *testing.T) {
	tp := load(t)
	for id, f := range tp.resources("AWS::Serverless::Function") {
		uri := scalar(get(f, "Properties", "CodeUri"))
		var pattern string
		if strings.HasPrefix(uri, "functions/stages/") {
			pattern = filepath.Join(root, "events/stages", filepath.Base(uri)+".json")
		} else {
			pattern = filepath.Join(root, "events", filepath.Base(uri), "*.json")
		}
		m, _ := filepath.Glob(pattern)
		if len(m) == 0 {
			t.Errorf("%s: no sample event (%s)", id, pattern)
		}
	}
}

// Functions start workflows by ARN: STRAAS_STATE_MACHINE_ARN_PREFIX plus a machine's
// name is the ARN of the machine the template names <stack>-<machine>, so that no
// function needs states:ListStateMachines (which IAM cannot scope).
func TestMachineARNsNeedNoListing(t *testing.T) {
	tp := load(t)
	env := get(tp.root, "Globals", "Function", "Environment", "Variables")
	prefix := get(env, deps.EnvMachinePrefix)
	arnPrefix := get(env, deps.EnvMachineARNPrefix)
	if prefix == nil || prefix.Tag != "!Sub" || prefix.Value != "${AWS::StackName}-" {
		t.Fatalf("%s: got %s %q, want !Sub \"${AWS::StackName}-\"", deps.EnvMachinePrefix, tagOf(prefix), scalar(prefix))
	}
	const want = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-"
	if arnPrefix == nil || arnPrefix.Tag != "!Sub" || arnPrefix.Value != want {
		t.Fatalf("%s: got %s %q, want !Sub %q", deps.EnvMachineARNPrefix, tagOf(arnPrefix), scalar(arnPrefix), want)
	}
	for id, m := range tp.resources("AWS::Serverless::StateMachine") {
		uri := scalar(get(m, "Properties", "DefinitionUri"))
		name := strings.TrimSuffix(strings.TrimPrefix(uri, "statemachines/"), ".asl.json")
		if n := get(m, "Properties", "Name"); n == nil || n.Tag != "!Sub" || n.Value != "${AWS::StackName}-"+name {
			t.Errorf("%s Name: got %s %q, want !Sub \"${AWS::StackName}-%s\" (its ARN is the prefix's)", id, tagOf(n), scalar(n), name)
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "states:ListStateMachines") {
		t.Error("template.yaml still grants states:ListStateMachines")
	}
}
