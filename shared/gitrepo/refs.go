package gitrepo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/straas/straas/shared/errs"
)

// Tag is a configuration tag: a user's mark on a branch.
type Tag struct {
	Name    string    `json:"tag"`     // the user's string, e.g. test-v1.0.0
	Branch  string    `json:"branch"`  // e.g. test-1@phx01
	Role    string    `json:"role"`    // TagRoleUser or TagRoleAdmin
	GitName string    `json:"git_tag"` // e.g. user&test-1@phx01&test-v1.0.0
	Ref     string    `json:"ref"`     // e.g. test-1@phx01&test-v1.0.0
	Commit  string    `json:"commit"`
	Message string    `json:"message,omitempty"`
	Tagger  Author    `json:"tagger"`
	Date    time.Time `json:"date"`
}

// createBranchLocked points branch at from's head unless it exists; it returns the
// branch's commit. mu held.
func (g *Repo) createBranchLocked(ctx context.Context, branch, from string) (string, error) {
	if h, ok, err := g.branchExistsLocked(branch); err != nil || ok {
		return h.String(), err
	}
	src, ok, err := g.branchExistsLocked(from)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errs.NotFoundf("branch %q not found in %s repo", from, g.name)
	}
	ref := plumbing.NewHashReference(plumbing.NewBranchReferenceName(branch), src)
	if g.remote == nil {
		if err := g.st.SetReference(ref); err != nil {
			return "", errs.Wrap(errs.Other, "create branch "+branch, err)
		}
		return src.String(), nil
	}
	spec := gitconfig.RefSpec(plumbing.NewBranchReferenceName(from).String() + ":" + ref.Name().String())
	if perr := g.pushSpecsLocked(ctx, spec); perr != nil {
		// Someone may have created it first: that is success for an idempotent create.
		if err := g.fetchLocked(ctx); err != nil {
			return "", err
		}
		if h, ok, _ := g.branchExistsLocked(branch); ok {
			return h.String(), nil
		}
		return "", remoteErr("create branch "+branch, perr)
	}
	if err := g.st.SetReference(ref); err != nil {
		return "", err
	}
	return src.String(), nil
}

// deleteRefsLocked removes refs locally and on the remote. mu held.
func (g *Repo) deleteRefsLocked(ctx context.Context, names []plumbing.ReferenceName) error {
	if len(names) == 0 {
		return nil
	}
	if g.remote != nil {
		specs := make([]gitconfig.RefSpec, len(names))
		for i, n := range names {
			specs[i] = gitconfig.RefSpec(":" + n.String())
		}
		if err := g.pushSpecsLocked(ctx, specs...); err != nil {
			return remoteErr("delete refs in "+g.name, err)
		}
	}
	for _, n := range names {
		if err := g.st.RemoveReference(n); err != nil && !errors.Is(err, plumbing.ErrReferenceNotFound) {
			return errs.Wrap(errs.Other, "delete "+n.String(), err)
		}
	}
	return nil
}

// tagsLocked lists git tags whose name matches keep. mu held.
func (g *Repo) tagsLocked(keep func(name string) bool) ([]Tag, error) {
	it, err := g.st.IterReferences()
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []Tag
	err = it.ForEach(func(r *plumbing.Reference) error {
		if !r.Name().IsTag() || !keep(r.Name().Short()) {
			return nil
		}
		t, err := g.describeTagLocked(r)
		if err != nil {
			return err
		}
		out = append(out, t)
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Date.Equal(out[j].Date) {
			return out[i].Date.Before(out[j].Date)
		}
		return out[i].GitName < out[j].GitName
	})
	return out, err
}

func (g *Repo) describeTagLocked(r *plumbing.Reference) (Tag, error) {
	name := r.Name().Short()
	t := Tag{GitName: name}
	if role, branch, tag, ok := ParseGitTagName(name); ok {
		t.Role, t.Branch, t.Name, t.Ref = role, branch, tag, branch+refSep+tag
	} else {
		t.Name, t.Ref = name, name
	}
	if to, err := object.GetTag(g.st, r.Hash()); err == nil {
		t.Message = strings.TrimSpace(to.Message)
		t.Tagger = Author{Name: to.Tagger.Name, Email: to.Tagger.Email}
		t.Date = to.Tagger.When.UTC()
	}
	c, err := g.peelLocked(r.Hash())
	if err != nil {
		return t, fmt.Errorf("tag %s: %w", name, err)
	}
	t.Commit = c.Hash.String()
	if t.Date.IsZero() {
		t.Date = c.Committer.When.UTC()
	}
	return t, nil
}

// createTagLocked writes an annotated tag named name on commit h. mu held.
func (g *Repo) createTagLocked(ctx context.Context, name string, h plumbing.Hash, message string, tagger Author) error {
	tagger = tagger.orDefault(g.committer)
	to := &object.Tag{
		Name:       name,
		Tagger:     object.Signature{Name: tagger.Name, Email: tagger.Email, When: g.clock.Now()},
		Message:    strings.TrimRight(message, "\n") + "\n",
		TargetType: plumbing.CommitObject,
		Target:     h,
	}
	th, err := g.storeObject(to)
	if err != nil {
		return err
	}
	ref := plumbing.NewHashReference(plumbing.NewTagReferenceName(name), th)
	if err := g.st.SetReference(ref); err != nil {
		return err
	}
	if g.remote == nil {
		return nil
	}
	if err := g.pushSpecsLocked(ctx, gitconfig.RefSpec(ref.Name().String()+":"+ref.Name().String())); err != nil {
		_ = g.st.RemoveReference(ref.Name())
		if ferr := g.fetchLocked(ctx); ferr == nil {
			if _, err := g.st.Reference(ref.Name()); err == nil {
				return errs.Conflictf("tag %q already exists", name)
			}
		}
		return remoteErr("push tag "+name, err)
	}
	return nil
}
