package mockcn

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/straas/straas/mockcn/identity"
	"github.com/straas/straas/shared/errs"
)

// Mount points.
const (
	ComputePrefix = "/compute"
	ComputeV21    = ComputePrefix + "/v2.1"
	AdminPrefix   = "/mockcn/v1"
)

// Microversions served (2.1 to 2.MaxMicroversion).
const MaxMicroversion = 79

const novaTime = "2006-01-02T15:04:05Z"
const usgTime = "2006-01-02T15:04:05.000000"

type ctxKey int

const (
	keyToken ctxKey = iota
	keyMicro
)

func tokenOf(r *http.Request) *identity.Token { return r.Context().Value(keyToken).(*identity.Token) }
func microOf(r *http.Request) int             { return r.Context().Value(keyMicro).(int) }

func (c *Cloud) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(identity.Prefix, c.id.Handler(c.catalog))
	mux.Handle(identity.Prefix+"/", c.id.Handler(c.catalog))

	mux.HandleFunc("GET "+ComputePrefix, c.novaVersions)
	mux.HandleFunc("GET "+ComputePrefix+"/{$}", c.novaVersions)
	mux.HandleFunc("GET "+ComputeV21, c.novaVersion)
	mux.HandleFunc("GET "+ComputeV21+"/{$}", c.novaVersion)
	nova := func(pattern string, h http.HandlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		mux.Handle(method+" "+ComputeV21+path, c.novaAuth(h))
	}
	nova("GET /servers", c.listServers(false))
	nova("GET /servers/detail", c.listServers(true))
	nova("POST /servers", c.createServer)
	nova("GET /servers/{id}", c.showServer)
	nova("PUT /servers/{id}", c.updateServer)
	nova("DELETE /servers/{id}", c.deleteServer)
	nova("POST /servers/{id}/action", c.serverAction)
	nova("GET /servers/{id}/metadata", c.getMetadata)
	nova("PUT /servers/{id}/metadata", c.setMetadata(true))
	nova("POST /servers/{id}/metadata", c.setMetadata(false))
	nova("GET /servers/{id}/metadata/{key}", c.getMetadatum)
	nova("PUT /servers/{id}/metadata/{key}", c.putMetadatum)
	nova("DELETE /servers/{id}/metadata/{key}", c.deleteMetadatum)
	nova("GET /flavors", c.listFlavors(false))
	nova("GET /flavors/detail", c.listFlavors(true))
	nova("GET /flavors/{id}", c.showFlavor)
	nova("GET /flavors/{id}/os-extra_specs", c.flavorExtraSpecs)
	nova("GET /os-availability-zone", c.listAZs(false))
	nova("GET /os-availability-zone/detail", c.listAZs(true))
	nova("GET /os-hypervisors", c.listHypervisors(false))
	nova("GET /os-hypervisors/detail", c.listHypervisors(true))
	nova("GET /os-hypervisors/statistics", c.hypervisorStats)
	nova("GET /os-hypervisors/{id}", c.showHypervisor)
	nova("GET /os-server-groups", c.listGroups)
	nova("POST /os-server-groups", c.createGroup)
	nova("GET /os-server-groups/{id}", c.showGroup)
	nova("DELETE /os-server-groups/{id}", c.deleteGroup)
	nova("GET /os-aggregates", c.listAggregates)
	nova("GET /os-aggregates/{id}", c.showAggregate)
	nova("GET /limits", c.limits)
	nova("GET /os-quota-sets/{project}", c.quotaSet)
	mux.HandleFunc(ComputePrefix+"/", func(w http.ResponseWriter, r *http.Request) {
		novaError(w, http.StatusNotFound, "The resource could not be found.")
	})
	c.adminRoutes(mux)
	return mux
}

// base is the public base URL (scheme and host) for a request.
func (c *Cloud) base(r *http.Request) string {
	if c.cfg.PublicURL != "" {
		return strings.TrimRight(c.cfg.PublicURL, "/")
	}
	return identity.BaseURL(r)
}

// catalog lists Keystone and Nova for the cloud's region, and again under each AZ's name
// as a region, so that a client may pick its endpoint by region or by AZ.
func (c *Cloud) catalog(r *http.Request) []identity.CatalogEntry {
	base := c.base(r)
	c.mu.Lock()
	regions := append([]string{c.cfg.Region}, c.azs...)
	c.mu.Unlock()
	entry := func(typ, name, url string) identity.CatalogEntry {
		e := identity.CatalogEntry{ID: identity.ID("service", typ), Type: typ, Name: name}
		seen := map[string]bool{}
		for _, reg := range regions {
			if seen[reg] {
				continue
			}
			seen[reg] = true
			for _, iface := range []string{"public", "internal", "admin"} {
				e.Endpoints = append(e.Endpoints, identity.Endpoint{ID: identity.ID("endpoint", typ+"/"+reg+"/"+iface), Interface: iface, Region: reg, RegionID: reg, URL: url})
			}
		}
		return e
	}
	return []identity.CatalogEntry{
		entry("identity", "keystone", base+identity.Prefix+"/v3"),
		entry("compute", "nova", base+ComputeV21),
	}
}

var novaErrorKeys = map[int]string{
	400: "badRequest", 403: "forbidden", 404: "itemNotFound", 405: "badMethod", 406: "notAcceptable",
	409: "conflictingRequest", 413: "overLimit", 500: "computeFault", 503: "serviceUnavailable",
}

// novaError writes an error as Nova does: {"itemNotFound": {"code": 404, "message": ...}}.
func novaError(w http.ResponseWriter, code int, msg string) {
	if code == http.StatusUnauthorized {
		// Keystone middleware answers before Nova does.
		writeJSON(w, code, map[string]any{"error": map[string]any{"code": code, "title": "Unauthorized", "message": msg}})
		return
	}
	key := novaErrorKeys[code]
	if key == "" {
		key = "computeFault"
	}
	writeJSON(w, code, map[string]any{key: map[string]any{"code": code, "message": msg}})
}

// novaErr maps an error's kind to Nova's status.
func novaErr(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch errs.KindOf(err) {
	case errs.Invalid:
		code = http.StatusBadRequest
	case errs.NotFound:
		code = http.StatusNotFound
	case errs.Conflict:
		code = http.StatusConflict
	case errs.Permission:
		code = http.StatusForbidden
	case errs.Unauthenticated:
		code = http.StatusUnauthorized
	}
	msg := err.Error()
	var e *errs.Error
	if errors.As(err, &e) && e.Msg != "" && e.Field == "" && e.Err == nil {
		msg = e.Msg
	}
	novaError(w, code, msg)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

func decodeBody(r *http.Request, v any) error {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		return errs.Invalidf("body", "Malformed request body: %v", err)
	}
	return nil
}

func (c *Cloud) versionDoc(r *http.Request, id string) map[string]any {
	d := map[string]any{
		"id": id, "status": "CURRENT", "version": fmt.Sprintf("2.%d", MaxMicroversion), "min_version": "2.1",
		"updated":     "2013-07-23T11:33:21Z",
		"links":       []map[string]string{{"rel": "self", "href": c.base(r) + ComputeV21 + "/"}},
		"media-types": []map[string]string{{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}},
	}
	if id == "v2.0" {
		d["status"], d["version"], d["min_version"] = "SUPPORTED", "", ""
		d["links"] = []map[string]string{{"rel": "self", "href": c.base(r) + ComputePrefix + "/v2/"}}
	}
	return d
}

