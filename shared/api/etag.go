package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/store"
)

// An ETag is a strong validator of a resource's state: it changes whenever a write
// changes the resource's record (for a topology: the topology or any of its
// components). It is not a hash of the representation, which also carries live node
// data (heartbeats, metrics) that no update conflicts with. See docs/api-contract.md.

// etag returns the scoped resource's entity tag.
func (sc *scoped) etag(ctx context.Context, s *Server) (string, error) {
	if sc.tag != "" {
		return sc.tag, nil
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s/%s@%d", sc.Kind, sc.ID, sc.Version)
	if sc.Kind == ScopeTopology {
		// Components are part of a topology's state: a flexup changes a component only.
		q := store.Query{Index: store.IdxParent, Part: sc.ID}
		for {
			recs, next, err := s.DB.S.List(ctx, db.KindComponent, q)
			if err != nil {
				return "", err
			}
			for _, r := range recs {
				fmt.Fprintf(h, ";%s@%d", r.ID, r.Version)
			}
			if next == "" {
				break
			}
			q.After = next
		}
	}
	sc.tag = `"` + hex.EncodeToString(h.Sum(nil)[:12]) + `"`
	return sc.tag, nil
}

// checkIfMatch answers 412 when an update's If-Match names none of the resource's
// current entity tags. Weak tags never match (RFC 9110 §13.1.1 uses the strong comparison).
func (s *Server) checkIfMatch(r *http.Request, sc *scoped) error {
	vals := r.Header.Values("If-Match")
	if len(vals) == 0 {
		return nil
	}
	if sc.Kind == ScopeBranch && sc.Topology.ID == "" {
		return nil // an admin branch has no entity tag here; the handler may check its own
	}
	tag, err := sc.etag(r.Context(), s)
	if err != nil {
		return err
	}
	for _, v := range vals {
		for _, t := range strings.Split(v, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || t == tag {
				return nil
			}
		}
	}
	return &errs.Error{Kind: errs.Precondition, Field: "If-Match",
		Msg: fmt.Sprintf("the %s changed since you read it (its ETag is now %s); read it again and retry", sc.Kind, tag)}
}
