package gitrepo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
)

// Verify checks that the repos' masters hold everything the catalog promises: for every
// type, version and role the scripts and install metadata, the puppet entry points, a
// pre-config that parses, a default.json that parses, existing drain commands and
// dependency types. It returns every problem found, joined; nil when all is well. Admins
// run it after committing a new type; the tests run it on the defaults.
func (r *Repos) Verify(ctx context.Context) error {
	c, err := r.catalog(ctx)
	if err != nil {
		return err
	}
	var problems []error
	for _, e := range c.broken {
		problems = append(problems, e)
	}
	for _, name := range sortedKeys(c.types) {
		d := c.types[name]
		for _, dep := range d.Dependencies {
			if _, ok := c.types[dep.Type]; !ok {
				problems = append(problems, fmt.Errorf("%s: depends on unknown type %q", d.File, dep.Type))
			}
		}
		err := r.Scripts.at(ctx, c.commit, func(s snapshot) error {
			need := func(p string) {
				if _, ok, err := s.file(p); err != nil {
					problems = append(problems, err)
				} else if !ok {
					problems = append(problems, fmt.Errorf("%s: missing %s", d.File, p))
				}
			}
			if d.Drain != nil {
				need(GuestCmdPath(d.Drain.Command))
			}
			for _, role := range d.Roles {
				need(SitePPPath(role))
				need(path.Join("puppet", "modules", role, "manifests", "init.pp"))
				for _, v := range d.Versions {
					need(CmdPath(role, v, "runpuppet.sh"))
					need(CmdPath(role, v, "validate.sh"))
					p := CmdPath(role, v, "install.json")
					if b, ok, err := s.file(p); err == nil && ok {
						var spec InstallSpec
						if err := json.Unmarshal(b, &spec); err != nil || spec.Package == "" || spec.Version == "" {
							problems = append(problems, fmt.Errorf("%s: want {\"package\", \"version\"}", p))
						}
					} else {
						need(p)
					}
				}
			}
			for _, v := range d.Versions {
				file, b, err := preConfigFile(s, d.Type, v)
				if err != nil {
					problems = append(problems, err)
				} else if file != "" {
					if _, err := parsePreConfig(s, file, b); err != nil {
						problems = append(problems, err)
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, v := range d.Versions {
			if _, err := r.DefaultConfig(ctx, Master, d.Type, v); err != nil {
				problems = append(problems, fmt.Errorf("config repo: %w", err))
			}
		}
	}
	return errors.Join(problems...)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