func (c *Cloud) novaVersions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"versions": []any{c.versionDoc(r, "v2.0"), c.versionDoc(r, "v2.1")}})
}

func (c *Cloud) novaVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": c.versionDoc(r, "v2.1")})
}

// parseMicro reads the requested microversion (the minor of 2.x).
func parseMicro(r *http.Request) (int, error) {
	v := r.Header.Get("X-OpenStack-Nova-API-Version")
	for _, part := range strings.Split(r.Header.Get("OpenStack-API-Version"), ",") {
		if svc, ver, ok := strings.Cut(strings.TrimSpace(part), " "); ok && svc == "compute" {
			v = strings.TrimSpace(ver)
		}
	}
	switch v {
	case "":
		return 1, nil
	case "latest":
		return MaxMicroversion, nil
	}
	maj, min, ok := strings.Cut(v, ".")
	n, err := strconv.Atoi(min)
	if !ok || maj != "2" || err != nil || n < 1 || n > MaxMicroversion {
		return 0, fmt.Errorf("Version %s is not supported by the API. Minimum is 2.1 and maximum is 2.%d.", v, MaxMicroversion)
	}
	return n, nil
}

// novaAuth validates the token and the microversion of a Nova request.
func (c *Cloud) novaAuth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rid := "req-" + uuid.NewString()
		w.Header().Set("X-Compute-Request-Id", rid)
		w.Header().Set("X-Openstack-Request-Id", rid)
		t, err := c.id.Validate(r.Header.Get("X-Auth-Token"))
		if err != nil || t.ProjectID == "" {
			novaError(w, http.StatusUnauthorized, "The request you have made requires authentication.")
			return
		}
		mv, err := parseMicro(r)
		if err != nil {
			novaError(w, http.StatusNotAcceptable, err.Error())
			return
		}
		ver := fmt.Sprintf("2.%d", mv)
		w.Header().Set("OpenStack-API-Version", "compute "+ver)
		w.Header().Set("X-OpenStack-Nova-API-Version", ver)
		w.Header().Set("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
		ctx := context.WithValue(context.WithValue(r.Context(), keyToken, t), keyMicro, mv)
		h(w, r.WithContext(ctx))
	})
}

func forbidden(w http.ResponseWriter, rule string) {
	novaError(w, http.StatusForbidden, "Policy doesn't allow "+rule+" to be performed.")
}

func truthy(s string) bool {
	switch strings.ToLower(s) {
	case "0", "false", "no", "off":
		return false
	}
	return true
}

// --- servers -------------------------------------------------------------------------

type stringList []string

