// Package dispatch is the thread API client: it turns one dispatch attempt of
// a followup into one HTTP request to the thread service, and the
// answer into a followup.Attempt. Client implements followup.Dispatcher.
// (With no thread API configured, the domain drops every attempt as
// dispatcher_unconfigured itself.)
//
// It also holds what a thread service written in Go needs to receive
// followups: Message, the body of the request, and Verify, which checks the
// X-Followup-Signature header that Sign produces.
//
// It is not a retry loop: a Client makes exactly one attempt per call, never
// sleeps and keeps no state between attempts; when to try again is decided by
// followup.RetryPolicy and the fire queue. It reads no environment and writes
// no logs. Attempt.Error may hold up to 256 bytes of the thread's answer,
// which callers record as last_error and must not log.
package dispatch
