// Package identity is the Keystone v3 of the mock cloud: password and token auth, token
// validation and revocation, projects, users and roles, and a service catalog given by
// the cloud. gophercloud authenticates against it unchanged.
//
// Tokens are stateless, like Keystone's Fernet tokens: the token id carries the user,
// project, methods and expiry, authenticated with an HMAC key. With a directory the key
// and the revocation list are kept on disk, so tokens outlive a restart of the process.
// User, project and role ids are derived from names, so they are stable too.
package identity

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
)

// Role names. Keystone's default roles imply each other: admin > member > reader.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
	RoleReader = "reader"
)

// DomainID and DomainName are the one domain of the mock.
const (
	DomainID   = "default"
	DomainName = "Default"
)

// User is a dev identity: a user with one role on one project.
type User struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	Project  string `json:"project"` // project name; the project exists if any user names it
	Role     string `json:"role"`    // admin, member or reader
}

// DefaultUsers are the dev identities: admin/admin on project admin (role admin),
// demo/demo and demo2/demo2 on project demo (member), other/other on project other.
var DefaultUsers = []User{
	{Name: "admin", Password: "admin", Project: "admin", Role: RoleAdmin},
	{Name: "demo", Password: "demo", Project: "demo", Role: RoleMember},
	{Name: "demo2", Password: "demo2", Project: "demo", Role: RoleMember},
	{Name: "other", Password: "other", Project: "other", Role: RoleMember},
}

// DefaultTTL is how long tokens live.
const DefaultTTL = time.Hour

// Config configures the identity service.
type Config struct {
	Users    []User        // default DefaultUsers
	TokenTTL time.Duration // default DefaultTTL
	Clock    clock.Clock   // default: the wall clock
	// Dir keeps the token key and the revocation list; "" keeps them in memory only.
	Dir string
}

// Project is a Keystone project.
type Project struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Token is a validated token.
type Token struct {
	ID          string
	UserID      string
	UserName    string
	ProjectID   string // "" for an unscoped token
	ProjectName string
	Roles       []string // effective roles on the project (implied roles included)
	Methods     []string
	AuditID     string
	IssuedAt    time.Time
	ExpiresAt   time.Time
}

// HasRole reports whether the token carries role r.
func (t *Token) HasRole(r string) bool {
	for _, x := range t.Roles {
		if x == r {
			return true
		}
	}
	return false
}

// IsAdmin reports whether the token carries the admin role.
func (t *Token) IsAdmin() bool { return t.HasRole(RoleAdmin) }

type user struct {
	id, name, password string
	project            *Project
	role               string
}

// Service is the identity service. Safe for concurrent use.
type Service struct {
	clock    clock.Clock
	ttl      time.Duration
	dir      string
	key      []byte
	users    map[string]*user // by id
	byName   map[string]*user
	projects map[string]*Project // by id
	projName map[string]*Project

	mu      sync.Mutex
	revoked map[string]time.Time // audit id -> token expiry
}

// ID derives a stable Keystone-style id (32 hex digits) from a kind and a name.
func ID(kind, name string) string {
	h := sha1.Sum([]byte(kind + ":" + name))
	return hex.EncodeToString(h[:16])
}

