// Package embedded holds followupd's single-machine adapters: the durable
// Store (followup.Store on one bbolt file), the Timer that stands in for
// EventBridge Scheduler, and the Queue that stands in for SQS.
//
// The Store fsyncs every acknowledged write before it returns, and
// concurrent writes share one transaction and one fsync (group commit),
// which is what lets one disk take thousands of creates a second. Records
// are kept in a compact binary form beside indexes written in the same
// transaction: a thread's listing, the due times of pending followups (what
// a restart reads to rebuild the Timer, without decoding records), the
// replace-per-run slots, and the settled followups that Purge walks.
// Idempotency keys and dead letters are kept too. Nothing is loaded into
// memory at Open: reads go to the memory-mapped file.
//
// It is for one process on one machine: a second process opening the same
// file fails with ErrLocked.
package embedded