func (s *stringList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

type createRequest struct {
	Server *struct {
		Name             *string           `json:"name"`
		FlavorRef        string            `json:"flavorRef"`
		ImageRef         string            `json:"imageRef"`
		AvailabilityZone string            `json:"availability_zone"`
		UserData         *string           `json:"user_data"`
		Metadata         map[string]string `json:"metadata"`
		KeyName          string            `json:"key_name"`
		MinCount         int               `json:"min_count"`
		MaxCount         int               `json:"max_count"`
		BlockDevices     []json.RawMessage `json:"block_device_mapping_v2"`
	} `json:"server"`
	Hints *struct {
		Group         string     `json:"group"`
		DifferentHost stringList `json:"different_host"`
		SameHost      stringList `json:"same_host"`
		FaultDomain   string     `json:"fault_domain"`
	} `json:"os:scheduler_hints"`
}

func lastSegment(ref string) string {
	ref = strings.TrimRight(ref, "/")
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

func (c *Cloud) createServer(w http.ResponseWriter, r *http.Request) {
	tok := tokenOf(r)
	var req createRequest
	if err := decodeBody(r, &req); err != nil {
		novaErr(w, err)
		return
	}
	s := req.Server
	if s == nil {
		novaError(w, http.StatusBadRequest, "Invalid input for field/attribute server. Value: None. 'server' is a required property")
		return
	}
	if s.Name == nil || strings.TrimSpace(*s.Name) == "" || len(*s.Name) > 255 || strings.TrimSpace(*s.Name) != *s.Name {
		novaError(w, http.StatusBadRequest, "Invalid input for field/attribute name. Value: None. 'name' is a required property and must be 1-255 characters without leading or trailing whitespace")
		return
	}
	flavor := c.flavors[lastSegment(s.FlavorRef)]
	if flavor == nil {
		novaError(w, http.StatusBadRequest, fmt.Sprintf("Flavor %s could not be found.", s.FlavorRef))
		return
	}
	image := lastSegment(s.ImageRef)
	if image == "" && len(s.BlockDevices) == 0 {
		novaError(w, http.StatusBadRequest, "Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.")
		return
	}
	if len(s.Metadata) > 128 {
		novaError(w, http.StatusForbidden, "Quota exceeded for metadata_items: Requested "+strconv.Itoa(len(s.Metadata))+", but already used 0 of 128 metadata_items")
		return
	}
	for k := range s.Metadata {
		if k == "" || len(k) > 255 {
			novaError(w, http.StatusBadRequest, "Invalid input for field/attribute metadata: keys must be 1-255 characters")
			return
		}
	}
	userData := ""
	if s.UserData != nil {
		userData = *s.UserData
		if len(userData) > 65535 {
			novaError(w, http.StatusBadRequest, "Invalid input for field/attribute user_data. Value: too long (more than 65535 characters)")
			return
		}
		if _, err := base64.StdEncoding.DecodeString(userData); err != nil {
			novaError(w, http.StatusBadRequest, "User data needs to be valid base 64.")
			return
		}
	}
	az, host, _ := strings.Cut(s.AvailabilityZone, ":")
	if host != "" && !tok.IsAdmin() {
		forbidden(w, "os_compute_api:servers:create:forced_host")
		return
	}
	count := max(s.MaxCount, s.MinCount, 1)
	if s.MinCount > 0 && s.MaxCount > 0 && s.MinCount > s.MaxCount {
		novaError(w, http.StatusBadRequest, "min_count must be <= max_count")
		return
	}
	if count > 1000 {
		novaError(w, http.StatusBadRequest, "max_count must be <= 1000")
		return
	}
	var h hints
	c.mu.Lock()
	defer c.mu.Unlock()
	if az != "" && !contains(c.azs, az) {
		novaError(w, http.StatusBadRequest, "The requested availability zone is not available")
		return
	}
	if req.Hints != nil {
		h.differentHost, h.sameHost, h.faultDomain = req.Hints.DifferentHost, req.Hints.SameHost, req.Hints.FaultDomain
		if req.Hints.Group != "" {
			g := c.groups[req.Hints.Group]
			if g == nil || (g.Project != tok.ProjectID && !tok.IsAdmin()) {
				novaError(w, http.StatusBadRequest, "Invalid server group "+req.Hints.Group+": it could not be found.")
				return
			}
			h.group = g
		}
	}
	h.host = host
	if err := c.checkQuotaLocked(tok.ProjectID, flavor, count); err != nil {
		novaError(w, http.StatusForbidden, err.Error())
		return
	}
	var first *vm
	for i := 1; i <= count; i++ {
		name := *s.Name
		if count > 1 {
			name = fmt.Sprintf("%s-%d", name, i)
		}
		v := c.newServerLocked(tok, name, flavor, image, az, userData, s.Metadata, s.KeyName, h, i-1)
		if first == nil {
			first = v
		}
	}
	body := map[string]any{
		"id": first.ID, "links": c.serverLinks(r, first.ID), "OS-DCF:diskConfig": "MANUAL",
		"security_groups": []map[string]string{{"name": "default"}}, "adminPass": uuid.NewString()[:12],
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"server": body})
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func (c *Cloud) checkQuotaLocked(project string, f *Flavor, count int) error {
	q := c.cfg.Quota
	if q == (Quota{}) {
		return nil
	}
	n, cores, ram := c.usageLocked(project)
	check := func(what string, limit, used, want int) error {
		if limit > 0 && used+want > limit {
			return fmt.Errorf("Quota exceeded for %s: Requested %d, but already used %d of %d %s", what, want, used, limit, what)
		}
		return nil
	}
	if err := check("instances", q.Instances, n, count); err != nil {
		return err
	}
	if err := check("cores", q.Cores, cores, count*f.VCPUs); err != nil {
		return err
	}
	return check("ram", q.RAMMB, ram, count*f.RAMMB)
}

func (c *Cloud) usageLocked(project string) (n, cores, ram int) {
	for _, v := range c.vms {
		if v.Project == project {
			n++
			cores += v.CPUs
			ram += v.RAMMB
		}
	}
	return
}

// newServerLocked creates, places and persists one server, and schedules its boot.
func (c *Cloud) newServerLocked(tok *identity.Token, name string, f *Flavor, image, az, userData string, md map[string]string, key string, h hints, index int) *vm {
	now := c.clock.Now().UTC()
	v := &vm{
		ID: uuid.NewString(), Name: name, Project: tok.ProjectID, User: tok.UserID,
		FlavorID: f.ID, FlavorName: f.Name, CPUs: f.VCPUs, RAMMB: f.RAMMB, DiskGB: f.DiskGB,
		Image: image, AZ: az, UserData: userData, KeyName: key, Created: now, LaunchIndex: index,
	}
	if len(md) > 0 {
		v.Metadata = make(map[string]string, len(md))
		for k, val := range md {
			v.Metadata[k] = val
		}
	}
	if ud, err := ParseUserData(userData); err == nil && ud != nil {
		v.NodeID = ud.NodeID
	}
	x, reason := c.placeLocked(v, az, h)
	if h.group != nil {
		v.Group = h.group.ID
		h.group.Members = append(h.group.Members, v.ID)
		c.saveGroupsLocked()
	}
	c.vms[v.ID] = v
	if x == nil {
		v.Fault = &fault{Code: 500, Message: noValidHost, Details: reason, Created: now}
		if v.AZ == "" {
			v.AZ = "nova"
		}
		c.transitionLocked(v, StatusError, "", "error", powerNoState)
		return v
	}
	v.cn, v.CN = x, x.ID
	if v.AZ == "" {
		v.AZ = x.AZ
	}
	v.IP, v.MAC = c.nextIPLocked()
	x.vms[v.ID] = v
	c.charge(x, v, 1)
	c.transitionLocked(v, StatusBuild, "spawning", "building", powerNoState)
	c.scheduleActiveLocked(v, c.latency.sample())
	return v
}

func (c *Cloud) serverLinks(r *http.Request, id string) []map[string]string {
	b := c.base(r)
	return []map[string]string{
		{"rel": "self", "href": b + ComputeV21 + "/servers/" + id},
		{"rel": "bookmark", "href": b + ComputePrefix + "/servers/" + id},
	}
}

func (c *Cloud) flavorBody(r *http.Request, f *Flavor, mv int, detail bool) map[string]any {
	b := map[string]any{
		"id": f.ID, "name": f.Name,
		"links": []map[string]string{
			{"rel": "self", "href": c.base(r) + ComputeV21 + "/flavors/" + f.ID},
			{"rel": "bookmark", "href": c.base(r) + ComputePrefix + "/flavors/" + f.ID},
		},
	}
	if mv >= 55 {
		b["description"] = nil
	}
	if detail {
		b["vcpus"], b["ram"], b["disk"], b["swap"] = f.VCPUs, f.RAMMB, f.DiskGB, ""
		b["OS-FLV-EXT-DATA:ephemeral"], b["OS-FLV-DISABLED:disabled"] = 0, false
		b["os-flavor-access:is_public"], b["rxtx_factor"] = true, 1.0
		if mv >= 61 {
			b["extra_specs"] = map[string]string{}
		}
	}
	return b
}

// serverBody renders a server as Nova's detail view at microversion 2.mv.
func (c *Cloud) serverBody(r *http.Request, v *vm, mv int, admin bool) map[string]any {
	b := map[string]any{
		"id": v.ID, "name": v.Name, "status": v.Status, "tenant_id": v.Project, "user_id": v.User,
		"created": v.Created.Format(novaTime), "updated": v.Updated.Format(novaTime),
		"links": c.serverLinks(r, v.ID), "accessIPv4": "", "accessIPv6": "", "config_drive": "",
		"OS-DCF:diskConfig": "MANUAL", "OS-EXT-AZ:availability_zone": v.AZ,
		"OS-EXT-STS:vm_state": v.VMState, "OS-EXT-STS:power_state": v.Power, "OS-EXT-STS:task_state": nil,
		"OS-SRV-USG:launched_at": nil, "OS-SRV-USG:terminated_at": nil,
		"os-extended-volumes:volumes_attached": []any{}, "hostId": "", "addresses": map[string]any{},
		"metadata": map[string]string{}, "key_name": nil, "progress": 0,
	}
	if v.Task != "" {
		b["OS-EXT-STS:task_state"] = v.Task
	}
	if v.Launched != nil {
		b["OS-SRV-USG:launched_at"] = v.Launched.Format(usgTime)
	}
	if v.Metadata != nil {
		b["metadata"] = v.Metadata
	}
	if v.KeyName != "" {
		b["key_name"] = v.KeyName
	}
	if v.Status == StatusActive {
		b["progress"] = 100
	}
	if v.Image != "" {
		b["image"] = map[string]any{"id": v.Image, "links": []map[string]string{{"rel": "bookmark", "href": c.base(r) + ComputePrefix + "/images/" + v.Image}}}
	} else {
		b["image"] = ""
	}
	if mv >= 47 {
		b["flavor"] = map[string]any{"vcpus": v.CPUs, "ram": v.RAMMB, "disk": v.DiskGB, "ephemeral": 0, "swap": 0, "original_name": v.FlavorName, "extra_specs": map[string]string{}}
	} else {
		b["flavor"] = map[string]any{"id": v.FlavorID, "links": []map[string]string{{"rel": "bookmark", "href": c.base(r) + ComputePrefix + "/flavors/" + v.FlavorID}}}
	}
	if v.cn != nil {
		h := sha256.Sum224([]byte(v.Project + v.cn.Hostname))
		b["hostId"] = hex.EncodeToString(h[:])
		b["addresses"] = map[string]any{"private": []map[string]any{{"addr": v.IP, "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": v.MAC}}}
	}
	if v.Status != StatusError {
		b["security_groups"] = []map[string]string{{"name": "default"}}
	}
	if v.Fault != nil {
		f := map[string]any{"code": v.Fault.Code, "message": v.Fault.Message, "created": v.Fault.Created.Format(novaTime)}
		if admin {
			f["details"] = v.Fault.Details
		}
		b["fault"] = f
	}
	if admin {
		host := any(nil)
		if v.cn != nil {
			host = v.cn.Hostname
		}
		b["OS-EXT-SRV-ATTR:host"] = host
		b["OS-EXT-SRV-ATTR:hypervisor_hostname"] = host
		b["OS-EXT-SRV-ATTR:instance_name"] = fmt.Sprintf("instance-%08x", ipSeqOf(v.IP))
		if mv >= 3 {
			b["OS-EXT-SRV-ATTR:hostname"] = hostname(v.Name)
			b["OS-EXT-SRV-ATTR:reservation_id"] = "r-" + v.ID[:8]
			b["OS-EXT-SRV-ATTR:launch_index"] = v.LaunchIndex
			b["OS-EXT-SRV-ATTR:kernel_id"], b["OS-EXT-SRV-ATTR:ramdisk_id"] = "", ""
			b["OS-EXT-SRV-ATTR:root_device_name"] = "/dev/vda"
			if v.UserData != "" {
				b["OS-EXT-SRV-ATTR:user_data"] = v.UserData
			} else {
				b["OS-EXT-SRV-ATTR:user_data"] = nil
			}
		}
		if mv >= 16 {
			switch {
			case v.cn == nil:
				b["host_status"] = ""
			case v.cn.down:
				b["host_status"] = "DOWN"
			default:
				b["host_status"] = "UP"
			}
		}
	}
	if mv >= 9 {
		b["locked"] = false
	}
	if mv >= 19 {
		b["description"] = nil
	}
	if mv >= 26 {
		b["tags"] = []string{}
	}
	if mv >= 71 {
		gs := []string{}
		if v.Group != "" {
			gs = append(gs, v.Group)
		}
		b["server_groups"] = gs
	}
	if mv >= 73 {
		b["locked_reason"] = nil
	}
	return b
}

// visibleLocked finds a server the caller may see.
func (c *Cloud) visibleLocked(r *http.Request) *vm {
	v := c.vms[r.PathValue("id")]
	if v == nil {
		return nil
	}
	if t := tokenOf(r); !t.IsAdmin() && v.Project != t.ProjectID {
		return nil
	}
	return v
}

// withServer runs fn under the cloud's lock on the server of the path's id that the
// caller may see, or answers Nova's 404.
func (c *Cloud) withServer(w http.ResponseWriter, r *http.Request, fn func(v *vm)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.visibleLocked(r)
	if v == nil {
		notFoundServer(w, r.PathValue("id"))
		return
	}
	fn(v)
}

func notFoundServer(w http.ResponseWriter, id string) {
	novaError(w, http.StatusNotFound, "Instance "+id+" could not be found.")
}

func (c *Cloud) listServers(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, mv, q := tokenOf(r), microOf(r), r.URL.Query()
		all := tok.IsAdmin() && q.Has("all_tenants") && truthy(q.Get("all_tenants"))
		project := tok.ProjectID
		if all {
			project = q.Get("project_id")
			if project == "" {
				project = q.Get("tenant_id")
			}
		}
		var nameRe, ipRe *regexp.Regexp
		var err error
		if n := q.Get("name"); n != "" {
			if nameRe, err = regexp.Compile(n); err != nil {
				novaError(w, http.StatusBadRequest, "Invalid input for query parameter name: "+err.Error())
				return
			}
		}
		if n := q.Get("ip"); n != "" {
			if ipRe, err = regexp.Compile(n); err != nil {
				novaError(w, http.StatusBadRequest, "Invalid input for query parameter ip: "+err.Error())
				return
			}
		}
		var since time.Time
		if s := q.Get("changes-since"); s != "" {
			if since, err = time.Parse(time.RFC3339, s); err != nil {
				novaError(w, http.StatusBadRequest, "Invalid input for query parameter changes-since: "+err.Error())
				return
			}
		}
		limit := 1000
		if l := q.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 0 {
				novaError(w, http.StatusBadRequest, "Invalid input for query parameter limit. Value: "+l+". must be a non-negative integer")
				return
			}
			limit = min(n, 1000)
		}
		status := strings.ToUpper(q.Get("status"))
		c.mu.Lock()
		defer c.mu.Unlock()
		var out []*vm
		for _, v := range c.vms {
			switch {
			case project != "" && v.Project != project:
			case nameRe != nil && !nameRe.MatchString(v.Name):
			case ipRe != nil && !ipRe.MatchString(v.IP):
			case status != "" && v.Status != status:
			case q.Get("flavor") != "" && v.FlavorID != q.Get("flavor"):
			case q.Get("image") != "" && v.Image != q.Get("image"):
			case q.Get("availability_zone") != "" && v.AZ != q.Get("availability_zone"):
			case tok.IsAdmin() && q.Get("host") != "" && (v.cn == nil || v.cn.Hostname != q.Get("host")):
			case !since.IsZero() && v.Updated.Before(since):
			default:
				out = append(out, v)
			}
		}
		sort.Slice(out, func(i, j int) bool {
			if !out[i].Created.Equal(out[j].Created) {
				return out[i].Created.After(out[j].Created)
			}
			return out[i].ID > out[j].ID
		})
		out, ok := afterMarker(out, q.Get("marker"), func(v *vm) string { return v.ID })
		if !ok {
			novaError(w, http.StatusBadRequest, "marker ["+q.Get("marker")+"] not found")
			return
		}
		more := len(out) > limit
		if len(out) > limit {
			out = out[:limit]
		}
		list := make([]map[string]any, 0, len(out))
		for _, v := range out {
			if detail {
				list = append(list, c.serverBody(r, v, mv, tok.IsAdmin()))
			} else {
				list = append(list, map[string]any{"id": v.ID, "name": v.Name, "links": c.serverLinks(r, v.ID)})
			}
		}
		body := map[string]any{"servers": list}
		if (more || (limit > 0 && len(out) == limit && q.Get("limit") != "")) && len(out) > 0 {
			next := *r.URL
			nq := next.Query()
			nq.Set("marker", out[len(out)-1].ID)
			nq.Set("limit", strconv.Itoa(limit))
			next.RawQuery = nq.Encode()
			body["servers_links"] = []map[string]string{{"rel": "next", "href": c.base(r) + next.Path + "?" + next.RawQuery}}
		}
		writeJSON(w, http.StatusOK, body)
	}
}

