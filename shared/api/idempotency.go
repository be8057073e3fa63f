package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/straas/straas/shared/auth"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/store"
)

// IdempotencyHeader makes a POST safe to retry (draft-ietf-httpapi-idempotency-key-header):
// the first completed (2xx) result is stored for Server.IdempotencyTTL under the caller
// (project and user), the route and the key, and a retry gets it back instead of a
// second execution. The same key with a different request is a 422; a retry while the
// first is still running is a 409.
const IdempotencyHeader = "Idempotency-Key"

// ReplayedHeader marks an answer replayed from an earlier request with the same key.
const ReplayedHeader = "Idempotent-Replayed"

// pendingTTL bounds how long a claimed key stays claimed if the process dies mid-request.
const pendingTTL = 5 * time.Minute

// idemRecord is what the store keeps under a key.
type idemRecord struct {
	Fingerprint string            `json:"fingerprint"`
	Done        bool              `json:"done"`
	Status      int               `json:"status,omitempty"`
	Header      map[string]string `json:"header,omitempty"`
	Body        []byte            `json:"body,omitempty"`
	At          time.Time         `json:"at"`
}

// replayedHeaders are the response headers a replay repeats.
var replayedHeaders = []string{"Content-Type", "Location", "ETag"}

func validKey(k string) bool {
	if len(k) == 0 || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// idempotent runs next at most once per key: it claims the key, runs next, and keeps a
// 2xx result; any other result releases the key, since nothing was done that a retry
// could repeat.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, rt Route, p auth.Principal, next http.HandlerFunc) {
	ctx := r.Context()
	key := r.Header.Get(IdempotencyHeader)
	if !validKey(key) {
		writeError(w, r, errs.Invalidf(IdempotencyHeader, "want 1 to 255 printable ASCII characters"))
		return
	}
	fp, err := s.fingerprint(r, rt)
	if err != nil {
		writeError(w, r, err)
		return
	}
	sum := sha256.Sum256([]byte(p.ProjectID + "\x00" + p.UserID + "\x00" + rt.Method + " " + rt.Pattern + "\x00" + key))
	id := hex.EncodeToString(sum[:])
	var claimed store.Record
	for attempt := 0; ; attempt++ {
		rec, err := s.DB.S.Get(ctx, db.KindIdempotency, id)
		if err == nil {
			var ir idemRecord
			if err := store.Decode(rec, &ir); err != nil {
				writeError(w, r, err)
				return
			}
			switch {
			case ir.Fingerprint != fp:
				writeError(w, r, &StatusError{Code: http.StatusUnprocessableEntity, Field: IdempotencyHeader,
					Msg: "this Idempotency-Key was used for a different request; use a new key for a new request"})
			case !ir.Done:
				w.Header().Set("Retry-After", "1")
				writeError(w, r, &errs.Error{Kind: errs.Conflict, Field: IdempotencyHeader,
					Msg: "a request with this Idempotency-Key is still in progress; retry later"})
			default:
				for k, v := range ir.Header {
					w.Header().Set(k, v)
				}
				w.Header().Set(ReplayedHeader, "true")
				w.WriteHeader(ir.Status)
				_, _ = w.Write(ir.Body)
			}
			return
		}
		if !errs.Is(err, errs.NotFound) {
			writeError(w, r, err)
			return
		}
		now := s.now()
		claimed, err = store.Encode(db.KindIdempotency, id, idemRecord{Fingerprint: fp, At: now})
		if err != nil {
			writeError(w, r, err)
			return
		}
		claimed.Expires = now.Add(pendingTTL)
		err = s.DB.S.Write(ctx, store.Put(claimed, store.Absent))
		if err == nil {
			claimed.Version = 1
			break
		}
		if !errs.Is(err, errs.Conflict) || attempt > 0 {
			writeError(w, r, err)
			return
		}
		// Someone claimed it between our read and our write: answer as to a retry.
	}

	rw, _ := w.(*recorder)
	// The outcome is recorded even if the client went away meanwhile.
	wctx := context.WithoutCancel(ctx)
	release := func() {
		if err := s.DB.S.Write(wctx, store.Del(db.KindIdempotency, id, store.AtVersion, claimed.Version)); err != nil {
			s.Log.Warn("release idempotency key", "err", err)
		}
	}
	func() {
		defer func() {
			if v := recover(); v != nil {
				release() // a crashed handler did nothing a retry could repeat
				panic(v)
			}
		}()
		next(w, r)
	}()
	if rw == nil {
		return
	}
	if rw.status < 200 || rw.status > 299 || rw.body.Len() >= maxKept {
		release()
		return
	}
	ir := idemRecord{Fingerprint: fp, Done: true, Status: rw.status, Header: map[string]string{}, Body: rw.body.Bytes(), At: s.now()}
	for _, h := range replayedHeaders {
		if v := w.Header().Get(h); v != "" {
			ir.Header[h] = v
		}
	}
	done, err := store.Encode(db.KindIdempotency, id, ir)
	if err == nil {
		done.Version, done.Expires = claimed.Version, ir.At.Add(s.IdempotencyTTL)
		err = s.DB.S.Write(wctx, store.Put(done, store.AtVersion))
	}
	if err != nil {
		s.Log.Warn("record idempotent result", "err", err)
	}
}

// fingerprint identifies a request: method, path, query and body. A body that is not
// JSON (an upload) counts by its length and type, so that it can be streamed.
func (s *Server) fingerprint(r *http.Request, rt Route) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s %s?%s\x00", r.Method, r.URL.Path, r.URL.RawQuery)
	if rt.RequestMedia != "" {
		fmt.Fprintf(h, "%s\x00%d", r.Header.Get("Content-Type"), r.ContentLength)
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	if r.Body == nil || r.Body == http.NoBody {
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, s.MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", &errs.Error{Kind: errs.TooLarge, Field: "body", Msg: fmt.Sprintf("larger than %d bytes", s.MaxBody)}
		}
		return "", errs.Invalidf("body", "read: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	// Equal JSON with other spacing is the same request.
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&v) == nil && !dec.More() {
		if c, err := json.Marshal(v); err == nil {
			raw = c
		}
	}
	h.Write(raw)
	return hex.EncodeToString(h.Sum(nil)), nil
}
