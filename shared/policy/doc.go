// Package policy is the pure logic of straas's policies and operational states (seed 001,
// seed 002): the policy types and their versioned, validated specs (health, scaling,
// deletion, placement), what each decides (recovery escalation with a quorum guard,
// scaling targets within bounds and cooldown, deletion victims, fault-domain spread),
// the resolution of operational states (autoscaling, autohealing, maintenance) from a
// topology down to its nodes, and maintenance windows. It does no I/O: records live in
// package policy/records; the checker, the API and the stages act on these decisions.
package policy
