package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/straas/straas/shared/agentproto"
	"github.com/straas/straas/shared/blob"
	"github.com/straas/straas/shared/db"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/model"
	"github.com/straas/straas/shared/stages"
)

// The storage API (seed 000 §4.1.1.3 items 5-7) keeps binary files — storm jars, files
// to push to nodes — in the blob store, one namespace per tenant:
// tenants/<project id>/<storage_type>/<dc>/<path>. Agents fetch objects through signed
// URLs (SignedBlobs), since they hold no credentials.

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// objectKey is the blob key of a tenant's object.
func objectKey(tenant, storageType, dc, p string) (string, error) {
	if !nameRE.MatchString(storageType) {
		return "", errs.Invalidf("storage_type", "%q: want a short lower-case name such as swift", storageType)
	}
	if !nameRE.MatchString(strings.ToLower(dc)) {
		return "", errs.Invalidf("dc", "%q is not a region name", dc)
	}
	if err := checkObjectPath(p, false); err != nil {
		return "", err
	}
	return "tenants/" + tenant + "/" + storageType + "/" + dc + "/" + p, nil
}

// checkObjectPath: "/"-separated segments, none empty, "." or ".." (a prefix may be "" or
// end with "/").
func checkObjectPath(p string, prefix bool) error {
	if prefix {
		p = strings.TrimSuffix(p, "/")
		if p == "" {
			return nil
		}
	}
	if p == "" {
		return errs.Invalidf("path", "an object needs a path")
	}
	if len(p) > 900 || strings.ContainsRune(p, 0) {
		return errs.Invalidf("path", "at most 900 bytes, no NUL")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return errs.Invalidf("path", "%q: empty, \".\" or \"..\" segment", p)
		}
	}
	return nil
}

func (s *Server) checkRegion(ctx context.Context, dc string) error {
	zones, err := s.Catalog.Zones(ctx)
	if err != nil {
		return err
	}
	if !contains(zones, dc) {
		return errs.Invalidf("dc", "unknown region %q (regions: %s)", dc, strings.Join(zones, ", "))
	}
	return nil
}

// ObjectView is a stored object as the storage API shows it.
type ObjectView struct {
	Path     string    `json:"path"` // relative to the region
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
	URL      string    `json:"url,omitempty"` // with ?urls=true: a signed download URL
}

// StoredObject is the answer of an upload.
type StoredObject struct {
	StorageType string     `json:"storage_type"`
	Region      string     `json:"region"`
	Object      ObjectView `json:"object"`
}

// ObjectList is the answer of a listing.
type ObjectList struct {
	StorageType string       `json:"storage_type"`
	Region      string       `json:"region"`
	Prefix      string       `json:"prefix"`
	Objects     []ObjectView `json:"objects"`
}

func (s *Server) storageArgs(r *http.Request, prefix bool) (lc *Lifecycle, key, typ, dc, p string, err error) {
	if lc, err = s.lifecycle(); err != nil {
		return
	}
	typ, dc, p = r.PathValue("storage_type"), r.PathValue("dc"), r.PathValue("path")
	if err = s.checkRegion(r.Context(), dc); err != nil {
		return
	}
	if prefix {
		if err = checkObjectPath(p, true); err != nil {
			return
		}
		key, err = objectKey(principal(r).ProjectID, typ, dc, "x")
		key = strings.TrimSuffix(key, "x") + p
		return
	}
	key, err = objectKey(principal(r).ProjectID, typ, dc, p)
	return
}

// putObject is POST /storage/{storage_type}/regions/{dc}/{path...}.
func (s *Server) putObject(w http.ResponseWriter, r *http.Request) error {
	lc, key, typ, dc, p, err := s.storageArgs(r, false)
	if err != nil {
		return err
	}
	if r.ContentLength > lc.MaxUpload {
		return &errs.Error{Kind: errs.TooLarge, Field: "body", Msg: fmt.Sprintf("larger than %d bytes", lc.MaxUpload)}
	}
	body := http.MaxBytesReader(nil, r.Body, lc.MaxUpload)
	if err := lc.Blob.Put(r.Context(), key, body, r.ContentLength); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &errs.Error{Kind: errs.TooLarge, Field: "body", Msg: fmt.Sprintf("larger than %d bytes", lc.MaxUpload)}
		}
		return fmt.Errorf("store %s: %w", p, err)
	}
	o, err := s.statObject(r.Context(), lc, key)
	if err != nil {
		return err
	}
	o.Path = p
	s.event(r, model.Event{Type: "storage.put", Message: fmt.Sprintf("%s stored %s/%s/%s (%d bytes)", principal(r).UserName, typ, dc, p, o.Size)})
	w.Header().Set("Location", r.URL.Path)
	writeJSON(w, http.StatusCreated, StoredObject{StorageType: typ, Region: dc, Object: o})
	return nil
}

