// Package mockcn is the mock cloud (DESIGN §6, seed 003): an OpenStack subset —
// Keystone v3 at /identity/v3 and Nova v2.1 at /compute/v2.1 — that gophercloud talks to
// exactly as to a real cloud, backed by mock compute nodes (CNs) and VMs kept as files,
// with every booted VM running the real agent code (package agent) on the dummy backend.
//
// # Files
//
// Under Config.Root (SERVER_ROOT), as in Triton's mockcloud:
//
//	servers/<cn uuid>/sysinfo.json        the CN: "System Type": "Virtual", UUID, Hostname,
//	                                      "Admin IP", "Agent IP", "CN Agent Port", CPUs, RAM,
//	                                      disk, rack (the fault domain) and availability zone
//	servers/<cn uuid>/vms/<vm uuid>.json  one VM object per server, written on create and on
//	                                      every state change (never per heartbeat)
//	servers/<cn uuid>/vms/<vm uuid>/      the VM's disk: the dummy agent's state.json,
//	                                      puppet/manifests/<role>/site.pp, files/...
//	unplaced/<vm uuid>.json               servers that found no valid host (status ERROR)
//	server_groups.json                    Nova server groups
//	identity/                             the token key and the revocation list
//
// A new Cloud over an existing root picks everything up again: CNs, servers, groups, and
// the agents of running servers, which boot again and say hello.
//
// # User data
//
// A server whose user_data (base64, as Nova takes it) decodes to this JSON object boots
// an agent:
//
//	{
//	  "node_id": "n-42",                  required: the agent's node id
//	  "status_queue": "straas-status",    default queue.Status
//	  "command_queue": "straas-node-n-42", default queue.NodeQueue(node_id)
//	  "heartbeat_seconds": 10,            default 10
//	  "lease_seconds": 60,                default 60: how often a heartbeat asks to be stored
//	  "scripts_ref": "v3"                 the scripts ref the node reports at first
//	}
//
// UserData and ParseUserData build and read it. Other user data boots a server without
// an agent. The agents send to and receive from Config.Queue.
//
// # Placement
//
// A server goes to an up, enabled CN of its availability zone (any zone when none is
// given) with room for its flavor's vCPUs, RAM and disk (times the allocation ratios).
// Server groups are enforced: anti-affinity puts members on distinct CNs (and spreads
// them over racks first), affinity on one CN; soft policies only weigh. The scheduler
// hints different_host, same_host and the non-standard fault_domain (a rack name) filter
// too. Among candidates the CN with the most free RAM wins. When none fits, the server
// goes to ERROR with the fault "No valid host was found." at once.
//
// Racks are also published as host aggregates (os-aggregates) with metadata
// fault_domain=<rack>, which is how a client learns the fault domain of a host.
//
// # Admin API
//
// Under /mockcn/v1 (an admin token required), and the same operations as methods of
// Cloud: create, list and delete CNs with a hardware profile; take a CN or a whole rack
// down and up (its agents go silent; Nova shows the hypervisor down); crash a VM (server
// SHUTOFF or ERROR, its agent stops); silence, crash, restart or slow an agent, or give
// it fault knobs (dummy.Knobs: failing installs of a package version, hangs, crashes);
// set the fleet-wide knobs and the boot latency distribution; read statistics.
package mockcn
