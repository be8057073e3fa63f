package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/filesystem"

	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
)

// Author identifies who made a change: the API user for configuration writes.
type Author struct {
	Name  string `json:"name"`
	Email string `json:"email,omitempty"`
}

func (a Author) orDefault(d Author) Author {
	if a.Name == "" {
		return d
	}
	if a.Email == "" {
		a.Email = a.Name + "@straas"
	}
	return a
}

// Change is one file written or deleted by a commit.
type Change struct {
	Path    string
	Content []byte
	Delete  bool
	// Mode of a written file; zero keeps the mode of the file it replaces, or regular.
	Mode filemode.FileMode
}

// Entry is what Read returns: a folder listing or a file's content.
type Entry struct {
	Path   string     `json:"path"`
	Ref    string     `json:"ref"`
	Commit string     `json:"commit"`
	Type   string     `json:"type"` // EntryFile or EntryFolder
	Files  []FileInfo `json:"files,omitempty"`
	// Content of a file. The API decides how to present it.
	Content []byte `json:"-"`
}

// Entry types.
const (
	EntryFile   = "file"
	EntryFolder = "folder"
)

// FileInfo is one item of a folder listing.
type FileInfo struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Type string `json:"type"` // EntryFile or EntryFolder
	Size int64  `json:"size,omitempty"`
}

// CommitInfo summarises a commit for history listings.
type CommitInfo struct {
	Hash      string    `json:"hash"`
	Author    Author    `json:"author"`
	When      time.Time `json:"when"`
	Message   string    `json:"message"`
	Committer Author    `json:"committer"`
}

// Repo is one git repository: a local bare repository (embedded mode) or a local bare
// mirror of a remote one (AWS mode). go-git's storage is not safe for concurrent use,
// so every access to it holds mu; parsed results are cached by commit hash instead.
type Repo struct {
	name      string
	dir       string
	clock     clock.Clock
	log       *slog.Logger
	committer Author

	mu     sync.Mutex
	st     *filesystem.Storage
	repo   *git.Repository
	remote *remoteSync // nil in embedded mode

	files fileCache
}

// remoteSync holds what a mirror needs to talk to its remote.
type remoteSync struct {
	url       string
	auth      transport.AuthMethod
	refresh   time.Duration
	lastFetch time.Time
	attempts  int
}

const pushRef = plumbing.ReferenceName("refs/straas/push")

func openRepo(ctx context.Context, name, dir string, rs *remoteSync, clk clock.Clock, log *slog.Logger, committer Author) (*Repo, error) {
	g := &Repo{name: name, dir: dir, clock: clk, log: log.With("repo", name), committer: committer, remote: rs}
	g.files.init()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, errs.Wrap(errs.Unavailable, "open "+name+" repo", err)
	}
	g.st = filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
	r, err := git.Open(g.st, nil)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		r, err = git.InitWithOptions(g.st, nil, git.InitOptions{DefaultBranch: plumbing.Master})
		if err == nil {
			// Bare repositories serve HEAD; make it name master whatever git's default is.
			err = g.st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.Master))
		}
	}
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, "open "+name+" repo "+dir, err)
	}
	g.repo = r
	if rs != nil {
		if err := g.ensureOrigin(); err != nil {
			return nil, err
		}
		g.mu.Lock()
		err := g.fetchLocked(ctx)
		g.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	return g, nil
}

func (g *Repo) ensureOrigin() error {
	cfg, err := g.repo.Config()
	if err != nil {
		return errs.Wrap(errs.Other, "read "+g.name+" repo config", err)
	}
	want := &gitconfig.RemoteConfig{
		Name: "origin",
		URLs: []string{g.remote.url},
		Fetch: []gitconfig.RefSpec{
			"+refs/heads/*:refs/heads/*",
			"+refs/tags/*:refs/tags/*",
		},
	}
	if have, ok := cfg.Remotes["origin"]; ok && len(have.URLs) == 1 && have.URLs[0] == g.remote.url {
		return nil
	}
	cfg.Remotes["origin"] = want
	if err := g.st.SetConfig(cfg); err != nil {
		return errs.Wrap(errs.Other, "write "+g.name+" repo config", err)
	}
	return nil
}