func (s *Server) statObject(ctx context.Context, lc *Lifecycle, key string) (ObjectView, error) {
	objs, err := lc.Blob.List(ctx, key)
	if err != nil {
		return ObjectView{}, err
	}
	for _, o := range objs {
		if o.Key == key {
			return ObjectView{Path: o.Key, Size: o.Size, Modified: o.Modified.UTC()}, nil
		}
	}
	return ObjectView{}, errs.NotFoundf("no object %s", key)
}

// objectExists answers 400 naming the storage path when a referenced object is missing.
func (s *Server) objectExists(ctx context.Context, lc *Lifecycle, key string) error {
	if _, err := s.statObject(ctx, lc, key); err != nil {
		if errs.Is(err, errs.NotFound) {
			rel := key[strings.Index(key[len("tenants/"):], "/")+len("tenants/")+1:]
			return errs.Invalidf("filename", "no stored file %s: upload it first (POST %s/storage/%s)", rel, Prefix, rel)
		}
		return err
	}
	return nil
}

// listObjects is GET /storage/{storage_type}/regions/{dc}/{path...}.
func (s *Server) listObjects(w http.ResponseWriter, r *http.Request) error {
	urls, err := boolParam(r, "urls")
	if err != nil {
		return err
	}
	lc, key, typ, dc, p, err := s.storageArgs(r, true)
	if err != nil {
		return err
	}
	objs, err := lc.Blob.List(r.Context(), key)
	if err != nil {
		return err
	}
	base := strings.TrimSuffix(key, p)
	out := ObjectList{StorageType: typ, Region: dc, Prefix: p, Objects: []ObjectView{}}
	for _, o := range objs {
		v := ObjectView{Path: strings.TrimPrefix(o.Key, base), Size: o.Size, Modified: o.Modified.UTC()}
		if urls {
			if v.URL, err = lc.Files.URL(o.Key, time.Hour); err != nil {
				return err
			}
		}
		out.Objects = append(out.Objects, v)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteObject is DELETE /storage/{storage_type}/regions/{dc}/{path...}.
func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request) error {
	lc, key, typ, dc, p, err := s.storageArgs(r, false)
	if err != nil {
		return err
	}
	// Idempotent, as S3's DELETE: a retry after a lost answer must not fail.
	if err := lc.Blob.Delete(r.Context(), key); err != nil && !errs.Is(err, errs.NotFound) {
		return err
	}
	s.event(r, model.Event{Type: "storage.delete", Message: fmt.Sprintf("%s deleted %s/%s/%s", principal(r).UserName, typ, dc, p)})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- signed URLs for agents -------------------------------------------------------------

// BlobPath is where SignedBlobs serves objects, relative to the API's base URL: outside
// /straas/, like /metrics, since it is no API route.
const BlobPath = "/blobs/"

// SignedBlobs gives agents time-limited URLs to stored objects and serves them: the
// embedded counterpart of S3's pre-signed URLs. It is mounted beside the API (GET
// BlobPath), not in its route table: it is a data path for agents, not part of the API.
type SignedBlobs struct {
	Store blob.Store
	Base  string // the API's base URL as agents reach it, e.g. http://127.0.0.1:8080
	Key   []byte // the HMAC key
	Now   func() time.Time
}

func (b *SignedBlobs) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *SignedBlobs) sign(key string, exp int64) string {
	m := hmac.New(sha256.New, b.Key)
	fmt.Fprintf(m, "GET\n%s\n%d", key, exp)
	return hex.EncodeToString(m.Sum(nil))
}

// URL returns a URL that serves key until ttl from now.
func (b *SignedBlobs) URL(key string, ttl time.Duration) (string, error) {
	if len(b.Key) < 16 {
		return "", errs.E(errs.Other, "signed URL", "no signing key")
	}
	exp := b.now().Add(ttl).Unix()
	return fmt.Sprintf("%s%s%s?expires=%d&signature=%s", strings.TrimRight(b.Base, "/"), BlobPath, escapePath(key), exp, b.sign(key, exp)), nil
}

// ServeHTTP serves an object to whoever holds a valid, unexpired URL.
func (b *SignedBlobs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, msg string) {
		writeJSON(w, code, Error{Error: ErrorBody{Code: code, Title: http.StatusText(code), Message: msg}})
	}
	key := strings.TrimPrefix(r.URL.Path, BlobPath)
	exp, err := strconv.ParseInt(r.URL.Query().Get("expires"), 10, 64)
	sig := r.URL.Query().Get("signature")
	if err != nil || !hmac.Equal([]byte(sig), []byte(b.sign(key, exp))) {
		fail(http.StatusForbidden, "bad signature")
		return
	}
	if b.now().Unix() > exp {
		fail(http.StatusForbidden, "the URL expired")
		return
	}
	rc, err := b.Store.Get(r.Context(), key)
	if err != nil {
		if errs.Is(err, errs.NotFound) {
			fail(http.StatusNotFound, "no such object")
			return
		}
		fail(http.StatusInternalServerError, "internal error")
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = io.Copy(w, rc)
}

var _ FileURLs = (*SignedBlobs)(nil)

// --- files and scripts -------------------------------------------------------------------

// ScopeRequest names nodes: every node of the topologies, components or nodes listed.
type ScopeRequest struct {
	Scope string   `json:"scope"`
	Items []string `json:"items"`
}

// FilesRequest is the body of POST /nodes/files (seed 000 §4.1.1.3 item 9).
type FilesRequest struct {
	ScopeRequest
	Container   string `json:"container"`
	Filename    string `json:"filename"`
	TargetPath  string `json:"target_path"`
	StorageType string `json:"storage_type,omitempty"`
	Region      string `json:"region,omitempty"`
}

// ScriptsRequest is the body of PUT /nodes/scripts (seed 000 §4.1.1.3 item 3).
type ScriptsRequest struct {
	ScopeRequest
	Apply bool `json:"apply,omitempty"`
}

// scopeNodes resolves a scope to nodes the caller may see (404 otherwise), and the
// topology of the first item.
func (s *Server) scopeNodes(r *http.Request, sr ScopeRequest) ([]model.Node, model.Topology, error) {
	var first model.Topology
	switch sr.Scope {
	case stages.ScopeTopology, stages.ScopeComponent, stages.ScopeNode:
	default:
		return nil, first, errs.Invalidf("scope", "want topology, component or node, got %q", sr.Scope)
	}
	if len(sr.Items) == 0 || len(sr.Items) > 1000 {
		return nil, first, errs.Invalidf("items", "want 1 to 1000 %s ids", sr.Scope)
	}
	kind := map[string]ScopeKind{stages.ScopeTopology: ScopeTopology, stages.ScopeComponent: ScopeComponent, stages.ScopeNode: ScopeNode}[sr.Scope]
	p := principal(r)
	for i, id := range sr.Items {
		sc, err := s.resolve(r.Context(), p, Scope{Param: "items", Kind: kind}, id)
		if err != nil {
			if errs.Is(err, errs.NotFound) {
				return nil, first, &errs.Error{Kind: errs.NotFound, Field: fmt.Sprintf("items[%d]", i), Msg: err.Error()}
			}
			return nil, first, err
		}
		if i == 0 {
			first = sc.Topology
		}
	}
	nodes, err := stages.ScopeNodes(r.Context(), s.DB, sr.Scope, sr.Items)
	return nodes, first, err
}

func reachableCount(nodes []model.Node) (int, int) {
	n := 0
	for i := range nodes {
		if stages.Reachable(&nodes[i]) {
			n++
		}
	}
	return n, len(nodes) - n
}

// submitFanOut starts a files or scripts action (no component lock: these change no
// membership and run beside other operations).
func (s *Server) submitFanOut(r *http.Request, t *model.Topology, kind, machine string, input map[string]any) (*model.Action, error) {
	p := principal(r)
	a := &model.Action{ID: db.NewID("act"), Kind: kind, Tenant: t.Tenant, User: p.UserID, TopologyID: t.ID, Machine: machine, CreatedAt: s.DB.Now()}
	input["action_id"], input["topology_id"] = a.ID, t.ID
	a.Input, _ = json.Marshal(input)
	return a, s.Launcher.Submit(r.Context(), a)
}

// putFiles is POST /nodes/files.
func (s *Server) putFiles(w http.ResponseWriter, r *http.Request) error {
	lc, err := s.lifecycle()
	if err != nil {
		return err
	}
	var req FilesRequest
	if err := s.decodeStrict(r, &req, false); err != nil {
		return err
	}
	for f, v := range map[string]string{"container": req.Container, "filename": req.Filename, "target_path": req.TargetPath} {
		if v == "" {
			return errs.Invalidf(f, "required")
		}
	}
	if !strings.HasPrefix(req.TargetPath, "/") || strings.Contains(req.TargetPath, "..") || strings.HasSuffix(req.TargetPath, "/") {
		return errs.Invalidf("target_path", "want an absolute file path without \"..\", got %q", req.TargetPath)
	}
	nodes, t, err := s.scopeNodes(r, req.ScopeRequest)
	if err != nil {
		return err
	}
	if req.StorageType == "" {
		req.StorageType = "swift"
	}
	if req.Region == "" {
		req.Region = t.AvailabilityZone
	}
	rel := req.Container + "/" + req.Filename
	key, err := objectKey(principal(r).ProjectID, req.StorageType, req.Region, rel)
	if err != nil {
		return err
	}
	if err := s.objectExists(r.Context(), lc, key); err != nil {
		return err
	}
	// The URL must outlive the action: a node may wait for its turn until the stage times out.
	u, err := lc.Files.URL(key, 24*time.Hour)
	if err != nil {
		return err
	}
	reach, skipped := reachableCount(nodes)
	if reach == 0 {
		return errs.Conflictf("no node of the scope can take commands now (%d nodes, none reachable)", len(nodes))
	}
	a, err := s.submitFanOut(r, &t, stages.ActionFiles, "files", map[string]any{
		"scope": req.Scope, "items": req.Items,
		"file": agentproto.File{Key: req.StorageType + "/regions/" + req.Region + "/" + rel, URL: u, TargetPath: req.TargetPath},
	})
	if err != nil {
		return err
	}
	obj := req.StorageType + "/regions/" + req.Region + "/" + rel
	s.event(r, model.Event{Type: "nodes.files", TopologyID: t.ID, ActionID: a.ID,
		Message: fmt.Sprintf("%s asked to put %s at %s on %d nodes", principal(r).UserName, obj, req.TargetPath, reach)})
	writeJSON(w, http.StatusAccepted, FanOutAccepted{Action: actionRef(a.ID), Nodes: reach, Skipped: skipped, Object: obj})
	return nil
}

// ScriptsRef is what script sync needs of the script repo.
type ScriptsRef interface {
	ScriptsRef(ctx context.Context) (string, error)
}

// syncScripts is PUT /nodes/scripts.
func (s *Server) syncScripts(w http.ResponseWriter, r *http.Request) error {
	lc, err := s.lifecycle()
	if err != nil {
		return err
	}
	var req ScriptsRequest
	if err := s.decodeStrict(r, &req, false); err != nil {
		return err
	}
	nodes, t, err := s.scopeNodes(r, req.ScopeRequest)
	if err != nil {
		return err
	}
	ref := ""
	if sr, ok := lc.Scripts.(ScriptsRef); ok {
		if ref, err = sr.ScriptsRef(r.Context()); err != nil {
			return err
		}
	}
	reach, skipped := reachableCount(nodes)
	if reach == 0 {
		return errs.Conflictf("no node of the scope can take commands now (%d nodes, none reachable)", len(nodes))
	}
	a, err := s.submitFanOut(r, &t, stages.ActionScripts, "scripts_sync", map[string]any{
		"scope": req.Scope, "items": req.Items, "apply": req.Apply, "scripts_ref": ref,
	})
	if err != nil {
		return err
	}
	s.event(r, model.Event{Type: "nodes.scripts", TopologyID: t.ID, ActionID: a.ID,
		Message: fmt.Sprintf("%s asked to sync the scripts (%s) to %d nodes", principal(r).UserName, shortRef(ref), reach)})
	writeJSON(w, http.StatusAccepted, FanOutAccepted{Action: actionRef(a.ID), Nodes: reach, Skipped: skipped, ScriptsRef: ref})
	return nil
}

func shortRef(h string) string {
	if len(h) > 10 {
		return h[:10]
	}
	return h
}