// New builds the service, loading or creating its key when it has a directory.
func New(cfg Config) (*Service, error) {
	if cfg.Users == nil {
		cfg.Users = DefaultUsers
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = DefaultTTL
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	s := &Service{
		clock: cfg.Clock, ttl: cfg.TokenTTL, dir: cfg.Dir,
		users: map[string]*user{}, byName: map[string]*user{},
		projects: map[string]*Project{}, projName: map[string]*Project{},
		revoked: map[string]time.Time{},
	}
	for i, u := range cfg.Users {
		if u.Name == "" || u.Project == "" {
			return nil, errs.Invalidf(fmt.Sprintf("users[%d]", i), "a user needs a name and a project")
		}
		switch u.Role {
		case RoleAdmin, RoleMember, RoleReader:
		default:
			return nil, errs.Invalidf(fmt.Sprintf("users[%d].role", i), "unknown role %q", u.Role)
		}
		if s.byName[u.Name] != nil {
			return nil, errs.Invalidf(fmt.Sprintf("users[%d].name", i), "duplicate user %q", u.Name)
		}
		p := s.projName[u.Project]
		if p == nil {
			p = &Project{ID: ID("project", u.Project), Name: u.Project}
			s.projName[p.Name], s.projects[p.ID] = p, p
		}
		x := &user{id: ID("user", u.Name), name: u.Name, password: u.Password, project: p, role: u.Role}
		s.users[x.id], s.byName[x.name] = x, x
	}
	if err := s.loadKey(); err != nil {
		return nil, err
	}
	if err := s.loadRevoked(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Service) loadKey() error {
	if s.dir == "" {
		s.key = make([]byte, 32)
		_, err := rand.Read(s.key)
		return err
	}
	path := filepath.Join(s.dir, "token.key")
	raw, err := os.ReadFile(path)
	if err == nil && len(raw) >= 32 {
		s.key = raw
		return nil
	}
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("identity: read key: %w", err)
	}
	s.key = make([]byte, 32)
	if _, err := rand.Read(s.key); err != nil {
		return err
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if err := os.WriteFile(path, s.key, 0o600); err != nil {
		return fmt.Errorf("identity: write key: %w", err)
	}
	return nil
}

func (s *Service) loadRevoked() error {
	if s.dir == "" {
		return nil
	}
	raw, err := os.ReadFile(filepath.Join(s.dir, "revoked.json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("identity: read revocations: %w", err)
	}
	if err := json.Unmarshal(raw, &s.revoked); err != nil {
		return fmt.Errorf("identity: read revocations: %w", err)
	}
	return nil
}

func (s *Service) saveRevokedLocked() error {
	if s.dir == "" {
		return nil
	}
	now := s.clock.Now()
	for a, exp := range s.revoked {
		if now.After(exp) {
			delete(s.revoked, a)
		}
	}
	raw, err := json.Marshal(s.revoked)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.dir, "revoked.json.tmp")
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.dir, "revoked.json"))
}

// Projects lists the projects, by name.
func (s *Service) Projects() []Project {
	out := make([]Project, 0, len(s.projects))
	for _, p := range s.projects {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ProjectByName finds a project.
func (s *Service) ProjectByName(name string) (Project, bool) {
	p := s.projName[name]
	if p == nil {
		return Project{}, false
	}
	return *p, true
}

// ProjectByID finds a project.
func (s *Service) ProjectByID(id string) (Project, bool) {
	p := s.projects[id]
	if p == nil {
		return Project{}, false
	}
	return *p, true
}

func roles(role string) []string {
	switch role {
	case RoleAdmin:
		return []string{RoleAdmin, RoleMember, RoleReader}
	case RoleMember:
		return []string{RoleMember, RoleReader}
	}
	return []string{RoleReader}
}

var errAuth = errs.E(errs.Unauthenticated, "authenticate", "The request you have made requires authentication.")

// Authenticate checks a password and issues a token scoped to project (a name; "" for
// the user's own project).
func (s *Service) Authenticate(userName, password, project string) (*Token, error) {
	u := s.byName[userName]
	if u == nil || subtle.ConstantTimeCompare([]byte(u.password), []byte(password)) != 1 {
		return nil, errAuth
	}
	p := u.project
	if project != "" {
		if p = s.projName[project]; p == nil {
			return nil, errAuth
		}
	}
	return s.issue(u, p, []string{"password"}, "", time.Time{})
}

// issue makes a token; a zero expiry means one TTL from now.
func (s *Service) issue(u *user, p *Project, methods []string, audit string, expires time.Time) (*Token, error) {
	if p != nil && p != u.project {
		// A user has a role on its own project only.
		return nil, errs.E(errs.Unauthenticated, "authenticate", "User "+u.id+" has no access to project "+p.ID)
	}
	now := s.clock.Now().UTC()
	if audit == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		audit = base64.RawURLEncoding.EncodeToString(b)[:22]
	}
	if expires.IsZero() || expires.After(now.Add(s.ttl)) {
		expires = now.Add(s.ttl)
	}
	pl := payload{U: u.id, M: methods, I: now.UnixNano(), E: expires.Unix(), A: audit}
	if p != nil {
		pl.P = p.ID
	}
	raw, err := json.Marshal(pl)
	if err != nil {
		return nil, err
	}
	body := base64.RawURLEncoding.EncodeToString(raw)
	id := "gAAAAA" + body + "." + s.sign(body)
	return s.token(id, pl, u)
}

type payload struct {
	U string   `json:"u"`
	P string   `json:"p,omitempty"`
	M []string `json:"m"`
	I int64    `json:"i"`
	E int64    `json:"e"`
	A string   `json:"a"`
}

func (s *Service) sign(body string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:20])
}

