package stages_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode"

	"github.com/straas/straas/shared/asl"
	"github.com/straas/straas/shared/asl/asltest"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/stages"
	"github.com/straas/straas/shared/workflow"
	"github.com/straas/straas/statemachines"
)

var substRE = regexp.MustCompile(`\$\{([A-Za-z0-9]+)\}`)

// machineOf maps ConfigChangeStateMachineArn to config_change.
func machineOf(k string) string {
	n := strings.TrimSuffix(k, "StateMachineArn")
	var b strings.Builder
	for i, r := range n {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// The policy workflows load on the interpreter with the real stage functions: every
// ${XFunctionArn} is a registered function and every path and state is well formed.
func TestPolicyMachinesLoad(t *testing.T) {
	env := stages.NewEnv(stages.Env{DB: db.New(asltest.NewMemStore(), nil)})
	fns := env.Functions()
	machines := map[string]*asl.Machine{}
	for _, name := range []string{"heal", "scale", "maintenance", "converge"} {
		def, err := statemachines.Definition(name)
		if err != nil {
			t.Fatal(err)
		}
		subst := map[string]string{}
		for _, m := range substRE.FindAllSubmatch(def, -1) {
			k := string(m[1])
			if fn, ok := strings.CutSuffix(k, "FunctionArn"); ok {
				if fns[fn] == nil {
					t.Errorf("%s: ${%s} names no registered stage function", name, k)
				}
				subst[k] = statemachines.EmbeddedARN(fn)
				continue
			}
			subst[k] = asl.MachineARN(machineOf(k))
		}
		m, err := asl.Load(name, def, subst)
		if err != nil {
			t.Fatalf("load %s: %v", name, err)
		}
		machines[name] = m
	}
	byARN := map[string]workflow.Func{}
	for name, f := range fns {
		byARN[statemachines.EmbeddedARN(name)] = f
	}
	if _, err := asl.New(asl.Config{Store: asltest.NewMemStore(), Machines: machines, Functions: byARN}); err != nil {
		t.Fatalf("engine over the policy machines: %v", err)
	}
}
