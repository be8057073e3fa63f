package deps

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/straas/straas/shared/cloud"
	"github.com/straas/straas/shared/errs"
	"github.com/straas/straas/shared/queue"
	"github.com/straas/straas/statemachines"
)

// Environment variables of the Lambda functions. template.yaml sets them; the AWS SDK's
// own (AWS_REGION, AWS_ENDPOINT_URL, credentials) are read by the SDK.
const (
	EnvTable         = "STRAAS_TABLE"                // DynamoDB table (required)
	EnvStatusQueue   = "STRAAS_STATUS_QUEUE"         // status queue name (default queue.Status)
	EnvBucket        = "STRAAS_BUCKET"               // blob bucket
	EnvAlertTopic    = "STRAAS_ALERT_TOPIC_ARN"      // SNS topic of alerts ("" logs them)
	EnvMachinePrefix = "STRAAS_STATE_MACHINE_PREFIX" // state machines are <prefix><name>
	// EnvMachineARNPrefix, when set, is the ARN of every state machine but its name's
	// last part (arn:aws:states:<region>:<account>:stateMachine:<prefix>): the functions
	// then start workflows without listing the machines (states:ListStateMachines).
	EnvMachineARNPrefix = "STRAAS_STATE_MACHINE_ARN_PREFIX"

	EnvKeystoneURL     = "STRAAS_KEYSTONE_URL"     // Keystone v3 that validates API tokens (required)
	EnvKeystoneUser    = "STRAAS_KEYSTONE_USER"    // service user allowed to validate tokens
	EnvKeystoneProject = "STRAAS_KEYSTONE_PROJECT" // its project
	EnvKeystoneDomain  = "STRAAS_KEYSTONE_DOMAIN"  // default "Default"
	EnvAdminProject    = "STRAAS_ADMIN_PROJECT"    // default "admin"

	// The OpenStack cloud: STRAAS_CLOUD_ZONES lists the availability zones served by the
	// cloud of STRAAS_CLOUD_AUTH_URL (default: the Keystone URL) with the cloud user;
	// STRAAS_CLOUDS (JSON, zone -> {auth_url, username, project, domain, region})
	// adds or overrides zones served by other clouds.
	EnvCloudZones   = "STRAAS_CLOUD_ZONES"
	EnvCloudAuthURL = "STRAAS_CLOUD_AUTH_URL"
	EnvCloudUser    = "STRAAS_CLOUD_USER"    // default: the Keystone user
	EnvCloudProject = "STRAAS_CLOUD_PROJECT" // default: the Keystone project
	EnvCloudDomain  = "STRAAS_CLOUD_DOMAIN"
	EnvCloudRegion  = "STRAAS_CLOUD_REGION"
	EnvClouds       = "STRAAS_CLOUDS"

	EnvConfigRepo  = "STRAAS_CONFIG_REPO_URL"  // remote config repo (required)
	EnvScriptsRepo = "STRAAS_SCRIPTS_REPO_URL" // remote script repo (required)
	EnvGitUser     = "STRAAS_GIT_USERNAME"     // default "straas"
	EnvGitDir      = "STRAAS_GIT_DIR"          // local mirrors (default /tmp/straas-git)

	// Credentials: STRAAS_SECRET_ARN names a Secrets Manager secret, read on first use;
	// STRAAS_SECRET holds the same JSON inline (local runs only). See Secret.
	EnvSecretARN = "STRAAS_SECRET_ARN"
	EnvSecret    = "STRAAS_SECRET"

	EnvHeartbeatSeconds = "STRAAS_HEARTBEAT_SECONDS" // agents' heartbeat interval (default 10)
	EnvStageTimeout     = "STRAAS_STAGE_TIMEOUT"     // Go duration (default 15m)
	EnvSpawnTimeout     = "STRAAS_SPAWN_TIMEOUT"     // default 10m: keep below the Spawn function's timeout
	EnvStaleAfter       = "STRAAS_STALE_AFTER"       // default 3m
	EnvLeaseRenewal     = "STRAAS_LEASE_RENEWAL"     // agents' lease period (user data lease_seconds); default 1m
	EnvLogLevel         = "STRAAS_LOG_LEVEL"         // debug, info (default), warn, error
)

// StaleMarginBeats is how many heartbeat intervals beyond the lease renewal period the
// checker's stale threshold must leave (ParseAWSConfig).
const StaleMarginBeats = 3

// DefaultGitDir is where Lambda keeps its git mirrors: /tmp is its only writable place.
const DefaultGitDir = "/tmp/straas-git"

