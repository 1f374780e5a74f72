// Package mcp is the agent's own interface to Followups: a Model Context
// Protocol server (streamable HTTP, stateless, JSON responses) with three
// tools, schedule_followup, list_followups and cancel_followup, built on
// the official Go SDK (github.com/modelcontextprotocol/go-sdk).
//
// It makes no decisions of its own. Each tool call becomes requests to the
// HTTP API's routes, served in process by the API handler with the
// caller's credentials, so validation, limits, error codes and cursors are
// the API's by construction, and a refused call carries the API's error
// object. The conversation comes from the X-Thread-Id header the agent's
// gateway sets, never from the agent's arguments, so an agent cannot
// schedule into, list or cancel another conversation's followups.
//
// It is not the HTTP endpoint's outer checks (authentication, Content-Type,
// size): shared/api applies those before handing a request to it.
package mcp
