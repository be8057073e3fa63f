// Package defaults is the content the config and script repos start with: embedded in
// the binary and committed into the repos on first start (see docs/script-repo.md).
// Everything component-specific lives here as data, so a new component type is a set of
// files committed to the repos, never a Go change.
package defaults

import (
	"embed"
	"io/fs"
)

//go:embed all:config
var configFS embed.FS

//go:embed all:scripts
var scriptsFS embed.FS

// Config is the default content of the config repo (service/, app/).
func Config() fs.FS { return sub(configFS, "config") }

// Scripts is the default content of the script repo (components/, cmd/, guestcmds/,
// pre_config/, puppet/).
func Scripts() fs.FS { return sub(scriptsFS, "scripts") }

func sub(f embed.FS, dir string) fs.FS {
	s, err := fs.Sub(f, dir)
	if err != nil { // cannot happen: dir is a literal embedded above
		return f
	}
	return s
}
