package api

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

var docHeading = regexp.MustCompile("^###.*`([A-Z|]+) (/[^` ]*)`")

// TestAPIDocCoversEveryRoute: docs/api.md has a section (a ### heading naming the method
// and path) for every route of the table, so that the API's reference cannot fall
// behind it.
func TestAPIDocCoversEveryRoute(t *testing.T) {
	b, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		for _, m := range regexp.MustCompile("`([A-Z|]+) (/[^` ]*)`").FindAllStringSubmatch(line, -1) {
			if !docHeading.MatchString(line) {
				continue
			}
			for _, method := range strings.Split(m[1], "|") {
				documented[method+" "+m[2]] = true
			}
		}
	}
	for _, rt := range Routes() {
		if k := rt.Method + " " + OpenAPIPath(rt.Pattern); !documented[k] {
			t.Errorf("docs/api.md has no ### section for %s", k)
		}
	}
}