// AWSConfig is what the Lambda functions are configured with: names of the AWS
// resources, the identity service, the clouds per zone and the git remotes. It holds
// no credentials: those are in the secret, read on first use.
type AWSConfig struct {
	Table         string
	StatusQueue   string
	Bucket        string
	AlertTopicARN string
	MachinePrefix string
	// MachineARNPrefix + a machine's name is its ARN ("" finds machines by listing).
	MachineARNPrefix string

	Keystone KeystoneConfig
	Clouds   map[string]cloud.Options // by zone; passwords come from the secret
	Git      GitConfig

	SecretARN    string
	SecretInline string // the secret's JSON itself (local runs); SecretARN wins

	// CMDBURL is the CMDB endpoint of the CMS routes (EnvCMDBURL; its token is the
	// secret's cmdb_token); "" keeps the models in the table.
	CMDBURL string

	HeartbeatSeconds int
	StageTimeout     time.Duration
	SpawnTimeout     time.Duration
	StaleAfter       time.Duration
	LeaseRenewal     time.Duration
	LogLevel         string
}

// KeystoneConfig names the Keystone that validates API tokens and its service user.
type KeystoneConfig struct {
	URL          string
	Username     string
	Project      string
	Domain       string
	AdminProject string
}

// GitConfig names the remote config and script repositories.
type GitConfig struct {
	ConfigURL  string
	ScriptsURL string
	Username   string
	Dir        string
}

// Secret is the JSON document of the credentials secret:
//
//	{"keystone_password": "...", "git_token": "...", "cloud_passwords": {"az1": "..."},
//	 "cmdb_token": "..."}
//
// A zone without a cloud password uses the Keystone password (the same user). cmdb_token
// is the bearer token of the CMDB at STRAAS_CMDB_URL, if one is configured.
type Secret struct {
	KeystonePassword string            `json:"keystone_password"`
	GitToken         string            `json:"git_token"`
	CloudPasswords   map[string]string `json:"cloud_passwords,omitempty"`
	CMDBToken        string            `json:"cmdb_token,omitempty"`
}

// String never shows the credentials, so a Secret cannot leak through a log line.
func (Secret) String() string { return "deps.Secret{…}" }

// GoString keeps %#v from printing the fields.
func (s Secret) GoString() string { return s.String() }

// cloudEnv is one zone of STRAAS_CLOUDS.
type cloudEnv struct {
	AuthURL  string `json:"auth_url"`
	Username string `json:"username"`
	Project  string `json:"project"`
	Domain   string `json:"domain"`
	Region   string `json:"region"`
}

// AWSConfigFromEnv reads the configuration from the environment.
func AWSConfigFromEnv() (AWSConfig, error) { return ParseAWSConfig(os.Getenv) }

