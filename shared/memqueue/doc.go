// Package memqueue is followupd's stand-in for SQS and EventBridge
// Scheduler, in one process: a Queue with the SQS semantics the fire and
// dead-letter consumers rely on (delays, at-least-once delivery with a
// receive count, visibility timeouts, redrive to a dead-letter side after
// a receive limit), and a Timer that sends each followup's message to it
// at its time. Both keep time through a Clock, so tests move time by hand.
//
// Everything here is memory only: the store (shared/bolt) is the source of
// truth, and followupd rebuilds the Timer from it at start.
package memqueue
