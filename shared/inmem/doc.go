// Package inmem holds in-memory adapters for unit tests of the domain and
// the API: a Store and a Scheduler that keep everything in maps. They pass
// the same contract suite as the real adapters, but nothing here is
// durable; followupd uses shared/embedded.
package inmem