func (c *Cloud) showServer(w http.ResponseWriter, r *http.Request) {
	c.withServer(w, r, func(v *vm) {
		writeJSON(w, http.StatusOK, map[string]any{"server": c.serverBody(r, v, microOf(r), tokenOf(r).IsAdmin())})
	})
}

func (c *Cloud) updateServer(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Server *struct {
			Name *string `json:"name"`
		} `json:"server"`
	}
	if err := decodeBody(r, &req); err != nil || req.Server == nil {
		novaError(w, http.StatusBadRequest, "Invalid input for field/attribute server.")
		return
	}
	c.withServer(w, r, func(v *vm) {
		if n := req.Server.Name; n != nil {
			if strings.TrimSpace(*n) == "" || len(*n) > 255 {
				novaError(w, http.StatusBadRequest, "Invalid input for field/attribute name.")
				return
			}
			v.Name = *n
			v.Updated = c.clock.Now().UTC()
			c.saveVMLocked(v)
		}
		writeJSON(w, http.StatusOK, map[string]any{"server": c.serverBody(r, v, microOf(r), tokenOf(r).IsAdmin())})
	})
}

func (c *Cloud) deleteServer(w http.ResponseWriter, r *http.Request) {
	c.withServer(w, r, func(v *vm) {
		c.deleteLocked(v)
		w.WriteHeader(http.StatusNoContent)
	})
}