// Name is "config" or "scripts".
func (g *Repo) Name() string { return g.name }

// Dir is where the local (bare) repository lives.
func (g *Repo) Dir() string { return g.dir }

// fetchLocked mirrors the remote's branches and tags (pruning deleted ones). mu held.
func (g *Repo) fetchLocked(ctx context.Context) error {
	if g.remote == nil {
		return nil
	}
	err := g.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: "origin",
		RefSpecs:   []gitconfig.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
		Auth:       g.remote.auth,
		Tags:       git.NoTags,
		Prune:      true,
		Force:      true,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate), errors.Is(err, transport.ErrEmptyRemoteRepository):
	default:
		return remoteErr("fetch "+g.name+" repo", err)
	}
	g.remote.lastFetch = g.clock.Now()
	g.st.Reindex()
	return nil
}

// refreshLocked fetches when the mirror is older than the refresh interval. mu held.
func (g *Repo) refreshLocked(ctx context.Context) error {
	if g.remote == nil {
		return nil
	}
	if !g.remote.lastFetch.IsZero() && g.clock.Now().Sub(g.remote.lastFetch) < g.remote.refresh {
		return nil
	}
	return g.fetchLocked(ctx)
}

// Refresh fetches from the remote now (AWS mode); a no-op for a local repository.
func (g *Repo) Refresh(ctx context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fetchLocked(ctx)
}

func remoteErr(op string, err error) error {
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed):
		return errs.Wrap(errs.Unavailable, op+": remote refused the credentials", err)
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return errs.Wrap(errs.Unavailable, op+": remote repository not found", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return errs.Wrap(errs.Transient, op, err)
}

// retryablePush reports whether a failed push may succeed after a fetch.
func retryablePush(err error) bool {
	switch {
	case errors.Is(err, transport.ErrAuthenticationRequired), errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrRepositoryNotFound),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	return true
}

// lookup runs fn with mu held, refreshing the mirror first; if an object is missing
// (git wrote a new pack behind go-git's back) it reindexes and tries once more.
func (g *Repo) lookup(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.refreshLocked(ctx); err != nil {
		return err
	}
	err := fn()
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		g.st.Reindex()
		err = fn()
	}
	return err
}

// resolveLocked turns a branch, a full ref name, a tag or a commit hash into a commit.
func (g *Repo) resolveLocked(ref string) (*object.Commit, error) {
	if ref == "" {
		ref = "master"
	}
	var candidates []plumbing.ReferenceName
	if strings.HasPrefix(ref, "refs/") {
		candidates = []plumbing.ReferenceName{plumbing.ReferenceName(ref)}
	} else {
		candidates = []plumbing.ReferenceName{plumbing.NewBranchReferenceName(ref), plumbing.NewTagReferenceName(ref)}
	}
	for _, name := range candidates {
		r, err := g.st.Reference(name)
		if errors.Is(err, plumbing.ErrReferenceNotFound) {
			continue
		}
		if err != nil {
			return nil, errs.Wrap(errs.Other, "resolve "+ref, err)
		}
		return g.peelLocked(r.Hash())
	}
	if isHash(ref) {
		c, err := object.GetCommit(g.st, plumbing.NewHash(ref))
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			g.st.Reindex() // it may be in a pack git wrote since we last looked
			c, err = object.GetCommit(g.st, plumbing.NewHash(ref))
		}
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil, errs.Wrap(errs.Other, "resolve "+ref, err)
		}
	}
	return nil, &errs.Error{Kind: errs.NotFound, Op: "resolve " + g.name + " ref", Msg: fmt.Sprintf("%q not found", ref)}
}

// peelLocked follows annotated tags down to a commit.
func (g *Repo) peelLocked(h plumbing.Hash) (*object.Commit, error) {
	for range 10 {
		obj, err := g.st.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return nil, err
		}
		switch obj.Type() {
		case plumbing.CommitObject:
			return object.DecodeCommit(g.st, obj)
		case plumbing.TagObject:
			t, err := object.DecodeTag(g.st, obj)
			if err != nil {
				return nil, err
			}
			h = t.Target
		default:
			return nil, errs.E(errs.Invalid, "resolve", fmt.Sprintf("%s is a %s, not a commit", h, obj.Type()))
		}
	}
	return nil, errs.E(errs.Invalid, "resolve", "tag chain too long at "+h.String())
}

