// Package bolt is followupd's durable followup.Store: one bbolt file on one
// machine. (The in-process queue and timer that stand in for SQS and
// EventBridge Scheduler are in shared/memqueue.)
//
// The Store fsyncs every acknowledged write before it returns, and
// concurrent writes share one transaction and one fsync (group commit),
// which is what lets one disk take thousands of creates a second. Records
// are kept in a compact binary form beside indexes written in the same
// transaction: a thread's listing, the due times of pending followups (what
// a restart reads to rebuild the timer, without decoding records), the
// sweep times of pending followups (what the sweep reads to find lost
// messages), the replace-per-run slots, and the settled followups that
// Purge walks. Idempotency keys and dead letters are kept too. Nothing is
// loaded into memory at Open: reads go to the memory-mapped file.
//
// It is for one process on one machine: a second process opening the same
// file fails with ErrLocked.
package bolt