// DeleteServer deletes a server as Nova's DELETE does (for tests and tools).
func (c *Cloud) DeleteServer(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.vms[id]
	if v == nil {
		return errs.NotFoundf("server %s not found", id)
	}
	c.deleteLocked(v)
	return nil
}

func conflict(w http.ResponseWriter, action string, v *vm) {
	novaError(w, http.StatusConflict, fmt.Sprintf("Cannot '%s' instance %s while it is in vm_state %s", action, v.ID, v.VMState))
}

func (c *Cloud) serverAction(w http.ResponseWriter, r *http.Request) {
	var req map[string]json.RawMessage
	if err := decodeBody(r, &req); err != nil {
		novaErr(w, err)
		return
	}
	if len(req) != 1 {
		novaError(w, http.StatusBadRequest, "Malformed request body: one action expected")
		return
	}
	c.withServer(w, r, func(v *vm) {
		for action, raw := range req {
			switch action {
			case "reboot":
				var body struct {
					Type string `json:"type"`
				}
				if json.Unmarshal(raw, &body) != nil || (body.Type != "SOFT" && body.Type != "HARD") {
					novaError(w, http.StatusBadRequest, "Invalid input for field/attribute type. Value must be one of SOFT, HARD.")
					return
				}
				hard := body.Type == "HARD"
				ok := v.Status == StatusActive || (hard && (v.Status == StatusShutoff || v.Status == StatusError || v.Status == StatusReboot))
				if !ok || v.cn == nil {
					conflict(w, "reboot", v)
					return
				}
				c.stopAgentLocked(v)
				v.Fault = nil
				if hard {
					c.transitionLocked(v, StatusHardReboot, "reboot_started_hard", v.VMState, v.Power)
				} else {
					c.transitionLocked(v, StatusReboot, "reboot_started", v.VMState, v.Power)
				}
				c.scheduleActiveLocked(v, c.latency.sample())
				w.WriteHeader(http.StatusAccepted)
			case "rebuild":
				var body struct {
					ImageRef string            `json:"imageRef"`
					Name     *string           `json:"name"`
					Metadata map[string]string `json:"metadata"`
					UserData *string           `json:"user_data"`
				}
				if err := json.Unmarshal(raw, &body); err != nil || body.ImageRef == "" {
					novaError(w, http.StatusBadRequest, "Invalid input for field/attribute imageRef. 'imageRef' is a required property")
					return
				}
				if v.cn == nil || (v.Status != StatusActive && v.Status != StatusShutoff && v.Status != StatusError) {
					conflict(w, "rebuild", v)
					return
				}
				if body.UserData != nil {
					if _, err := base64.StdEncoding.DecodeString(*body.UserData); err != nil {
						novaError(w, http.StatusBadRequest, "User data needs to be valid base 64.")
						return
					}
					v.UserData = *body.UserData
					v.NodeID = ""
					if ud, err := ParseUserData(v.UserData); err == nil && ud != nil {
						v.NodeID = ud.NodeID
					}
				}
				c.stopAgentLocked(v)
				// A rebuilt server has a fresh disk: its agent starts from nothing.
				if err := os.RemoveAll(c.vmDir(v)); err != nil {
					c.log.Warn("mockcn: wipe VM disk", "vm", v.ID, "err", err)
				}
				v.Image = lastSegment(body.ImageRef)
				if body.Name != nil && *body.Name != "" {
					v.Name = *body.Name
				}
				if body.Metadata != nil {
					v.Metadata = body.Metadata
				}
				v.Fault = nil
				c.transitionLocked(v, StatusRebuild, "rebuilding", v.VMState, v.Power)
				c.scheduleActiveLocked(v, c.latency.sample())
				writeJSON(w, http.StatusAccepted, map[string]any{"server": c.serverBody(r, v, microOf(r), tokenOf(r).IsAdmin())})
			case "os-stop":
				if v.Status != StatusActive {
					conflict(w, "stop", v)
					return
				}
				c.stopAgentLocked(v)
				c.transitionLocked(v, StatusShutoff, "", "stopped", powerShutdown)
				w.WriteHeader(http.StatusAccepted)
			case "os-start":
				if v.Status != StatusShutoff || v.cn == nil {
					conflict(w, "start", v)
					return
				}
				c.transitionLocked(v, StatusShutoff, "powering-on", "stopped", powerShutdown)
				c.scheduleActiveLocked(v, c.latency.sample())
				w.WriteHeader(http.StatusAccepted)
			case "forceDelete":
				c.deleteLocked(v)
				w.WriteHeader(http.StatusAccepted)
			default:
				novaError(w, http.StatusBadRequest, "There is no such action: "+action)
			}
		}
	})
}

func (c *Cloud) getMetadata(w http.ResponseWriter, r *http.Request) {
	c.withServer(w, r, func(v *vm) {
		md := v.Metadata
		if md == nil {
			md = map[string]string{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"metadata": md})
	})
}

func (c *Cloud) setMetadata(replace bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Metadata map[string]string `json:"metadata"`
		}
		if err := decodeBody(r, &req); err != nil || req.Metadata == nil {
			novaError(w, http.StatusBadRequest, "Malformed request body: metadata must be an object of strings")
			return
		}
		c.withServer(w, r, func(v *vm) {
			if replace || v.Metadata == nil {
				v.Metadata = map[string]string{}
			}
			for k, val := range req.Metadata {
				v.Metadata[k] = val
			}
			if len(v.Metadata) > 128 {
				novaError(w, http.StatusForbidden, "Quota exceeded for metadata_items")
				return
			}
			v.Updated = c.clock.Now().UTC()
			c.saveVMLocked(v)
			writeJSON(w, http.StatusOK, map[string]any{"metadata": v.Metadata})
		})
	}
}

