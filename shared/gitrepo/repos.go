// Package gitrepo keeps straas's two git repositories (seed 000 §4.2): the config repo
// (service settings and per-component configuration in the JSON-ini format, one branch
// per topology, tags "<role>&<branch>&<tag>") and the script repo (per-type metadata,
// per-role scripts, guest commands, pre-config data and templates, puppet code).
//
// Component-specific logic is data in the script repo, read at run time and cached by
// commit hash: the catalog, install metadata, pre-config evaluation and site.pp rendering
// are generic. In embedded mode both repos are local bare repositories seeded from the
// defaults shipped in the binary; in AWS mode they are mirrors of remote repositories
// reached over https with a token. All git access is go-git.
package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"

	"github.com/straas/straas/defaults"
	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
)

// Options configure Open.
type Options struct {
	// Dir holds the local bare repositories config.git and scripts.git (the mirrors in
	// AWS mode; in Lambda a directory under /tmp).
	Dir string
	// Remote, when set, selects AWS mode: the repos live on a git server.
	Remote *RemoteOptions
	Logger *slog.Logger
	Clock  clock.Clock // commit and tag times; default the wall clock
	// Committer signs every commit as committer (the author is the API user); default
	// "straas <straas@localhost>".
	Committer Author
	// ConfigDefaults and ScriptDefaults seed empty repos; default the embedded defaults.
	ConfigDefaults fs.FS
	ScriptDefaults fs.FS
}

// RemoteOptions name the remote repositories of AWS mode.
type RemoteOptions struct {
	ConfigURL  string // e.g. https://git.example.com/straas/config.git
	ScriptsURL string
	Token      string // sent as the password of HTTP basic auth
	Username   string // default "straas"
	// RefreshInterval bounds how stale a read may be: reads fetch when the last fetch
	// is older. Default 5s; negative fetches before every read.
	RefreshInterval time.Duration
	// PushAttempts bounds fetch-rebase-push rounds of one write. Default 20.
	PushAttempts int
}

// Repos is the config repo and the script repo. It is safe for concurrent use.
type Repos struct {
	// Config is the config repo; most callers use the methods of Repos instead.
	Config *Repo
	// Scripts is the script repo.
	Scripts *Repo

	log   *slog.Logger
	cache caches
}

// Open opens (creating and seeding on first start) the config and script repos.
// Seeding happens only while a repo has no master branch, so a restart neither re-seeds
// nor adds commits.
func Open(ctx context.Context, o Options) (*Repos, error) {
	if o.Dir == "" {
		return nil, errs.Invalidf("Dir", "gitrepo: a directory is required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Committer.Name == "" {
		o.Committer = Author{Name: "straas", Email: "straas@localhost"}
	}
	if o.ConfigDefaults == nil {
		o.ConfigDefaults = defaults.Config()
	}
	if o.ScriptDefaults == nil {
		o.ScriptDefaults = defaults.Scripts()
	}
	log := o.Logger.With("component", "gitrepo")
	var cfgRemote, scrRemote *remoteSync
	if ro := o.Remote; ro != nil {
		if ro.ConfigURL == "" || ro.ScriptsURL == "" {
			return nil, errs.Invalidf("Remote", "gitrepo: remote mode needs both ConfigURL and ScriptsURL")
		}
		refresh := ro.RefreshInterval
		if refresh == 0 {
			refresh = 5 * time.Second
		}
		attempts := ro.PushAttempts
		if attempts <= 0 {
			attempts = 20
		}
		auth := basicAuth(ro.Username, ro.Token)
		cfgRemote = &remoteSync{url: ro.ConfigURL, auth: auth, refresh: refresh, attempts: attempts}
		scrRemote = &remoteSync{url: ro.ScriptsURL, auth: auth, refresh: refresh, attempts: attempts}
	}
	cfg, err := openRepo(ctx, "config", filepath.Join(o.Dir, "config.git"), cfgRemote, o.Clock, log, o.Committer)
	if err != nil {
		return nil, err
	}
	scr, err := openRepo(ctx, "scripts", filepath.Join(o.Dir, "scripts.git"), scrRemote, o.Clock, log, o.Committer)
	if err != nil {
		return nil, err
	}
	r := &Repos{Config: cfg, Scripts: scr, log: log}
	r.cache.init()
	if err := seed(ctx, cfg, o.ConfigDefaults, "Seed the config repo with straas's default service and application settings"); err != nil {
		return nil, err
	}
	if err := seed(ctx, scr, o.ScriptDefaults, "Seed the script repo with straas's default component types, scripts and pre-config data"); err != nil {
		return nil, err
	}
	return r, nil
}

// seed commits the defaults as the first commit of master unless master exists.
func seed(ctx context.Context, g *Repo, files fs.FS, message string) error {
	var changes []Change
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		changes = append(changes, Change{Path: p, Content: b, Mode: seedMode(g.name, p)})
		return nil
	})
	if err != nil {
		return errs.Wrap(errs.Other, "read "+g.name+" defaults", err)
	}
	if len(changes) == 0 {
		return errs.E(errs.Invalid, "seed "+g.name, "no default files")
	}
	before, _ := g.ResolveRef(ctx, Master)
	h, err := g.commit(ctx, Master, changes, message, g.committer, true)
	if err != nil {
		return fmt.Errorf("seed %s repo: %w", g.name, err)
	}
	if before == "" {
		g.log.Info("seeded repo from defaults", "commit", h, "files", len(changes))
	}
	return nil
}