// ParseAWSConfig reads the configuration through getenv. Missing required settings and
// malformed values are one errs.Invalid error naming every variable at fault.
func ParseAWSConfig(getenv func(string) string) (AWSConfig, error) {
	var bad []string
	get := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	need := func(k string) string {
		v := get(k, "")
		if v == "" {
			bad = append(bad, k+" is required")
		}
		return v
	}
	dur := func(k string, def time.Duration) time.Duration {
		v := get(k, "")
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad = append(bad, fmt.Sprintf("%s=%q is not a positive duration", k, v))
			return def
		}
		return d
	}
	c := AWSConfig{
		Table:            need(EnvTable),
		StatusQueue:      get(EnvStatusQueue, queue.Status),
		Bucket:           get(EnvBucket, ""),
		AlertTopicARN:    get(EnvAlertTopic, ""),
		MachinePrefix:    get(EnvMachinePrefix, ""),
		MachineARNPrefix: get(EnvMachineARNPrefix, ""),
		Keystone: KeystoneConfig{
			URL: need(EnvKeystoneURL), Username: get(EnvKeystoneUser, "straas"), Project: get(EnvKeystoneProject, "service"),
			Domain: get(EnvKeystoneDomain, "Default"), AdminProject: get(EnvAdminProject, "admin"),
		},
		Git: GitConfig{
			ConfigURL: need(EnvConfigRepo), ScriptsURL: need(EnvScriptsRepo),
			Username: get(EnvGitUser, "straas"), Dir: get(EnvGitDir, DefaultGitDir),
		},
		SecretARN:    get(EnvSecretARN, ""),
		SecretInline: getenv(EnvSecret),
		CMDBURL:      get(EnvCMDBURL, ""),
		StageTimeout: dur(EnvStageTimeout, 15*time.Minute),
		SpawnTimeout: dur(EnvSpawnTimeout, 10*time.Minute),
		StaleAfter:   dur(EnvStaleAfter, 3*time.Minute),
		LeaseRenewal: dur(EnvLeaseRenewal, time.Minute),
		LogLevel:     get(EnvLogLevel, "info"),
	}
	c.HeartbeatSeconds = 10
	if v := get(EnvHeartbeatSeconds, ""); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			bad = append(bad, fmt.Sprintf("%s=%q is not a positive number of seconds", EnvHeartbeatSeconds, v))
		} else {
			c.HeartbeatSeconds = n
		}
	}
	if p := c.MachineARNPrefix; p != "" && (!strings.HasPrefix(p, "arn:") || !strings.Contains(p, ":stateMachine:") ||
		!strings.HasSuffix(p, c.MachinePrefix)) {
		bad = append(bad, fmt.Sprintf("%s=%q is not arn:<partition>:states:<region>:<account>:stateMachine:%s",
			EnvMachineARNPrefix, p, c.MachinePrefix))
	}
	// Agents renew their lease once per lease period, at the first heartbeat due after it
	// (up to an interval late, plus jitter and queueing): the checker must allow a few
	// intervals more before it calls a node silent.
	if margin := c.LeaseRenewal + StaleMarginBeats*time.Duration(c.HeartbeatSeconds)*time.Second; margin >= c.StaleAfter {
		bad = append(bad, fmt.Sprintf("%s (%s) must exceed %s (%s) plus %d heartbeat intervals (%s = %ds): a node renewing its lease would look stale",
			EnvStaleAfter, c.StaleAfter, EnvLeaseRenewal, c.LeaseRenewal, StaleMarginBeats, EnvHeartbeatSeconds, c.HeartbeatSeconds))
	}
	c.Clouds = map[string]cloud.Options{}
	base := cloud.Options{
		AuthURL: get(EnvCloudAuthURL, c.Keystone.URL), Username: get(EnvCloudUser, c.Keystone.Username),
		Project: get(EnvCloudProject, c.Keystone.Project), Domain: get(EnvCloudDomain, c.Keystone.Domain),
		Region: get(EnvCloudRegion, ""),
	}
	for _, z := range strings.Split(get(EnvCloudZones, ""), ",") {
		if z = strings.TrimSpace(z); z != "" {
			c.Clouds[z] = base
		}
	}
	if v := get(EnvClouds, ""); v != "" {
		var m map[string]cloudEnv
		if err := json.Unmarshal([]byte(v), &m); err != nil {
			bad = append(bad, fmt.Sprintf("%s is not a JSON object of zone -> {auth_url, username, project, domain, region}: %v", EnvClouds, err))
		}
		for z, e := range m {
			o := cloud.Options{AuthURL: e.AuthURL, Username: e.Username, Project: e.Project, Domain: e.Domain, Region: e.Region}
			if o.AuthURL == "" {
				o.AuthURL = base.AuthURL
			}
			if o.Username == "" {
				o.Username = base.Username
			}
			if o.Project == "" {
				o.Project = base.Project
			}
			if o.Domain == "" {
				o.Domain = base.Domain
			}
			c.Clouds[z] = o
		}
	}
	if len(c.Clouds) == 0 {
		bad = append(bad, fmt.Sprintf("no availability zone: set %s (or %s)", EnvCloudZones, EnvClouds))
	}
	if c.SecretARN == "" && c.SecretInline == "" {
		bad = append(bad, fmt.Sprintf("%s (or %s) is required: it holds the Keystone password and the git token", EnvSecretARN, EnvSecret))
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return c, errs.Invalidf("environment", "%s", strings.Join(bad, "; "))
	}
	return c, nil
}

// MachineARNs maps every machine of statemachines/ to its ARN when the configuration
// gives the ARN prefix, else it is nil (the machines are found by listing).
func (c AWSConfig) MachineARNs() map[string]string {
	if c.MachineARNPrefix == "" {
		return nil
	}
	out := map[string]string{}
	for _, name := range statemachines.Names() {
		out[name] = c.MachineARNPrefix + name
	}
	return out
}

// Substitutions maps every ${...} of statemachines/*.asl.json for a stack whose
// functions SAM does not deploy (local stacks: `straas aws bootstrap`):
// ${<Name>FunctionArn} to function(Name), and ${<Machine>StateMachineArn} (a child
// workflow) to machine(<machine>), the file name of that machine (ConfigChange ->
// config_change). template.yaml gives the deployed stack the same keys.
func Substitutions(function, machine func(name string) string) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range statemachines.Names() {
		def, err := statemachines.Definition(name)
		if err != nil {
			return nil, err
		}
		for _, k := range statemachines.Substitutions(def) {
			if fn, ok := statemachines.FunctionName(k); ok {
				out[k] = function(fn)
				continue
			}
			m, ok := MachineOfSubstitution(k)
			if !ok {
				return nil, errs.Invalidf("statemachines/"+name+".asl.json", "unknown substitution ${%s}", k)
			}
			out[k] = machine(m)
		}
	}
	return out, nil
}

// MachineOfSubstitution maps "ConfigChangeStateMachineArn" to the machine
// "config_change" (statemachines/config_change.asl.json).
func MachineOfSubstitution(k string) (string, bool) {
	n, ok := strings.CutSuffix(k, "StateMachineArn")
	if !ok || n == "" {
		return "", false
	}
	var b strings.Builder
	for i, r := range n {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String(), true
}
