// Package dynamo is the followup.Store of the AWS deployment: one DynamoDB
// table, as template.yaml declares it. It is not the record's only home in
// tests (shared/embedded and shared/inmem pass the same contract suite,
// storetest), and it creates no AWS resources at run time.
//
// # Table
//
// Keys are pk (S) and sk (S); four item types live side by side, told
// apart by pk's prefix:
//
//	item             pk                              sk  attributes
//	followup         F#<id>                          F   the record (below), thread_pk, run_at_sk
//	idempotency key  K#<key>                         K   followup_id, request_hash, key_expires_at
//	run slot         R#<len(thread)>:<thread>#<run>  R   followup_id
//	dead letter      D#<message id>                  D   id, body, attributes (M), error, received_at
//
// A followup item holds every field of followup.Followup under its JSON
// name (id, thread_id, prompt, status, attempts, runs, ...) plus version,
// next_attempt_at and lease_until. Times are RFC 3339 strings in UTC with
// exactly nine fractional digits: exact to the nanosecond, and, being of
// fixed width, ordered as strings the way the times are, so conditions
// compare them directly (next_attempt_at <= :due). next_attempt_at is
// always present for that reason. Metadata is Binary: the client's JSON,
// byte for byte. runs is a list of maps that transitions append to.
//
// The run slot is the replace-per-run pointer: the newest followup of one
// thread and originating run. The thread id is prefixed with its length so
// that no (thread, run) pair can spell another's key.
//
// # Thread index
//
// The global secondary index thread-run_at (projection ALL) has
// thread_pk = the thread id (S) and run_at_sk = run_at in the time format
// above, "#", and the id (S). Only followup items carry these attributes,
// so only they are indexed. The fixed-width time makes the index's byte
// order the listing order (run_at, then id), and a listing resumes with
// run_at_sk > the last position. Index reads are eventually consistent on
// AWS: a listing may briefly miss a followup just written, or show it as
// it was; Get is always strongly consistent.
//
// # Retention
//
// expires_at (a Unix-seconds number, rounded up) is the table's TTL
// attribute. A followup gets one only when it settles: settled_at plus
// Options.Retention, but never less than followup.MinIdempotencyMemory, so
// an idempotency key never outlives the followup it replays. A key expires
// at its KeyExpiresAt (key_expires_at holds the exact time, which decides
// liveness: TTL removes items only some time after they expire). A run
// slot expires 35 days after its followup's run_at, longer than any
// followup stays pending. A dead letter expires Retention after it arrived.
//
// # Writes
//
// Every state change is one conditional write: Apply turns a
// followup.Transition's conditions (From, Version, DueBy, AttemptsBelow)
// into a ConditionExpression and its changes into an UpdateExpression in
// one UpdateItem that returns the new record, or, when refused, the
// current one (ReturnValuesOnConditionCheckFailure), so a conflict needs no
// extra read. Create is one PutItem, or one TransactWriteItems when an
// idempotency key or a run slot is written with the followup; with an
// originating run it first reads the slot and the followup it names.
package dynamo