// seedMode marks scripts executable: embed.FS does not keep file modes.
func seedMode(repo, p string) filemode.FileMode {
	if repo == "scripts" && (strings.HasSuffix(p, ".sh") || strings.HasPrefix(p, "guestcmds/")) {
		return filemode.Executable
	}
	return filemode.Regular
}

// Close releases nothing today; it exists so that callers can defer it.
func (r *Repos) Close() error { return nil }

// Refresh fetches both repos from their remotes now (AWS mode).
func (r *Repos) Refresh(ctx context.Context) error {
	return errors.Join(r.Config.Refresh(ctx), r.Scripts.Refresh(ctx))
}

// CreateBranch creates branch in the config repo from master; it is a no-op if the
// branch exists. It returns the branch's commit.
func (r *Repos) CreateBranch(ctx context.Context, branch string) (string, error) {
	if err := ValidateBranch(branch); err != nil {
		return "", err
	}
	if branch == Master {
		return r.Config.ResolveRef(ctx, Master)
	}
	g := r.Config
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.refreshLocked(ctx); err != nil {
		return "", err
	}
	h, err := g.createBranchLocked(ctx, branch, Master)
	if err == nil {
		r.log.Info("created config branch", "branch", branch, "commit", h)
	}
	return h, err
}

// DeleteBranch deletes a branch of the config repo and all its tags. Deleting a missing
// branch is a no-op (deletion workflows may run twice); master cannot be deleted.
func (r *Repos) DeleteBranch(ctx context.Context, branch string) error {
	if err := ValidateBranch(branch); err != nil {
		return err
	}
	if branch == Master {
		return errs.E(errs.Invalid, "delete branch", "master cannot be deleted")
	}
	g := r.Config
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.fetchLocked(ctx); err != nil {
		return err
	}
	tags, err := g.tagsLocked(func(name string) bool {
		_, b, _, ok := ParseGitTagName(name)
		return ok && b == branch
	})
	if err != nil {
		return err
	}
	var names []plumbing.ReferenceName
	for _, t := range tags {
		names = append(names, plumbing.NewTagReferenceName(t.GitName))
	}
	if _, ok, err := g.branchExistsLocked(branch); err != nil {
		return err
	} else if ok {
		names = append(names, plumbing.NewBranchReferenceName(branch))
	}
	if err := g.deleteRefsLocked(ctx, names); err != nil {
		return err
	}
	r.log.Info("deleted config branch", "branch", branch, "tags", len(tags))
	return nil
}

// Tags lists the tags of branch, oldest first.
func (r *Repos) Tags(ctx context.Context, branch string) ([]Tag, error) {
	if err := ValidateBranch(branch); err != nil {
		return nil, err
	}
	var out []Tag
	err := r.Config.lookup(ctx, func() error {
		if _, ok, err := r.Config.branchExistsLocked(branch); err != nil {
			return err
		} else if !ok {
			return errs.NotFoundf("branch %q not found", branch)
		}
		var err error
		out, err = r.Config.tagsLocked(func(name string) bool {
			_, b, _, ok := ParseGitTagName(name)
			return ok && b == branch
		})
		return err
	})
	return out, err
}

