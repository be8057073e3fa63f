// Package statemachines embeds the workflow definitions (*.asl.json) that both AWS Step
// Functions (through template.yaml's DefinitionUri) and the embedded interpreter run.
package statemachines

import (
	"embed"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
)

//go:embed *.asl.json
var FS embed.FS

// Names lists the state machines, by file name without .asl.json.
func Names() []string {
	ents, _ := fs.Glob(FS, "*.asl.json")
	out := make([]string, 0, len(ents))
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e, ".asl.json"))
	}
	sort.Strings(out)
	return out
}

// Definition returns a state machine's ASL document.
func Definition(name string) ([]byte, error) {
	b, err := FS.ReadFile(name + ".asl.json")
	if err != nil {
		return nil, fmt.Errorf("state machine %q: %w", name, err)
	}
	return b, nil
}

var substRE = regexp.MustCompile(`\$\{([A-Za-z0-9]+)\}`)

// Substitutions lists every ${Name} a definition uses (SAM DefinitionSubstitutions).
func Substitutions(def []byte) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range substRE.FindAllSubmatch(def, -1) {
		if k := string(m[1]); !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// FunctionName maps a substitution like "SpawnFunctionArn" to its function "Spawn".
func FunctionName(subst string) (string, bool) {
	return strings.CutSuffix(subst, "FunctionArn")
}

// EmbeddedARN is the resource the embedded interpreter resolves a function to.
func EmbeddedARN(function string) string { return "arn:straas:function:" + function }