func (c *Cloud) getMetadatum(w http.ResponseWriter, r *http.Request) {
	c.withServer(w, r, func(v *vm) {
		val, ok := v.Metadata[r.PathValue("key")]
		if !ok {
			novaError(w, http.StatusNotFound, "Metadata item was not found")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"meta": map[string]string{r.PathValue("key"): val}})
	})
}

func (c *Cloud) putMetadatum(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Meta map[string]string `json:"meta"`
	}
	key := r.PathValue("key")
	if err := decodeBody(r, &req); err != nil || len(req.Meta) != 1 {
		novaError(w, http.StatusBadRequest, "Malformed request body: one meta item expected")
		return
	}
	val, ok := req.Meta[key]
	if !ok {
		novaError(w, http.StatusBadRequest, "Request body and URI mismatch")
		return
	}
	c.withServer(w, r, func(v *vm) {
		if v.Metadata == nil {
			v.Metadata = map[string]string{}
		}
		v.Metadata[key] = val
		v.Updated = c.clock.Now().UTC()
		c.saveVMLocked(v)
		writeJSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: val}})
	})
}

func (c *Cloud) deleteMetadatum(w http.ResponseWriter, r *http.Request) {
	c.withServer(w, r, func(v *vm) {
		if _, ok := v.Metadata[r.PathValue("key")]; !ok {
			novaError(w, http.StatusNotFound, "Metadata item was not found")
			return
		}
		delete(v.Metadata, r.PathValue("key"))
		v.Updated = c.clock.Now().UTC()
		c.saveVMLocked(v)
		w.WriteHeader(http.StatusNoContent)
	})
}

// --- flavors -------------------------------------------------------------------------

func (c *Cloud) listFlavors(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		minRAM, _ := strconv.Atoi(q.Get("minRam"))
		minDisk, _ := strconv.Atoi(q.Get("minDisk"))
		fs := make([]*Flavor, 0, len(c.flist))
		for _, f := range c.flist {
			if f.RAMMB >= minRAM && f.DiskGB >= minDisk {
				fs = append(fs, f)
			}
		}
		key, desc := q.Get("sort_key"), q.Get("sort_dir") == "desc"
		sort.SliceStable(fs, func(i, j int) bool {
			var less bool
			switch key {
			case "name":
				less = fs[i].Name < fs[j].Name
			case "memory_mb", "ram":
				less = fs[i].RAMMB < fs[j].RAMMB
			case "vcpus":
				less = fs[i].VCPUs < fs[j].VCPUs
			case "root_gb", "disk":
				less = fs[i].DiskGB < fs[j].DiskGB
			default:
				less = fs[i].ID < fs[j].ID
			}
			if desc {
				return !less
			}
			return less
		})
		fs, ok := afterMarker(fs, q.Get("marker"), func(f *Flavor) string { return f.ID })
		if !ok {
			novaError(w, http.StatusBadRequest, "marker ["+q.Get("marker")+"] not found")
			return
		}
		more := false
		if l, err := strconv.Atoi(q.Get("limit")); err == nil && l >= 0 && l < len(fs) {
			fs, more = fs[:l], true
		}
		list := make([]map[string]any, 0, len(fs))
		for _, f := range fs {
			list = append(list, c.flavorBody(r, f, microOf(r), detail))
		}
		body := map[string]any{"flavors": list}
		if more && len(fs) > 0 {
			next := *r.URL
			nq := next.Query()
			nq.Set("marker", fs[len(fs)-1].ID)
			next.RawQuery = nq.Encode()
			body["flavors_links"] = []map[string]string{{"rel": "next", "href": c.base(r) + next.Path + "?" + next.RawQuery}}
		}
		writeJSON(w, http.StatusOK, body)
	}
}

