// Package auth validates Keystone tokens and decides who may act on what (seed 000
// §4.1.2): the admin project can do everything; other users only their own project's
// topologies, of which they are the owner. Another member of the owner's project is
// treated like another tenant: the topology does not exist for them (docs/auth.md).
package auth

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/straas/straas/shared/clock"
	"github.com/straas/straas/shared/errs"
)

// Principal is the authenticated caller.
type Principal struct {
	UserID      string    `json:"user_id"`
	UserName    string    `json:"user_name"`
	ProjectID   string    `json:"project_id"`
	ProjectName string    `json:"project_name"`
	Roles       []string  `json:"roles"`
	Admin       bool      `json:"admin"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// Tenant is the project the caller acts in.
func (p Principal) Tenant() string { return p.ProjectID }

// CanSee reports whether p may see and act on a resource of tenant owned by owner.
// Within a project only the owner may (seed 000 §4.1.2 rule 2: "Normal user could only
// handle the topologies created by himself"); admins may do all. A resource without an
// owner is the project's.
func (p Principal) CanSee(tenant, owner string) bool {
	if p.Admin {
		return true
	}
	return p.ProjectID == tenant && (owner == "" || owner == p.UserID)
}

// Validator turns a token into a Principal.
type Validator interface {
	Validate(ctx context.Context, token string) (Principal, error)
}

// KeystoneOptions configure a Keystone validator.
type KeystoneOptions struct {
	AuthURL      string // Keystone v3
	Username     string // a service user allowed to validate tokens
	Password     string
	Project      string
	Domain       string
	AdminProject string        // name of the admin project (default "admin")
	CacheTTL     time.Duration // how long a validation is trusted (default 30 s, never past expiry)
	Clock        clock.Clock   // default: the wall clock
}

// Keystone validates tokens against Keystone v3 through gophercloud.
type Keystone struct {
	identity     *gophercloud.ServiceClient
	adminProject string
	ttl          time.Duration
	clock        clock.Clock

	mu    sync.Mutex
	cache map[[32]byte]cached
}

type cached struct {
	p       Principal
	at      time.Time
	refusal error // a refused token: Keystone never takes a refusal back
}

// NewKeystone authenticates the service user and returns a validator.
func NewKeystone(ctx context.Context, o KeystoneOptions) (*Keystone, error) {
	if o.Domain == "" {
		o.Domain = "Default"
	}
	if o.AdminProject == "" {
		o.AdminProject = "admin"
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = 30 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	p, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: o.AuthURL, Username: o.Username, Password: o.Password,
		DomainName: o.Domain, AllowReauth: true,
		Scope: &gophercloud.AuthScope{ProjectName: o.Project, DomainName: o.Domain},
	})
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, "authenticate to keystone "+o.AuthURL, err)
	}
	p.HTTPClient = http.Client{Timeout: 15 * time.Second}
	id, err := openstack.NewIdentityV3(p, gophercloud.EndpointOpts{})
	if err != nil {
		return nil, err
	}
	return &Keystone{identity: id, adminProject: o.AdminProject, ttl: o.CacheTTL, clock: o.Clock, cache: map[[32]byte]cached{}}, nil
}

// Validate checks token with Keystone, or trusts a recent validation of it: for at most
// CacheTTL and never past the token's expiry, so that a revoked token stops working
// within CacheTTL and an expired one at once. A refusal is remembered for CacheTTL too,
// so that a client retrying a bad token does not reach Keystone on every request (an
// invalid, expired or revoked token never becomes valid). Errors never quote the token.
func (k *Keystone) Validate(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, errs.E(errs.Unauthenticated, "", "no token: send X-Auth-Token")
	}
	if !WellFormed(token) {
		return Principal{}, errs.E(errs.Unauthenticated, "", "malformed token")
	}
	key := sha256.Sum256([]byte(token)) // the cache never holds tokens themselves
	now := k.clock.Now()
	k.mu.Lock()
	if c, ok := k.cache[key]; ok && now.Sub(c.at) < k.ttl {
		if c.refusal != nil {
			k.mu.Unlock()
			return Principal{}, c.refusal
		}
		if now.Before(c.p.ExpiresAt) {
			k.mu.Unlock()
			return c.p, nil
		}
	}
	k.mu.Unlock()

	r := tokens.Get(ctx, k.identity, token)
	if r.Err != nil {
		k.forget(key)
		if gophercloud.ResponseCodeIs(r.Err, http.StatusNotFound) || gophercloud.ResponseCodeIs(r.Err, http.StatusUnauthorized) ||
			gophercloud.ResponseCodeIs(r.Err, http.StatusBadRequest) {
			return Principal{}, k.refuse(key, now, "token is not valid (expired, revoked or unknown)")
		}
		return Principal{}, errs.Wrap(errs.Unavailable, "validate token with keystone", redacted{r.Err, token})
	}
	tok, err := r.ExtractToken()
	if err != nil {
		return Principal{}, errs.Wrap(errs.Unavailable, "validate token with keystone", redacted{err, token})
	}
	user, err := r.ExtractUser()
	if err != nil {
		return Principal{}, errs.Wrap(errs.Unavailable, "validate token with keystone", redacted{err, token})
	}
	proj, err := r.ExtractProject()
	if err != nil || proj == nil {
		return Principal{}, k.refuse(key, now, "token is not scoped to a project")
	}
	roles, _ := r.ExtractRoles()
	p := Principal{UserID: user.ID, UserName: user.Name, ProjectID: proj.ID, ProjectName: proj.Name, ExpiresAt: tok.ExpiresAt}
	for _, ro := range roles {
		p.Roles = append(p.Roles, ro.Name)
	}
	p.Admin = proj.Name == k.adminProject
	if !now.Before(p.ExpiresAt) {
		return Principal{}, k.refuse(key, now, "token has expired")
	}
	k.remember(key, cached{p: p, at: now})
	return p, nil
}

// refuse remembers that the token of key was refused and returns the refusal.
func (k *Keystone) refuse(key [32]byte, now time.Time, why string) error {
	err := errs.E(errs.Unauthenticated, "", why)
	k.remember(key, cached{at: now, refusal: err})
	return err
}

func (k *Keystone) remember(key [32]byte, c cached) {
	k.mu.Lock()
	if len(k.cache) > 100000 { // bound memory: drop everything rather than track LRU
		k.cache = map[[32]byte]cached{}
	}
	k.cache[key] = c
	k.mu.Unlock()
}

// WellFormed reports whether token could be a Keystone token (Fernet, JWS, UUID or
// PKI): 1 to 8192 printable ASCII characters without spaces. Others are refused
// without asking Keystone.
func WellFormed(token string) bool {
	if len(token) == 0 || len(token) > 8192 {
		return false
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// redacted is an error whose text has the token (and any prefix of it that Keystone
// quotes, as "Could not find token: gAAAAAB..." does) cut out.
type redacted struct {
	err   error
	token string
}

func (r redacted) Error() string { return Redact(r.err.Error(), r.token) }
func (r redacted) Unwrap() error { return r.err }

// Redact removes secret, and any run of 8 or more of its leading characters, from s.
func Redact(s, secret string) string {
	if secret == "" {
		return s
	}
	s = strings.ReplaceAll(s, secret, "[redacted]")
	for n := min(len(secret)-1, 64); n >= 8; n-- {
		if strings.Contains(s, secret[:n]) {
			s = strings.ReplaceAll(s, secret[:n], "[redacted]")
		}
	}
	return s
}

func (k *Keystone) forget(key [32]byte) {
	k.mu.Lock()
	delete(k.cache, key)
	k.mu.Unlock()
}

type ctxKey struct{}

// With returns ctx carrying p.
func With(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// From returns the principal in ctx.
func From(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}
