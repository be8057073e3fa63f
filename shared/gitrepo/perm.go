package gitrepo

import (
	"context"
	"sort"
	"strings"

	"github.com/straas/straas/shared/errs"
)

// Access is who asks, as far as the config repo cares (seed 000 §4.1.2 rule 3 and
// §4.2.2.1): admins may do everything; a user may read the defaults on master and
// everything of the branches of his own topologies, and may change only the
// user-changeable keys of app/<type>/<version>/user.json on those branches.
type Access struct {
	Admin bool
	// Owner: the branch addressed is the config branch of one of the caller's own
	// topologies. The API decides it per request.
	Owner bool
}

// TagRole is the role a tag created by a is stamped with.
func (a Access) TagRole() string {
	if a.Admin {
		return TagRoleAdmin
	}
	return TagRoleUser
}

// CheckRead reports whether a may read path at ref.
func CheckRead(a Access, ref, p string) error {
	r, err := ParseRef(ref)
	if err != nil {
		return err
	}
	if a.Admin {
		return nil
	}
	p = cleanPath(p)
	if p == "service" || strings.HasPrefix(p, "service/") {
		return errs.Permissionf("only admins read the service configuration")
	}
	switch {
	case r.Commit != "":
		return errs.Permissionf("only admins read the configuration at a commit hash")
	case r.Branch == Master:
		return nil
	case IsTopologyBranch(r.Branch) && a.Owner:
		return nil
	}
	return errs.Permissionf("branch %q belongs to another user", r.Branch)
}

// WriteCheck describes a write for CheckWrite.
type WriteCheck struct {
	Branch string
	Path   string
	Old    []byte // current content of Path on Branch; nil when the file is new
	New    []byte
	// Default is app/<type>/<version>/default.json as the branch sees it; needed for a
	// user's write of that version's user.json.
	Default []byte
}

// CheckWrite reports whether a may make the write w. A user writing a key outside the
// admin-defined set gets an errs.Permission error naming every such key.
func CheckWrite(a Access, w WriteCheck) error {
	if err := ValidateBranch(w.Branch); err != nil {
		return err
	}
	p := cleanPath(w.Path)
	if err := validateConfigPath(p); err != nil {
		return err
	}
	if a.Admin {
		return nil
	}
	if !IsTopologyBranch(w.Branch) {
		return errs.Permissionf("only admins change branch %q", w.Branch)
	}
	if !a.Owner {
		return errs.Permissionf("branch %q belongs to another user", w.Branch)
	}
	if _, _, file, ok := appFile(p); !ok || file != "user.json" {
		return errs.Permissionf("users change only app/<type>/<version>/user.json, not %s", p)
	}
	def, err := ParseIni(w.Default)
	if err != nil {
		return wrapInvalid("parse default.json", err)
	}
	allowed := map[string]bool{}
	for _, k := range def.UserChangeable() {
		allowed[k] = true
	}
	newF, err := ParseIni(w.New)
	if err != nil {
		return wrapInvalid("parse "+p, err)
	}
	oldS := Sections{}
	if len(w.Old) > 0 {
		if oldF, err := ParseIni(w.Old); err == nil {
			oldS = oldF.Sections()
		}
	}
	var denied []string
	for _, k := range ChangedKeys(oldS, newF.Sections()) {
		if !allowed[k] {
			denied = append(denied, k)
		}
	}
	if len(denied) > 0 {
		sort.Strings(denied)
		return &errs.Error{Kind: errs.Permission, Op: "write " + p, Field: "content",
			Msg: "not user-changeable: " + strings.Join(denied, ", ")}
	}
	return nil
}

// CheckTag reports whether a may create or delete a tag of role on branch.
func CheckTag(a Access, branch, role string) error {
	if err := ValidateBranch(branch); err != nil {
		return err
	}
	if a.Admin {
		return nil
	}
	if !IsTopologyBranch(branch) || !a.Owner {
		return errs.Permissionf("users tag only the branches of their own topologies")
	}
	if role != TagRoleUser {
		return errs.Permissionf("only admins change %s tags", role)
	}
	return nil
}

// AuthorizeWrite reads what CheckWrite needs (the current file and its version's
// default.json on branch) and checks the write.
func (r *Repos) AuthorizeWrite(ctx context.Context, a Access, branch, p string, content []byte) error {
	w := WriteCheck{Branch: branch, Path: p, New: content}
	if a.Admin {
		return CheckWrite(a, w)
	}
	if err := CheckWrite(Access{Admin: true}, w); err != nil { // path and branch shape first
		return err
	}
	head, err := r.Config.ResolveRef(ctx, branch)
	if err != nil {
		return err
	}
	p = cleanPath(p)
	if old, err := r.Config.ReadFile(ctx, head, p); err == nil {
		w.Old = old
	} else if !errs.Is(err, errs.NotFound) {
		return err
	}
	if typ, version, _, ok := appFile(p); ok {
		def, found, err := r.readAt(ctx, head, AppPath(typ, version, "default.json"))
		if err != nil {
			return err
		}
		if !found {
			return errs.NotFoundf("no configuration for %s %s", typ, version)
		}
		w.Default = def
	}
	return CheckWrite(a, w)
}