func isHash(s string) bool {
	if len(s) != 40 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ResolveRef returns the commit hash of a branch, a git tag name or a commit hash.
func (g *Repo) ResolveRef(ctx context.Context, ref string) (string, error) {
	var out string
	err := g.lookup(ctx, func() error {
		c, err := g.resolveLocked(ref)
		if err != nil {
			return err
		}
		out = c.Hash.String()
		return nil
	})
	return out, err
}

func cleanPath(p string) string {
	p = path.Clean("/" + strings.TrimSpace(p))
	return strings.TrimPrefix(p, "/")
}

// Read returns the folder listing or the file content at path in ref ("" is the root).
func (g *Repo) Read(ctx context.Context, ref, p string) (Entry, error) {
	p = cleanPath(p)
	if isHash(ref) {
		// A commit never changes: agents reading scripts at a scripts ref skip the lock.
		if content, ok := g.files.get(plumbing.NewHash(ref), p); ok {
			return Entry{Path: p, Ref: ref, Commit: ref, Type: EntryFile, Content: append([]byte(nil), content...)}, nil
		}
	}
	var e Entry
	err := g.lookup(ctx, func() error {
		c, err := g.resolveLocked(ref)
		if err != nil {
			return err
		}
		e, err = g.readLocked(c, p)
		return err
	})
	if err == nil {
		e.Ref = ref
		if e.Content != nil {
			e.Content = append([]byte(nil), e.Content...) // the cached copy stays ours
		}
	}
	return e, err
}

func (g *Repo) readLocked(c *object.Commit, p string) (Entry, error) {
	e := Entry{Path: p, Commit: c.Hash.String()}
	if content, ok := g.files.get(c.Hash, p); ok {
		e.Type, e.Content = EntryFile, content
		return e, nil
	}
	root, err := c.Tree()
	if err != nil {
		return e, err
	}
	tree := root
	if p != "" {
		notFound := &errs.Error{Kind: errs.NotFound, Op: "read " + g.name, Msg: fmt.Sprintf("%s not found at %s", p, short(c.Hash))}
		parts := strings.Split(p, "/")
		// Walk by hand: go-git's FindEntry reports a path through a file as a missing object.
		for i, name := range parts {
			var ent *object.TreeEntry
			for k := range tree.Entries {
				if tree.Entries[k].Name == name {
					ent = &tree.Entries[k]
					break
				}
			}
			if ent == nil {
				return e, notFound
			}
			last := i == len(parts)-1
			if ent.Mode != filemode.Dir {
				if !last {
					return e, notFound
				}
				blob, err := object.GetBlob(g.st, ent.Hash)
				if err != nil {
					return e, err
				}
				content, err := readBlob(blob)
				if err != nil {
					return e, err
				}
				g.files.put(c.Hash, p, content)
				e.Type, e.Content = EntryFile, content
				return e, nil
			}
			if tree, err = object.GetTree(g.st, ent.Hash); err != nil {
				return e, err
			}
		}
	}
	e.Type = EntryFolder
	for _, ent := range tree.Entries {
		fi := FileInfo{Name: ent.Name, Path: path.Join(p, ent.Name), Type: EntryFile}
		if ent.Mode == filemode.Dir {
			fi.Type = EntryFolder
		} else if sz, err := g.st.EncodedObjectSize(ent.Hash); err == nil {
			fi.Size = sz
		}
		e.Files = append(e.Files, fi)
	}
	return e, nil
}

func readBlob(b *object.Blob) ([]byte, error) {
	r, err := b.Reader()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// ReadFile returns a file's content at ref; reading a folder is an errs.Invalid error.
func (g *Repo) ReadFile(ctx context.Context, ref, p string) ([]byte, error) {
	e, err := g.Read(ctx, ref, p)
	if err != nil {
		return nil, err
	}
	if e.Type != EntryFile {
		return nil, errs.E(errs.Invalid, "read "+g.name, cleanPath(p)+" is a folder")
	}
	return e.Content, nil
}

// snapshot is a read view of one commit, used with mu held.
type snapshot struct {
	g      *Repo
	commit *object.Commit
}

func (s snapshot) hash() string { return s.commit.Hash.String() }

// file returns a file's content, or (nil, false) when it does not exist.
func (s snapshot) file(p string) ([]byte, bool, error) {
	e, err := s.g.readLocked(s.commit, cleanPath(p))
	if errs.Is(err, errs.NotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if e.Type != EntryFile {
		return nil, false, nil
	}
	return e.Content, true, nil
}

// list returns a folder's entries, or nil when it does not exist.
func (s snapshot) list(p string) ([]FileInfo, error) {
	e, err := s.g.readLocked(s.commit, cleanPath(p))
	if errs.Is(err, errs.NotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return e.Files, nil
}

// at runs fn on a snapshot of ref with mu held.
func (g *Repo) at(ctx context.Context, ref string, fn func(s snapshot) error) error {
	return g.lookup(ctx, func() error {
		c, err := g.resolveLocked(ref)
		if err != nil {
			return err
		}
		return fn(snapshot{g: g, commit: c})
	})
}

// Commit applies changes on top of branch and moves the branch, returning the new commit
// hash. Writing the same content again makes no commit and returns the current head. In
// AWS mode it pushes, and on a rejected push fetches and re-applies the changes on the
// new head (the same file-level changes, so concurrent writers of different files merge).
func (g *Repo) Commit(ctx context.Context, branch string, changes []Change, message string, author Author) (string, error) {
	return g.commit(ctx, branch, changes, message, author, false)
}

// With seed set, the commit is made only when branch does not exist yet (the first,
// parentless commit); otherwise the branch's head is returned unchanged.
func (g *Repo) commit(ctx context.Context, branch string, changes []Change, message string, author Author, seed bool) (string, error) {
	if len(changes) == 0 {
		return "", errs.E(errs.Invalid, "commit", "no changes")
	}
	for i := range changes {
		changes[i].Path = cleanPath(changes[i].Path)
		if changes[i].Path == "" {
			return "", errs.Invalidf("path", "empty file path")
		}
	}
	author = author.orDefault(g.committer)
	op := fmt.Sprintf("commit to %s/%s", g.name, branch)
	g.mu.Lock()
	defer g.mu.Unlock()
	attempts := 1
	if g.remote != nil {
		attempts = g.remote.attempts
		if err := g.refreshLocked(ctx); err != nil {
			return "", err
		}
	}
	var lastErr error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			if err := g.backoff(ctx, attempt); err != nil {
				return "", err
			}
			if err := g.fetchLocked(ctx); err != nil {
				return "", err
			}
		}
		h, retry, err := g.commitOnceLocked(ctx, branch, changes, message, author, seed)
		if err == nil {
			return h, nil
		}
		if !retry {
			return "", err
		}
		lastErr = err
		g.log.Info("git write raced another writer; retrying", "branch", branch, "attempt", attempt+1, "err", err)
	}
	return "", errs.Wrap(errs.Transient, op+": too many concurrent writers", lastErr)
}

func (g *Repo) backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.IntN(1<<min(attempt, 6))+1) * 20 * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (g *Repo) commitOnceLocked(ctx context.Context, branch string, changes []Change, message string, author Author, seed bool) (hash string, retry bool, err error) {
	refName := plumbing.NewBranchReferenceName(branch)
	old, err := g.st.Reference(refName)
	var parents []plumbing.Hash
	base := plumbing.ZeroHash
	switch {
	case errors.Is(err, plumbing.ErrReferenceNotFound):
		if !seed {
			return "", false, &errs.Error{Kind: errs.NotFound, Op: "commit to " + g.name, Msg: fmt.Sprintf("branch %q not found", branch)}
		}
		old = nil
	case err != nil:
		return "", false, err
	case seed:
		return old.Hash().String(), false, nil
	default:
		c, err := object.GetCommit(g.st, old.Hash())
		if err != nil {
			return "", false, err
		}
		parents = []plumbing.Hash{c.Hash}
		base = c.TreeHash
	}
	byPath := make(map[string]*Change, len(changes))
	for i := range changes {
		byPath[changes[i].Path] = &changes[i]
	}
	tree, err := g.buildTree(base, byPath)
	if err != nil {
		return "", false, err
	}
	if old != nil && tree == base {
		return old.Hash().String(), false, nil
	}
	now := g.clock.Now()
	c := &object.Commit{
		Author:       object.Signature{Name: author.Name, Email: author.Email, When: now},
		Committer:    object.Signature{Name: g.committer.Name, Email: g.committer.Email, When: now},
		Message:      strings.TrimRight(message, "\n") + "\n",
		TreeHash:     tree,
		ParentHashes: parents,
	}
	ch, err := g.storeObject(c)
	if err != nil {
		return "", false, err
	}
	newRef := plumbing.NewHashReference(refName, ch)
	if g.remote == nil {
		if err := g.st.CheckAndSetReference(newRef, old); err != nil {
			return "", false, errs.Wrap(errs.Conflict, "move "+branch, err)
		}
		return ch.String(), false, nil
	}
	if err := g.pushLocked(ctx, ch, refName); err != nil {
		return "", retryablePush(err), remoteErr("push "+g.name+"/"+branch, err)
	}
	if err := g.st.SetReference(newRef); err != nil {
		return "", false, err
	}
	return ch.String(), false, nil
}

// pushLocked pushes commit h to the remote ref dst through a scratch local ref, so that a
// rejected push leaves the mirror's branches as the remote has them.
func (g *Repo) pushLocked(ctx context.Context, h plumbing.Hash, dst plumbing.ReferenceName) error {
	if err := g.st.SetReference(plumbing.NewHashReference(pushRef, h)); err != nil {
		return err
	}
	defer g.st.RemoveReference(pushRef)
	return g.pushSpecsLocked(ctx, gitconfig.RefSpec(pushRef.String()+":"+dst.String()))
}

func (g *Repo) pushSpecsLocked(ctx context.Context, specs ...gitconfig.RefSpec) error {
	err := g.repo.PushContext(ctx, &git.PushOptions{
		RemoteName: "origin",
		RefSpecs:   specs,
		Auth:       g.remote.auth,
	})
	if errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil
	}
	return err
}

