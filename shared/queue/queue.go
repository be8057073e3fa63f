// Package queue is the port to durable message queues: one command queue per node and a
// shared status queue (DESIGN §5). Delivery is at least once: a received message becomes
// visible again unless acknowledged within the visibility timeout, and moves to the
// queue's dead-letter queue after MaxReceives. Adapters: embedded (bbolt-backed) and sqs.
package queue

import (
	"context"
	"time"
)

// Well-known queue names.
const (
	Status = "straas-status" // agents -> conductor: hello, heartbeat, result, event
)

// NodeQueue is the command queue of a node.
func NodeQueue(nodeID string) string { return "straas-node-" + nodeID }

// DeadLetter is the name of the dead-letter queue of q.
func DeadLetter(q string) string { return q + "-dlq" }

// Defaults every adapter applies.
const (
	DefaultVisibility  = 30 * time.Second
	DefaultMaxReceives = 5
	MaxBatch           = 10 // SQS's limit for one send/receive/ack call; adapters split larger sends
)

// Message is one received message.
type Message struct {
	ID       string
	Body     []byte
	Receipt  string // handle for Ack; valid for this receipt only
	Receives int    // how many times it has been received, this one included
}

// Queue is the port. Implementations are safe for concurrent use.
type Queue interface {
	// Ensure creates the queue (and its dead-letter queue) if it does not exist.
	Ensure(ctx context.Context, name string) error
	// Remove deletes the queue and its messages; removing a missing queue is not an error.
	Remove(ctx context.Context, name string) error
	// Send enqueues bodies in order. Sending to a missing queue is an errs.NotFound error.
	Send(ctx context.Context, name string, bodies ...[]byte) error
	// Receive returns up to max messages, waiting up to wait for the first one.
	// It returns an empty slice (not an error) when none arrived in time.
	Receive(ctx context.Context, name string, max int, wait time.Duration) ([]Message, error)
	// Ack deletes received messages. Acking an expired or unknown receipt is not an error.
	Ack(ctx context.Context, name string, receipts ...string) error
}
