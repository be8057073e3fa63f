// Package agentproto defines the versioned JSON messages between the control plane and
// node agents (DESIGN §5). Commands go to a node's own queue; everything an agent says
// goes to the shared status queue. Delivery is at least once: every command has an ID and
// agents are idempotent on it; results carry the command's ID and Reply key back.
package agentproto

import (
	"encoding/json"
	"fmt"
	"time"
)

// Version of the protocol. A receiver rejects messages of a newer major version.
const Version = 1

// Message types.
const (
	TypeHello     = "hello"
	TypeHeartbeat = "heartbeat"
	TypeResult    = "result"
	TypeEvent     = "event"
	TypeCommand   = "command"
)

// Command kinds.
const (
	CmdInstall      = "install"
	CmdPreConfigure = "pre_configure"
	CmdConfigure    = "configure"
	CmdValidate     = "validate"
	CmdStart        = "start"
	CmdStop         = "stop"
	CmdRestart      = "restart"
	CmdGuest        = "guestcmd"
	CmdSyncScripts  = "sync_scripts"
	CmdPutFile      = "put_file"
	CmdMaintenance  = "maintenance"
	CmdDrain        = "drain"
)

// Result codes of the agent interface (seed 000 §4.4.2).
const (
	InstallSuccess   = "GUEST_AGENT_INSTALL_SUCCESS"
	InstallFailure   = "GUEST_AGENT_INSTALL_FAILURE"
	PreConfigSuccess = "GUEST_AGENT_PRE_CONFIG_SUCCESS"
	PreConfigFailure = "GUEST_AGENT_PRE_CONFIG_FAILURE"
	ConfigSuccess    = "GUEST_AGENT_CONFIG_SUCCESS"
	ConfigFailure    = "GUEST_AGENT_CONFIG_FAILURE"
	ValidateSuccess  = "GUEST_AGENT_VALIDATE_SUCCESS"
	ValidateFailure  = "GUEST_AGENT_VALIDATE_FAILURE"
)

// Event names sent by agents.
const (
	EventResume = "resume" // maintenance done, node back in its previous state
)

// Envelope is every message on a queue. Exactly one payload field is set, per Type.
type Envelope struct {
	V    int       `json:"v"`
	Type string    `json:"type"`
	Node string    `json:"node"` // node id
	At   time.Time `json:"at"`   // when the sender created it

	Hello     *Hello     `json:"hello,omitempty"`
	Heartbeat *Heartbeat `json:"heartbeat,omitempty"`
	Result    *Result    `json:"result,omitempty"`
	Event     *Event     `json:"event,omitempty"`
	Command   *Command   `json:"command,omitempty"`
}

// Hello is sent once the agent has booted.
type Hello struct {
	Hostname     string   `json:"hostname"`
	IPs          []string `json:"ips"`
	ServerID     string   `json:"server_id,omitempty"`
	AgentVersion string   `json:"agent_version,omitempty"`
}

// Heartbeat carries liveness, service status and metrics.
type Heartbeat struct {
	Seq         uint64             `json:"seq"`
	Services    map[string]string  `json:"services,omitempty"` // service -> running|stopped|failed
	Metrics     map[string]float64 `json:"metrics,omitempty"`  // cpu, mem, disk (percent), app-specific
	Installed   string             `json:"installed,omitempty"`
	ConfigRef   string             `json:"config_ref,omitempty"`
	ScriptsRef  string             `json:"scripts_ref,omitempty"`
	Maintenance bool               `json:"maintenance,omitempty"`

	// The agent decides which heartbeats must be stored (so any number of conductors
	// write each lease once per period, DESIGN §11): Renew is set on the first heartbeat
	// after boot and then once per lease period; Changed when services, installed,
	// config_ref, scripts_ref or maintenance differ from the previous heartbeat.
	Renew   bool `json:"renew,omitempty"`
	Changed bool `json:"changed,omitempty"`
	// LeaseSeconds is the agent's lease period (user data lease_seconds). 0 comes from an
	// agent that sets neither flag: the conductor then renews by its own clock.
	LeaseSeconds int `json:"lease_seconds,omitempty"`
}

// Result answers a command.
type Result struct {
	CommandID  string          `json:"command_id"`
	Kind       string          `json:"kind"`
	Reply      string          `json:"reply,omitempty"` // copied from Command.Reply
	OK         bool            `json:"ok"`
	Code       string          `json:"code,omitempty"` // e.g. GUEST_AGENT_INSTALL_SUCCESS
	ExitStatus int             `json:"exit_status"`
	Output     string          `json:"output,omitempty"` // bounded by MaxOutput
	Error      string          `json:"error,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"` // structured output of a command, if any
}

// MaxOutput bounds Result.Output; agents truncate longer output and say so.
const MaxOutput = 64 << 10

// Event is something an agent reports unprompted.
type Event struct {
	Name   string `json:"name"`
	Detail string `json:"detail,omitempty"`
}

// Command is an instruction to one node's agent.
type Command struct {
	ID       string            `json:"id"`
	Kind     string            `json:"kind"`
	Reply    string            `json:"reply,omitempty"` // correlation key echoed in the Result
	Role     string            `json:"role,omitempty"`
	Type     string            `json:"type,omitempty"` // component type
	Version  string            `json:"version,omitempty"`
	Package  *Package          `json:"package,omitempty"`
	Sections Sections          `json:"sections,omitempty"` // pre_configure: {section: {key: value}}
	SitePP   string            `json:"site_pp,omitempty"`  // pre_configure: rendered site.pp
	Ref      string            `json:"ref,omitempty"`      // sync_scripts/configure: git ref
	Command  string            `json:"command,omitempty"`  // guestcmd: "<group>/<name>"
	Args     string            `json:"args,omitempty"`
	File     *File             `json:"file,omitempty"`
	Params   map[string]string `json:"params,omitempty"`
	Deadline time.Time         `json:"deadline,omitempty"` // agent gives up (and reports) after this
}

// Package names what install puts on the node.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// File is what put_file fetches from blob storage.
type File struct {
	Key        string `json:"key"`
	URL        string `json:"url,omitempty"` // pre-signed or local URL the agent can GET
	TargetPath string `json:"target_path"`
}

// Sections is the pre-config output: {section: {option: value}}.
type Sections map[string]map[string]any

// Encode marshals an envelope, stamping the version.
func Encode(e Envelope) ([]byte, error) {
	e.V = Version
	return json.Marshal(e)
}

// Decode parses and checks an envelope.
func Decode(b []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("decode agent message: %w", err)
	}
	if e.V < 1 || e.V > Version {
		return e, fmt.Errorf("decode agent message: unsupported version %d", e.V)
	}
	var payload bool
	switch e.Type {
	case TypeHello:
		payload = e.Hello != nil
	case TypeHeartbeat:
		payload = e.Heartbeat != nil
	case TypeResult:
		payload = e.Result != nil
	case TypeEvent:
		payload = e.Event != nil
	case TypeCommand:
		payload = e.Command != nil
	default:
		return e, fmt.Errorf("decode agent message: unknown type %q", e.Type)
	}
	if !payload {
		return e, fmt.Errorf("decode agent message: %s without its payload", e.Type)
	}
	return e, nil
}