// Tag returns one tag of branch.
func (r *Repos) Tag(ctx context.Context, branch, tag string) (Tag, error) {
	if err := ValidateBranch(branch); err != nil {
		return Tag{}, err
	}
	if err := ValidateTagName(tag); err != nil {
		return Tag{}, err
	}
	var out Tag
	err := r.Config.lookup(ctx, func() error {
		t, ok, err := r.findTagLocked(branch, tag)
		if err != nil {
			return err
		}
		if !ok {
			return errs.NotFoundf("tag %q of branch %q not found", tag, branch)
		}
		out = t
		return nil
	})
	return out, err
}

func (r *Repos) findTagLocked(branch, tag string) (Tag, bool, error) {
	for _, role := range []string{TagRoleUser, TagRoleAdmin} {
		ref, err := r.Config.st.Reference(plumbing.NewTagReferenceName(GitTagName(role, branch, tag)))
		if errors.Is(err, plumbing.ErrReferenceNotFound) {
			continue
		}
		if err != nil {
			return Tag{}, false, err
		}
		t, err := r.Config.describeTagLocked(ref)
		return t, err == nil, err
	}
	return Tag{}, false, nil
}

// CreateTag tags the head of branch as role (TagRoleUser or TagRoleAdmin). A tag name is
// unique within a branch whatever its role: a second one is an errs.Conflict error.
func (r *Repos) CreateTag(ctx context.Context, branch, tag, role, message string, author Author) (Tag, error) {
	if err := ValidateBranch(branch); err != nil {
		return Tag{}, err
	}
	if err := ValidateTagName(tag); err != nil {
		return Tag{}, err
	}
	if role != TagRoleUser && role != TagRoleAdmin {
		return Tag{}, errs.Invalidf("role", "%q: must be %q or %q", role, TagRoleUser, TagRoleAdmin)
	}
	if message == "" {
		message = "Tag " + tag + " of " + branch
	}
	g := r.Config
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.refreshLocked(ctx); err != nil {
		return Tag{}, err
	}
	head, ok, err := g.branchExistsLocked(branch)
	if err != nil {
		return Tag{}, err
	}
	if !ok {
		return Tag{}, errs.NotFoundf("branch %q not found", branch)
	}
	if _, exists, err := r.findTagLocked(branch, tag); err != nil {
		return Tag{}, err
	} else if exists {
		return Tag{}, errs.Conflictf("tag %q of branch %q already exists", tag, branch)
	}
	name := GitTagName(role, branch, tag)
	if err := g.createTagLocked(ctx, name, head, message, author); err != nil {
		return Tag{}, err
	}
	t, _, err := r.findTagLocked(branch, tag)
	return t, err
}

// DeleteTag deletes a tag of branch (of either role).
func (r *Repos) DeleteTag(ctx context.Context, branch, tag string) error {
	if err := ValidateBranch(branch); err != nil {
		return err
	}
	if err := ValidateTagName(tag); err != nil {
		return err
	}
	g := r.Config
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.refreshLocked(ctx); err != nil {
		return err
	}
	t, ok, err := r.findTagLocked(branch, tag)
	if err != nil {
		return err
	}
	if !ok {
		return errs.NotFoundf("tag %q of branch %q not found", tag, branch)
	}
	return g.deleteRefsLocked(ctx, []plumbing.ReferenceName{plumbing.NewTagReferenceName(t.GitName)})
}

// gitRef maps a configuration ref to what Repo understands (branch, git tag or hash).
func (r *Repos) gitRef(ctx context.Context, ref string) (string, error) {
	p, err := ParseRef(ref)
	if err != nil {
		return "", err
	}
	switch {
	case p.Commit != "":
		return p.Commit, nil
	case p.Tag == "":
		return plumbing.NewBranchReferenceName(p.Branch).String(), nil
	}
	t, err := r.Tag(ctx, p.Branch, p.Tag)
	if err != nil {
		return "", err
	}
	return plumbing.NewTagReferenceName(t.GitName).String(), nil
}

// ResolveRef returns the commit of a config ref: "master", "test-1@phx01",
// "test-1@phx01&test-v1.0.0" or a commit hash.
func (r *Repos) ResolveRef(ctx context.Context, ref string) (string, error) {
	gr, err := r.gitRef(ctx, ref)
	if err != nil {
		return "", err
	}
	return r.Config.ResolveRef(ctx, gr)
}

// Read returns a folder listing or a file of the config repo at ref.
func (r *Repos) Read(ctx context.Context, ref, p string) (Entry, error) {
	gr, err := r.gitRef(ctx, ref)
	if err != nil {
		return Entry{}, err
	}
	e, err := r.Config.Read(ctx, gr, p)
	e.Ref = ref
	return e, err
}

