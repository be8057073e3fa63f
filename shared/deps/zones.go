package deps

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/straas/straas/shared/cloud"
	"github.com/straas/straas/shared/errs"
)

// Zones in embedded mode (seed 000 §4.5: one straas, several availability zones). Every
// zone of Config.AZs is served by the in-process mock cloud; Config.Zones adds zones, or
// takes zones over, served by other clouds: another mock cloud (`mockcn`), or any
// OpenStack. The control plane reaches each zone's Keystone and Nova with the zone's
// credentials (Clouds), so one topology's servers land in its zone's cloud.

// ZoneEnvPassword is the environment variable holding the password of zone z's cloud
// user when --zone does not give one: STRAAS_ZONE_PASSWORD_<Z> (upper case, - and . as _).
func ZoneEnvPassword(zone string) string {
	return "STRAAS_ZONE_PASSWORD_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(zone))
}

var zoneName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// ParseZone reads a --zone flag: NAME=AUTH_URL[,user=U][,password=P][,project=P]
// [,domain=D][,region=R]. The user defaults to admin and the project to the user; the
// password defaults to $STRAAS_ZONE_PASSWORD_<NAME>, then to the user name (the mock
// cloud's users have their name as password).
func ParseZone(spec string, getenv func(string) string) (string, cloud.Options, error) {
	name, rest, ok := strings.Cut(spec, "=")
	name = strings.TrimSpace(name)
	if !ok || !zoneName.MatchString(name) {
		return "", cloud.Options{}, errs.Invalidf("zone", "%q: want NAME=AUTH_URL[,user=U][,password=P][,project=P][,domain=D][,region=R]", spec)
	}
	parts := strings.Split(rest, ",")
	o := cloud.Options{AuthURL: strings.TrimSpace(parts[0])}
	if u, err := url.Parse(o.AuthURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", cloud.Options{}, errs.Invalidf("zone", "zone %s: %q is not a Keystone URL (http[s]://host[:port]/identity/v3)", name, o.AuthURL)
	}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return "", cloud.Options{}, errs.Invalidf("zone", "zone %s: %q is not key=value", name, p)
		}
		switch k {
		case "user", "username":
			o.Username = v
		case "password":
			o.Password = v
		case "project":
			o.Project = v
		case "domain":
			o.Domain = v
		case "region":
			o.Region = v
		default:
			return "", cloud.Options{}, errs.Invalidf("zone", "zone %s: unknown key %q (user, password, project, domain, region)", name, k)
		}
	}
	fillZone(name, &o, getenv)
	return name, o, nil
}

func fillZone(name string, o *cloud.Options, getenv func(string) string) {
	if o.Username == "" {
		o.Username = "admin"
	}
	if o.Project == "" {
		o.Project = o.Username
	}
	if o.Password == "" && getenv != nil {
		o.Password = getenv(ZoneEnvPassword(name))
	}
	if o.Password == "" {
		o.Password = o.Username
	}
}

// zoneFile is one zone of a zones file.
type zoneFile struct {
	AuthURL  string `json:"auth_url"`
	Username string `json:"username"`
	Password string `json:"password"`
	Project  string `json:"project"`
	Domain   string `json:"domain"`
	Region   string `json:"region"`
}

// LoadZones reads a zones file: a JSON object of zone name -> {auth_url, username,
// password, project, domain, region}, the shape of STRAAS_CLOUDS in the AWS deployment
// plus a password (or $STRAAS_ZONE_PASSWORD_<NAME>).
func LoadZones(path string, getenv func(string) string) (map[string]cloud.Options, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("zones file: %w", err)
	}
	var m map[string]zoneFile
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, errs.Invalidf("zones", "%s: want {\"<zone>\": {\"auth_url\": ..., \"username\": ..., \"password\": ..., \"project\": ...}}: %v", path, err)
	}
	out := make(map[string]cloud.Options, len(m))
	names := make([]string, 0, len(m))
	for z := range m {
		names = append(names, z)
	}
	sort.Strings(names)
	for _, z := range names {
		f := m[z]
		spec := z + "=" + f.AuthURL
		_, o, err := ParseZone(spec, getenv)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if f.Username != "" {
			o.Username = f.Username
			if f.Project == "" {
				o.Project = f.Username
			}
		}
		if f.Project != "" {
			o.Project = f.Project
		}
		o.Password, o.Domain, o.Region = f.Password, f.Domain, f.Region
		fillZone(z, &o, getenv)
		out[z] = o
	}
	return out, nil
}

// zoneMap is what the control plane's Clouds serve: every mock zone through mock, then
// the configured zones (which win over a mock zone of the same name).
func zoneMap(mock cloud.Options, mockZones []string, other map[string]cloud.Options) map[string]cloud.Options {
	out := make(map[string]cloud.Options, len(mockZones)+len(other))
	for _, z := range mockZones {
		out[z] = mock
	}
	for z, o := range other {
		out[z] = o
	}
	return out
}