func (g *Repo) storeObject(o interface {
	Encode(plumbing.EncodedObject) error
}) (plumbing.Hash, error) {
	obj := g.st.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return g.st.SetEncodedObject(obj)
}

func (g *Repo) storeBlob(content []byte) (plumbing.Hash, error) {
	obj := g.st.NewEncodedObject()
	obj.SetType(plumbing.BlobObject)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := w.Write(content); err != nil {
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return g.st.SetEncodedObject(obj)
}

// buildTree writes the tree that results from applying changes (keyed by path relative
// to this tree) to base (zero: empty), and returns its hash.
func (g *Repo) buildTree(base plumbing.Hash, changes map[string]*Change) (plumbing.Hash, error) {
	entries := map[string]object.TreeEntry{}
	if !base.IsZero() {
		t, err := object.GetTree(g.st, base)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		for _, e := range t.Entries {
			entries[e.Name] = e
		}
	}
	sub := map[string]map[string]*Change{}
	for p, c := range changes {
		first, rest, nested := strings.Cut(p, "/")
		if !nested {
			if c.Delete {
				delete(entries, first)
				continue
			}
			mode := c.Mode
			if mode == 0 {
				mode = filemode.Regular
				if e, ok := entries[first]; ok && e.Mode != filemode.Dir {
					mode = e.Mode
				}
			}
			h, err := g.storeBlob(c.Content)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			entries[first] = object.TreeEntry{Name: first, Mode: mode, Hash: h}
			continue
		}
		if sub[first] == nil {
			sub[first] = map[string]*Change{}
		}
		sub[first][rest] = c
	}
	for name, ch := range sub {
		childBase := plumbing.ZeroHash
		if e, ok := entries[name]; ok && e.Mode == filemode.Dir {
			childBase = e.Hash
		}
		h, err := g.buildTree(childBase, ch)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if h.IsZero() {
			delete(entries, name)
			continue
		}
		entries[name] = object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h}
	}
	if len(entries) == 0 && !base.IsZero() {
		return plumbing.ZeroHash, nil // an emptied subtree disappears, as in git
	}
	list := make([]object.TreeEntry, 0, len(entries))
	for _, e := range entries {
		list = append(list, e)
	}
	// git orders tree entries by name, comparing a directory as if it ended in "/".
	key := func(e object.TreeEntry) string {
		if e.Mode == filemode.Dir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(list, func(i, j int) bool { return key(list[i]) < key(list[j]) })
	return g.storeObject(&object.Tree{Entries: list})
}

// branchExistsLocked reports whether refs/heads/branch exists.
func (g *Repo) branchExistsLocked(branch string) (plumbing.Hash, bool, error) {
	r, err := g.st.Reference(plumbing.NewBranchReferenceName(branch))
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return plumbing.ZeroHash, false, nil
	}
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	return r.Hash(), true, nil
}

