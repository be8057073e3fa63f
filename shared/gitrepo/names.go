package gitrepo

import (
	"errors"
	"strings"

	"github.com/straas/straas/shared/errs"
)

// Tag roles: who created a tag, inserted by the service (seed 000 §4.1.1.2).
const (
	TagRoleUser  = "user"
	TagRoleAdmin = "admin"
)

// Master is the admin branch every topology branch starts from.
const Master = "master"

// refSep separates role, branch and tag in git tag names and branch and tag in refs.
const refSep = "&"

const maxNameLen = 200

// ValidateBranch checks a branch name: an admin branch ("master", "develop") or a
// topology branch ("<name>@<az>").
func ValidateBranch(b string) error {
	if err := validName(b, true); err != nil {
		return errs.Invalidf("branch", "%q: %s", b, err.Error())
	}
	if strings.Count(b, "@") > 1 || strings.HasPrefix(b, "@") || strings.HasSuffix(b, "@") {
		return errs.Invalidf("branch", "%q: a topology branch is <name>@<availability zone>", b)
	}
	return nil
}

// ValidateTagName checks the user part of a tag.
func ValidateTagName(t string) error {
	if err := validName(t, false); err != nil {
		return errs.Invalidf("tag", "%q: %s", t, err.Error())
	}
	return nil
}

type nameErr string

func (e nameErr) Error() string { return string(e) }

// validName keeps names inside what git accepts in a ref and what our refs can split.
func validName(s string, allowAt bool) error {
	switch {
	case s == "":
		return nameErr("empty")
	case len(s) > maxNameLen:
		return nameErr("too long")
	case strings.HasPrefix(s, ".") || strings.HasPrefix(s, "-"):
		return nameErr("must not start with '.' or '-'")
	case strings.HasSuffix(s, ".") || strings.HasSuffix(s, ".lock"):
		return nameErr("must not end with '.' or '.lock'")
	case strings.Contains(s, ".."):
		return nameErr("must not contain '..'")
	case isHash(s):
		return nameErr("must not look like a commit hash")
	}
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || (allowAt && c == '@')
		if !ok {
			return nameErr("may contain only letters, digits, '-', '_', '.'" + map[bool]string{true: " and one '@'"}[allowAt])
		}
	}
	return nil
}

// IsTopologyBranch reports whether b is a topology's branch (<name>@<az>), as opposed to
// an admin branch such as master.
func IsTopologyBranch(b string) bool { return strings.Contains(b, "@") }

// GitTagName is the git tag that stores tag of branch created by role:
// "user&test-1@phx01&test-v1.0.0".
func GitTagName(role, branch, tag string) string {
	return role + refSep + branch + refSep + tag
}

// ParseGitTagName splits a git tag name made by GitTagName.
func ParseGitTagName(name string) (role, branch, tag string, ok bool) {
	parts := strings.Split(name, refSep)
	if len(parts) != 3 || (parts[0] != TagRoleUser && parts[0] != TagRoleAdmin) || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// Ref is a parsed configuration ref: a branch, a branch's tag, or a commit hash.
type Ref struct {
	Branch string
	Tag    string // "" for the branch head
	Commit string // set instead of Branch for a 40-hex commit hash
}

// String renders the ref as the API writes it.
func (r Ref) String() string {
	switch {
	case r.Commit != "":
		return r.Commit
	case r.Tag != "":
		return r.Branch + refSep + r.Tag
	}
	return r.Branch
}

// ParseRef parses "master", "test-1@phx01", "test-1@phx01&test-v1.0.0" or a commit hash.
// An empty ref is master.
func ParseRef(ref string) (Ref, error) {
	if ref == "" {
		return Ref{Branch: Master}, nil
	}
	if isHash(ref) {
		return Ref{Commit: ref}, nil
	}
	branch, tag, hasTag := strings.Cut(ref, refSep)
	if err := ValidateBranch(branch); err != nil {
		return Ref{}, errs.Invalidf("ref", "%q: branch %s", ref, msgOf(err))
	}
	if hasTag {
		if err := ValidateTagName(tag); err != nil {
			return Ref{}, errs.Invalidf("ref", "%q: tag %s", ref, msgOf(err))
		}
	}
	return Ref{Branch: branch, Tag: tag}, nil
}

// msgOf is an error's message without its field prefix.
func msgOf(err error) string {
	var e *errs.Error
	if errors.As(err, &e) && e.Msg != "" {
		return e.Msg
	}
	return err.Error()
}
