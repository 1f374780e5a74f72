// Package e2e holds end-to-end tests: they build the real followupd binary
// and the Lambda bootstraps, run them as processes on real sockets, and
// talk to them over HTTP like a client and a thread service would.
package e2e