// WriteFile commits content at path on branch of the config repo, with author as the
// commit's author, and returns the new commit. JSON-ini files (*.json under service/ and
// app/) must pass service/ini_json.schema; a user.json may only set options its
// default.json declares, with their types; a new ini_json.schema must compile. A
// malformed file is an errs.Invalid error whose Field is the JSON path of the bad field.
// Permissions are not checked here: see CheckWrite and AuthorizeWrite.
func (r *Repos) WriteFile(ctx context.Context, branch, p string, content []byte, message string, author Author) (string, error) {
	if err := ValidateBranch(branch); err != nil {
		return "", err
	}
	p = cleanPath(p)
	if err := validateConfigPath(p); err != nil {
		return "", err
	}
	if err := r.ValidateConfigFile(ctx, branch, p, content); err != nil {
		return "", err
	}
	if message == "" {
		message = "Update " + p
	}
	h, err := r.Config.Commit(ctx, branch, []Change{{Path: p, Content: content}}, message, author)
	if err == nil {
		r.log.Info("config file written", "branch", branch, "path", p, "author", author.Name, "commit", h)
	}
	return h, err
}

// DeleteFile removes a file from branch of the config repo.
func (r *Repos) DeleteFile(ctx context.Context, branch, p, message string, author Author) (string, error) {
	if err := ValidateBranch(branch); err != nil {
		return "", err
	}
	p = cleanPath(p)
	if err := validateConfigPath(p); err != nil {
		return "", err
	}
	if _, err := r.Config.ReadFile(ctx, branch, p); err != nil {
		return "", err
	}
	if message == "" {
		message = "Delete " + p
	}
	return r.Config.Commit(ctx, branch, []Change{{Path: p, Delete: true}}, message, author)
}

// validateConfigPath keeps writes inside the two categories of §4.2.2.1.
func validateConfigPath(p string) error {
	top, rest, _ := strings.Cut(p, "/")
	if (top != "service" && top != "app") || rest == "" || strings.HasSuffix(p, "/") {
		return errs.Invalidf("path", "%q: a file under service/ or app/<type>/<version>/", p)
	}
	if top == "app" && len(strings.Split(p, "/")) != 4 {
		return errs.Invalidf("path", "%q: application files are app/<type>/<version>/<file>", p)
	}
	return nil
}

// ScriptsRef is the commit of the script repo's master: what agents sync to.
func (r *Repos) ScriptsRef(ctx context.Context) (string, error) {
	return r.Scripts.ResolveRef(ctx, Master)
}

// ReadScript returns a file of the script repo at ref (a commit from ScriptsRef, a
// branch, or "" for master).
func (r *Repos) ReadScript(ctx context.Context, ref, p string) ([]byte, error) {
	return r.Scripts.ReadFile(ctx, ref, p)
}

// GuestCommands lists the guest commands of the script repo's master by group
// ("zk-cmd": ["create_namespace", ...]).
func (r *Repos) GuestCommands(ctx context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	err := r.Scripts.at(ctx, Master, func(s snapshot) error {
		groups, err := s.list("guestcmds")
		if err != nil {
			return err
		}
		for _, gr := range groups {
			if gr.Type != EntryFolder {
				continue
			}
			cmds, err := s.list(gr.Path)
			if err != nil {
				return err
			}
			var names []string
			for _, c := range cmds {
				if c.Type == EntryFile && !strings.HasPrefix(c.Name, ".") && path.Ext(c.Name) != ".md" {
					names = append(names, c.Name)
				}
			}
			out[gr.Name] = names
		}
		return nil
	})
	return out, err
}

// GuestCommand checks that "<group>/<name>" exists and returns its script.
func (r *Repos) GuestCommand(ctx context.Context, command string) ([]byte, error) {
	group, name, ok := strings.Cut(command, "/")
	if !ok || group == "" || name == "" || strings.Contains(name, "/") || strings.Contains(command, "..") {
		return nil, errs.Invalidf("command", "%q: a guest command is <group>/<name>", command)
	}
	b, err := r.Scripts.ReadFile(ctx, Master, "guestcmds/"+group+"/"+name)
	if errs.Is(err, errs.NotFound) {
		return nil, errs.Invalidf("command", "unknown guest command %q", command)
	}
	return b, err
}