func (c *Cloud) showFlavor(w http.ResponseWriter, r *http.Request) {
	f := c.flavors[r.PathValue("id")]
	if f == nil {
		novaError(w, http.StatusNotFound, "Flavor "+r.PathValue("id")+" could not be found.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"flavor": c.flavorBody(r, f, microOf(r), true)})
}

func (c *Cloud) flavorExtraSpecs(w http.ResponseWriter, r *http.Request) {
	if c.flavors[r.PathValue("id")] == nil {
		novaError(w, http.StatusNotFound, "Flavor "+r.PathValue("id")+" could not be found.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"extra_specs": map[string]string{}})
}

// --- availability zones, hypervisors, aggregates ---------------------------------------

func (c *Cloud) listAZs(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if detail && !tokenOf(r).IsAdmin() {
			forbidden(w, "os_compute_api:os-availability-zone:detail")
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		now := c.clock.Now().UTC().Format(usgTime)
		var zones []map[string]any
		for _, az := range c.azs {
			avail := false
			hosts := map[string]any{}
			for _, x := range c.sortedCNsLocked() {
				if x.AZ != az {
					continue
				}
				if !x.down {
					avail = true
				}
				hosts[x.Hostname] = map[string]any{"nova-compute": map[string]any{"available": !x.down, "active": !x.disabled, "updated_at": now}}
			}
			z := map[string]any{"zoneName": az, "zoneState": map[string]bool{"available": avail}, "hosts": nil}
			if detail {
				z["hosts"] = hosts
			}
			zones = append(zones, z)
		}
		if detail {
			svc := map[string]any{"available": true, "active": true, "updated_at": now}
			zones = append(zones, map[string]any{"zoneName": "internal", "zoneState": map[string]bool{"available": true},
				"hosts": map[string]any{"mockcn-controller": map[string]any{"nova-conductor": svc, "nova-scheduler": svc}}})
		}
		writeJSON(w, http.StatusOK, map[string]any{"availabilityZoneInfo": zones})
	}
}

func (c *Cloud) hypervisorID(x *cn, mv int) any {
	if mv >= 53 {
		return x.ID
	}
	return x.Seq
}

func (c *Cloud) hypervisorBody(x *cn, mv int, detail, servers bool) map[string]any {
	state := "up"
	if x.down {
		state = "down"
	}
	status := "enabled"
	if x.disabled {
		status = "disabled"
	}
	b := map[string]any{"id": c.hypervisorID(x, mv), "hypervisor_hostname": x.Hostname, "state": state, "status": status}
	if detail {
		cpu, _ := json.Marshal(map[string]any{"arch": "x86_64", "model": "Virtual", "vendor": "mockcn", "features": []string{},
			"topology": map[string]int{"cells": 1, "sockets": 1, "cores": x.CPUs, "threads": 1}})
		b["cpu_info"] = string(cpu)
		b["current_workload"] = 0
		b["disk_available_least"] = x.DiskGB - x.usedDisk
		b["host_ip"] = x.AdminIP
		b["free_disk_gb"] = x.DiskGB - x.usedDisk
		b["free_ram_mb"] = x.RAMMB - x.usedRAM
		b["hypervisor_type"] = "QEMU"
		b["hypervisor_version"] = 8002000
		b["local_gb"], b["local_gb_used"] = x.DiskGB, x.usedDisk
		b["memory_mb"], b["memory_mb_used"] = x.RAMMB, x.usedRAM
		b["running_vms"] = len(x.vms)
		b["vcpus"], b["vcpus_used"] = x.CPUs, x.usedCPU
		b["service"] = map[string]any{"host": x.Hostname, "id": c.hypervisorID(x, mv), "disabled_reason": nil}
	}
	if servers {
		list := []map[string]string{}
		for _, v := range x.vms {
			list = append(list, map[string]string{"name": fmt.Sprintf("instance-%08x", ipSeqOf(v.IP)), "uuid": v.ID})
		}
		sort.Slice(list, func(i, j int) bool { return list[i]["uuid"] < list[j]["uuid"] })
		b["servers"] = list
	}
	return b
}

func (c *Cloud) listHypervisors(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !tokenOf(r).IsAdmin() {
			forbidden(w, "os_compute_api:os-hypervisors:list")
			return
		}
		q, mv := r.URL.Query(), microOf(r)
		pattern := q.Get("hypervisor_hostname_pattern")
		servers := q.Has("with_servers") && truthy(q.Get("with_servers"))
		c.mu.Lock()
		defer c.mu.Unlock()
		xs := c.sortedCNsLocked()
		xs, ok := afterMarker(xs, q.Get("marker"), func(x *cn) string { return fmt.Sprint(c.hypervisorID(x, mv)) })
		if !ok {
			novaError(w, http.StatusBadRequest, "marker ["+q.Get("marker")+"] not found")
			return
		}
		list := []map[string]any{}
		limit, lerr := strconv.Atoi(q.Get("limit"))
		for _, x := range xs {
			if pattern != "" && !strings.Contains(x.Hostname, pattern) {
				continue
			}
			if lerr == nil && len(list) >= limit {
				break
			}
			list = append(list, c.hypervisorBody(x, mv, detail, servers))
		}
		if pattern != "" && len(list) == 0 {
			novaError(w, http.StatusNotFound, "No hypervisor matching '"+pattern+"' could be found.")
			return
		}
		body := map[string]any{"hypervisors": list}
		if lerr == nil && len(list) == limit && limit > 0 {
			next := *r.URL
			nq := next.Query()
			nq.Set("marker", fmt.Sprint(list[len(list)-1]["id"]))
			next.RawQuery = nq.Encode()
			body["hypervisors_links"] = []map[string]string{{"rel": "next", "href": c.base(r) + next.Path + "?" + next.RawQuery}}
		}
		writeJSON(w, http.StatusOK, body)
	}
}

func (c *Cloud) showHypervisor(w http.ResponseWriter, r *http.Request) {
	if !tokenOf(r).IsAdmin() {
		forbidden(w, "os_compute_api:os-hypervisors:show")
		return
	}
	id, mv := r.PathValue("id"), microOf(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, x := range c.cns {
		if x.ID == id || strconv.Itoa(x.Seq) == id {
			servers := mv < 53 || (r.URL.Query().Has("with_servers") && truthy(r.URL.Query().Get("with_servers")))
			writeJSON(w, http.StatusOK, map[string]any{"hypervisor": c.hypervisorBody(x, mv, true, servers && mv >= 53)})
			return
		}
	}
	novaError(w, http.StatusNotFound, "Hypervisor with ID "+id+" could not be found.")
}

func (c *Cloud) hypervisorStats(w http.ResponseWriter, r *http.Request) {
	if !tokenOf(r).IsAdmin() {
		forbidden(w, "os_compute_api:os-hypervisors:statistics")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := map[string]int{}
	for _, x := range c.cns {
		s["count"]++
		s["vcpus"] += x.CPUs
		s["vcpus_used"] += x.usedCPU
		s["memory_mb"] += x.RAMMB
		s["memory_mb_used"] += x.usedRAM
		s["free_ram_mb"] += x.RAMMB - x.usedRAM
		s["local_gb"] += x.DiskGB
		s["local_gb_used"] += x.usedDisk
		s["free_disk_gb"] += x.DiskGB - x.usedDisk
		s["disk_available_least"] += x.DiskGB - x.usedDisk
		s["running_vms"] += len(x.vms)
	}
	s["current_workload"] = 0
	writeJSON(w, http.StatusOK, map[string]any{"hypervisor_statistics": s})
}

type aggregate struct {
	id         int
	az, rack   string
	hosts      []string
	oldestBoot int64
}

// aggregatesLocked publishes every rack as a host aggregate, numbered in name order.
func (c *Cloud) aggregatesLocked() []aggregate {
	byKey := map[string]*aggregate{}
	for _, x := range c.sortedCNsLocked() {
		k := x.AZ + "/" + x.Rack
		a := byKey[k]
		if a == nil {
			a = &aggregate{az: x.AZ, rack: x.Rack, oldestBoot: x.Boot}
			byKey[k] = a
		}
		a.hosts = append(a.hosts, x.Hostname)
		a.oldestBoot = min(a.oldestBoot, x.Boot)
	}
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]aggregate, len(keys))
	for i, k := range keys {
		out[i] = *byKey[k]
		out[i].id = i + 1
	}
	return out
}

func aggregateBody(a aggregate) map[string]any {
	created := time.Unix(a.oldestBoot, 0).UTC().Format(usgTime)
	return map[string]any{
		"id": a.id, "uuid": uuid.NewSHA1(uuid.NameSpaceOID, []byte("aggregate:"+a.az+"/"+a.rack)).String(),
		"name": a.rack, "availability_zone": a.az, "hosts": a.hosts,
		"metadata":   map[string]string{"availability_zone": a.az, "fault_domain": a.rack},
		"created_at": created, "updated_at": nil, "deleted_at": nil, "deleted": false,
	}
}

func (c *Cloud) listAggregates(w http.ResponseWriter, r *http.Request) {
	if !tokenOf(r).IsAdmin() {
		forbidden(w, "os_compute_api:os-aggregates:index")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	list := []map[string]any{}
	for _, a := range c.aggregatesLocked() {
		list = append(list, aggregateBody(a))
	}
	writeJSON(w, http.StatusOK, map[string]any{"aggregates": list})
}

func (c *Cloud) showAggregate(w http.ResponseWriter, r *http.Request) {
	if !tokenOf(r).IsAdmin() {
		forbidden(w, "os_compute_api:os-aggregates:show")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range c.aggregatesLocked() {
		if strconv.Itoa(a.id) == r.PathValue("id") {
			writeJSON(w, http.StatusOK, map[string]any{"aggregate": aggregateBody(a)})
			return
		}
	}
	novaError(w, http.StatusNotFound, "Aggregate "+r.PathValue("id")+" could not be found.")
}

// --- server groups ---------------------------------------------------------------------

func (c *Cloud) groupBody(g *group, mv int) map[string]any {
	members := append([]string{}, g.Members...)
	b := map[string]any{"id": g.ID, "name": g.Name, "members": members, "project_id": g.Project, "user_id": g.User}
	if mv >= 64 {
		b["policy"] = g.Policy
		rules := map[string]any{}
		if g.MaxPer > 0 {
			rules["max_server_per_host"] = g.MaxPer
		}
		b["rules"] = rules
	} else {
		b["policies"] = []string{g.Policy}
		b["metadata"] = map[string]string{}
	}
	return b
}

func (c *Cloud) listGroups(w http.ResponseWriter, r *http.Request) {
	tok, q := tokenOf(r), r.URL.Query()
	all := tok.IsAdmin() && q.Has("all_projects") && truthy(q.Get("all_projects"))
	c.mu.Lock()
	defer c.mu.Unlock()
	gs := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		if all || g.Project == tok.ProjectID {
			gs = append(gs, g)
		}
	}
	sort.Slice(gs, func(i, j int) bool {
		if !gs[i].Created.Equal(gs[j].Created) {
			return gs[i].Created.Before(gs[j].Created)
		}
		return gs[i].ID < gs[j].ID
	})
	if off, err := strconv.Atoi(q.Get("offset")); err == nil && off > 0 {
		gs = gs[min(off, len(gs)):]
	}
	if l, err := strconv.Atoi(q.Get("limit")); err == nil && l >= 0 && l < len(gs) {
		gs = gs[:l]
	}
	list := make([]map[string]any, 0, len(gs))
	for _, g := range gs {
		list = append(list, c.groupBody(g, microOf(r)))
	}
	writeJSON(w, http.StatusOK, map[string]any{"server_groups": list})
}

func (c *Cloud) createGroup(w http.ResponseWriter, r *http.Request) {
	tok, mv := tokenOf(r), microOf(r)
	var req struct {
		Group *struct {
			Name     string   `json:"name"`
			Policies []string `json:"policies"`
			Policy   string   `json:"policy"`
			Rules    *struct {
				MaxServerPerHost int `json:"max_server_per_host"`
			} `json:"rules"`
		} `json:"server_group"`
	}
	if err := decodeBody(r, &req); err != nil {
		novaErr(w, err)
		return
	}
	g := req.Group
	if g == nil || strings.TrimSpace(g.Name) == "" || len(g.Name) > 255 {
		novaError(w, http.StatusBadRequest, "Invalid input for field/attribute name. 'name' is a required property")
		return
	}
	policy := g.Policy
	if mv < 64 {
		if len(g.Policies) != 1 || g.Policy != "" || g.Rules != nil {
			novaError(w, http.StatusBadRequest, "Invalid input for field/attribute policies. Exactly one policy is required")
			return
		}
		policy = g.Policies[0]
	} else if len(g.Policies) > 0 {
		novaError(w, http.StatusBadRequest, "Additional properties are not allowed ('policies' was unexpected)")
		return
	}
	switch policy {
	case PolicyAffinity, PolicyAntiAffinity, PolicySoftAffinity, PolicySoftAntiAffinity:
	default:
		novaError(w, http.StatusBadRequest, fmt.Sprintf("Invalid input for field/attribute policy. Value: %s. '%s' is not one of ['anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity']", policy, policy))
		return
	}
	maxPer := 0
	if g.Rules != nil {
		if policy != PolicyAntiAffinity || g.Rules.MaxServerPerHost < 1 {
			novaError(w, http.StatusBadRequest, "Invalid input for field/attribute rules: max_server_per_host is for anti-affinity and must be >= 1")
			return
		}
		maxPer = g.Rules.MaxServerPerHost
	}
	x := &group{ID: uuid.NewString(), Name: g.Name, Policy: policy, MaxPer: maxPer, Members: []string{}, Project: tok.ProjectID, User: tok.UserID, Created: c.clock.Now().UTC()}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groups[x.ID] = x
	c.saveGroupsLocked()
	writeJSON(w, http.StatusOK, map[string]any{"server_group": c.groupBody(x, mv)})
}

func (c *Cloud) groupFor(w http.ResponseWriter, r *http.Request) *group {
	g := c.groups[r.PathValue("id")]
	if t := tokenOf(r); g == nil || (!t.IsAdmin() && g.Project != t.ProjectID) {
		novaError(w, http.StatusNotFound, "Instance group "+r.PathValue("id")+" could not be found.")
		return nil
	}
	return g
}

func (c *Cloud) showGroup(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.groupFor(w, r); g != nil {
		writeJSON(w, http.StatusOK, map[string]any{"server_group": c.groupBody(g, microOf(r))})
	}
}

func (c *Cloud) deleteGroup(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g := c.groupFor(w, r); g != nil {
		delete(c.groups, g.ID)
		for _, id := range g.Members {
			if v := c.vms[id]; v != nil && v.Group == g.ID {
				v.Group = ""
				c.saveVMLocked(v)
			}
		}
		c.saveGroupsLocked()
		w.WriteHeader(http.StatusNoContent)
	}
}

// --- limits and quotas -------------------------------------------------------------------

func unlimited(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

func (c *Cloud) limits(w http.ResponseWriter, r *http.Request) {
	tok := tokenOf(r)
	project := tok.ProjectID
	if p := r.URL.Query().Get("tenant_id"); p != "" && tok.IsAdmin() {
		project = p
	}
	c.mu.Lock()
	n, cores, ram := c.usageLocked(project)
	groups := 0
	for _, g := range c.groups {
		if g.Project == project {
			groups++
		}
	}
	c.mu.Unlock()
	q := c.cfg.Quota
	writeJSON(w, http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": map[string]int{
		"maxTotalInstances": unlimited(q.Instances), "totalInstancesUsed": n,
		"maxTotalCores": unlimited(q.Cores), "totalCoresUsed": cores,
		"maxTotalRAMSize": unlimited(q.RAMMB), "totalRAMUsed": ram,
		"maxServerGroups": -1, "totalServerGroupsUsed": groups, "maxServerGroupMembers": -1,
		"maxServerMeta": 128, "maxImageMeta": 128, "maxPersonality": 5, "maxPersonalitySize": 10240,
		"maxTotalKeypairs": 100, "maxSecurityGroups": -1, "maxSecurityGroupRules": -1,
		"maxTotalFloatingIps": -1, "totalFloatingIpsUsed": 0, "totalSecurityGroupsUsed": 0,
	}}})
}

func (c *Cloud) quotaSet(w http.ResponseWriter, r *http.Request) {
	tok, project := tokenOf(r), r.PathValue("project")
	if !tok.IsAdmin() && project != tok.ProjectID {
		forbidden(w, "os_compute_api:os-quota-sets:show")
		return
	}
	q := c.cfg.Quota
	writeJSON(w, http.StatusOK, map[string]any{"quota_set": map[string]any{
		"id": project, "instances": unlimited(q.Instances), "cores": unlimited(q.Cores), "ram": unlimited(q.RAMMB),
		"server_groups": -1, "server_group_members": -1, "metadata_items": 128, "key_pairs": 100,
		"injected_files": 5, "injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
		"fixed_ips": -1, "floating_ips": -1, "security_groups": -1, "security_group_rules": -1,
	}})
}

// afterMarker returns the items after the one whose id is marker (Nova's paging); ok is
// false when no item has that id. An empty marker is the start.
func afterMarker[T any](items []T, marker string, id func(T) string) (_ []T, ok bool) {
	if marker == "" {
		return items, true
	}
	for i, x := range items {
		if id(x) == marker {
			return items[i+1:], true
		}
	}
	return nil, false
}
