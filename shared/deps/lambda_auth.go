package deps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"

	"github.com/straas/straas/shared/auth"
	"github.com/straas/straas/shared/errs"
)

// On AWS the Keystone check runs once per request, in the API Gateway Lambda authorizer
// (Authorizer); the API function trusts what the authorizer decided and reads the
// principal from the request's authorizer context (GatewayValidator). Both sides use
// auth.Principal, and the API's handlers apply the same rules to it in both modes.

// Keys of the authorizer context (API Gateway allows only string, number and boolean
// values there, so the principal travels as one JSON string).
const (
	CtxPrincipal   = "principal"    // auth.Principal as JSON
	CtxTokenSHA256 = "token_sha256" // hex SHA-256 of the token the principal was validated from
)

// AuthorizerContext is the context an authorizer returns for p, validated from token.
func AuthorizerContext(p auth.Principal, token string) map[string]any {
	b, _ := json.Marshal(p) // a Principal always marshals
	return map[string]any{CtxPrincipal: string(b), CtxTokenSHA256: tokenHash(token)}
}

func tokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// PrincipalFromAuthorizer reads the principal from an authorizer context, checking that
// it was validated from token and has not expired at now.
func PrincipalFromAuthorizer(ac map[string]any, token string, now time.Time) (auth.Principal, error) {
	raw, _ := ac[CtxPrincipal].(string)
	sum, _ := ac[CtxTokenSHA256].(string)
	if raw == "" || sum == "" {
		return auth.Principal{}, errs.E(errs.Unauthenticated, "", "request carries no authorizer decision")
	}
	if sum != tokenHash(token) {
		return auth.Principal{}, errs.E(errs.Unauthenticated, "", "token differs from the one the authorizer validated")
	}
	var p auth.Principal
	if err := json.Unmarshal([]byte(raw), &p); err != nil || p.UserID == "" {
		return auth.Principal{}, errs.E(errs.Unauthenticated, "", "malformed authorizer principal")
	}
	if !now.Before(p.ExpiresAt) {
		return auth.Principal{}, errs.E(errs.Unauthenticated, "", "token has expired")
	}
	return p, nil
}

// GatewayValidator is the auth.Validator of the API function: the principal the
// authorizer put in the API Gateway request context (aws-lambda-go-api-proxy hands that
// context to the handler through the request's context).
type GatewayValidator struct {
	Now func() time.Time // default time.Now
}

var _ auth.Validator = GatewayValidator{}

// Validate returns the authorizer's principal for token.
func (g GatewayValidator) Validate(ctx context.Context, token string) (auth.Principal, error) {
	rc, ok := core.GetAPIGatewayContextFromContext(ctx)
	if !ok {
		return auth.Principal{}, errs.E(errs.Unauthenticated, "", "request did not come through API Gateway")
	}
	now := time.Now
	if g.Now != nil {
		now = g.Now
	}
	return PrincipalFromAuthorizer(rc.Authorizer, token, now())
}

// AuthorizerHandler is a REQUEST-type API Gateway Lambda authorizer.
type AuthorizerHandler func(context.Context, events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error)

// errUnauthorized is what API Gateway turns into a 401: an authorizer error whose
// message is exactly "Unauthorized".
var errUnauthorized = errors.New("Unauthorized")

// NewAuthorizer validates the request's token (X-Auth-Token, or the legacy "token"
// header, as the API accepts) with v and allows the request with the principal in the
// context. An invalid token is a 401; a validator that cannot answer (Keystone down) is
// an authorizer failure, which API Gateway reports as 5xx, never as an allow.
func NewAuthorizer(v auth.Validator) AuthorizerHandler {
	return func(ctx context.Context, req events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
		tok := header(req.Headers, req.MultiValueHeaders, "X-Auth-Token")
		if tok == "" {
			tok = header(req.Headers, req.MultiValueHeaders, "token")
		}
		if tok == "" {
			return events.APIGatewayCustomAuthorizerResponse{}, errUnauthorized
		}
		p, err := v.Validate(ctx, tok)
		if errs.Is(err, errs.Unauthenticated) {
			return events.APIGatewayCustomAuthorizerResponse{}, errUnauthorized
		}
		if err != nil {
			return events.APIGatewayCustomAuthorizerResponse{}, err
		}
		return events.APIGatewayCustomAuthorizerResponse{
			PrincipalID: p.UserID,
			PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
				Version: "2012-10-17",
				Statement: []events.IAMPolicyStatement{{
					Action: []string{"execute-api:Invoke"}, Effect: "Allow", Resource: []string{req.MethodArn},
				}},
			},
			Context: AuthorizerContext(p, tok),
		}, nil
	}
}

// header finds a header case-insensitively (API Gateway passes names as clients sent them).
func header(single map[string]string, multi map[string][]string, name string) string {
	for k, v := range single {
		if strings.EqualFold(k, name) && v != "" {
			return v
		}
	}
	for k, vs := range multi {
		if strings.EqualFold(k, name) && len(vs) > 0 && vs[0] != "" {
			return vs[0]
		}
	}
	return ""
}
