// Package inmem holds in-memory adapters for unit tests of the domain and
// the API: a Store, a Scheduler and Queues that keep everything in memory.
// The Store passes the same contract suite as the real stores, but nothing
// here is durable.
package inmem