func (s *Service) token(id string, pl payload, u *user) (*Token, error) {
	t := &Token{
		ID: id, UserID: u.id, UserName: u.name, Methods: pl.M, AuditID: pl.A,
		IssuedAt: time.Unix(0, pl.I).UTC(), ExpiresAt: time.Unix(pl.E, 0).UTC(),
	}
	if pl.P != "" {
		p := s.projects[pl.P]
		if p == nil {
			return nil, errs.E(errs.Unauthenticated, "validate token", "project of the token no longer exists")
		}
		t.ProjectID, t.ProjectName = p.ID, p.Name
		t.Roles = roles(u.role)
	}
	return t, nil
}

// Validate checks a token: an errs.Unauthenticated error when it is malformed, forged,
// expired or revoked.
func (s *Service) Validate(id string) (*Token, error) {
	bad := func(msg string) error { return errs.E(errs.Unauthenticated, "validate token", msg) }
	rest, ok := strings.CutPrefix(id, "gAAAAA")
	body, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || !hmac.Equal([]byte(sig), []byte(s.sign(body))) {
		return nil, bad("The token is not valid.")
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, bad("The token is not valid.")
	}
	var pl payload
	if err := json.Unmarshal(raw, &pl); err != nil {
		return nil, bad("The token is not valid.")
	}
	if !s.clock.Now().Before(time.Unix(pl.E, 0)) {
		return nil, bad("The token has expired.")
	}
	s.mu.Lock()
	_, revoked := s.revoked[pl.A]
	s.mu.Unlock()
	if revoked {
		return nil, bad("The token has been revoked.")
	}
	u := s.users[pl.U]
	if u == nil {
		return nil, bad("The user of the token no longer exists.")
	}
	return s.token(id, pl, u)
}

// Revoke revokes a token (and every token rescoped from it: they share its audit id).
func (s *Service) Revoke(id string) error {
	t, err := s.Validate(id)
	if err != nil {
		return errs.Wrap(errs.NotFound, "revoke token", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[t.AuditID] = t.ExpiresAt
	return s.saveRevokedLocked()
}

// Rescope issues a token for another project from a valid token (the token method).
func (s *Service) Rescope(id, project string) (*Token, error) {
	t, err := s.Validate(id)
	if err != nil {
		return nil, err
	}
	u := s.users[t.UserID]
	p := u.project
	if project != "" {
		if p = s.projects[project]; p == nil {
			p = s.projName[project]
		}
		if p == nil {
			return nil, errs.E(errs.Unauthenticated, "authenticate", "Could not find project "+project)
		}
	}
	// A rescoped token never outlives the token it came from.
	return s.issue(u, p, []string{"token"}, t.AuditID, t.ExpiresAt)
}