// Branches lists the branch names.
func (g *Repo) Branches(ctx context.Context) ([]string, error) {
	var out []string
	err := g.lookup(ctx, func() error {
		out = nil
		it, err := g.st.IterReferences()
		if err != nil {
			return err
		}
		defer it.Close()
		return it.ForEach(func(r *plumbing.Reference) error {
			if r.Name().IsBranch() {
				out = append(out, r.Name().Short())
			}
			return nil
		})
	})
	sort.Strings(out)
	return out, err
}

// History lists up to limit commits reachable from ref, newest first; with p set, only
// commits that changed p.
func (g *Repo) History(ctx context.Context, ref, p string, limit int) ([]CommitInfo, error) {
	if limit <= 0 {
		limit = 50
	}
	p = cleanPath(p)
	var out []CommitInfo
	err := g.lookup(ctx, func() error {
		out = nil
		c, err := g.resolveLocked(ref)
		if err != nil {
			return err
		}
		opts := &git.LogOptions{From: c.Hash, Order: git.LogOrderCommitterTime}
		if p != "" {
			opts.PathFilter = func(s string) bool { return s == p || strings.HasPrefix(s, p+"/") }
		}
		it, err := g.repo.Log(opts)
		if err != nil {
			return err
		}
		defer it.Close()
		errStop := errors.New("stop")
		err = it.ForEach(func(c *object.Commit) error {
			out = append(out, CommitInfo{
				Hash:      c.Hash.String(),
				Author:    Author{Name: c.Author.Name, Email: c.Author.Email},
				Committer: Author{Name: c.Committer.Name, Email: c.Committer.Email},
				When:      c.Author.When.UTC(),
				Message:   strings.TrimSpace(c.Message),
			})
			if len(out) >= limit {
				return errStop
			}
			return nil
		})
		if errors.Is(err, errStop) {
			return nil
		}
		return err
	})
	return out, err
}

func short(h plumbing.Hash) string { return h.String()[:10] }

// fileCache keeps file contents by (commit, path): immutable, so never stale. It is
// bounded by dropping everything when full, which is cheap and good enough for the
// handful of hot files agents read.
type fileCache struct {
	mu sync.Mutex
	m  map[fileKey][]byte
	n  int
}

type fileKey struct {
	commit plumbing.Hash
	path   string
}

const fileCacheBytes = 16 << 20

func (c *fileCache) init() { c.m = map[fileKey][]byte{} }

func (c *fileCache) get(h plumbing.Hash, p string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[fileKey{h, p}]
	return b, ok
}

func (c *fileCache) put(h plumbing.Hash, p string, b []byte) {
	if len(b) > fileCacheBytes/16 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n+len(b) > fileCacheBytes {
		c.m, c.n = map[fileKey][]byte{}, 0
	}
	c.m[fileKey{h, p}] = b
	c.n += len(b)
}

func basicAuth(user, token string) transport.AuthMethod {
	if token == "" {
		return nil
	}
	if user == "" {
		user = "straas"
	}
	return &githttp.BasicAuth{Username: user, Password: token}
}
