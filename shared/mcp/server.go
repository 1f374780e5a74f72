package mcp

import (
	"log/slog"
	"net/http"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/followups/followups/shared/followup"
)

// The headers the agent's gateway sets on every request.
const (
	// ThreadHeader names the conversation; every tool needs it.
	ThreadHeader = "X-Thread-Id"
	// RunHeader names the agent run; it becomes originating_run_id, so a
	// second schedule_followup from the same run replaces the first.
	RunHeader = "X-Run-Id"
)

// Options configure the MCP handler.
type Options struct {
	// API serves the HTTP API. The tools call it in process, with the
	// Authorization of the request they came in.
	API http.Handler
	// Limits are the delay bounds in force, stated in the tools'
	// descriptions and input schemas.
	Limits followup.Limits
	// ErrorObject renders an error as the API's error object, for every
	// refusal (required): the API's own, which the tools read back as a
	// *followup.Error, and the tools' (a missing X-Thread-Id, an unknown
	// argument, a followup of another thread).
	ErrorObject func(error) any
	// Log receives one line per tool call; nil logs nothing.
	Log *slog.Logger
}

// serverVersion is the version the server reports in its
// implementation info: the API's (openapi.json's info.version).
const serverVersion = "1.0.0"

// instructions tell the agent what the server is for.
const instructions = "Followups lets you keep a promise to come back later. " +
	"schedule_followup makes this conversation receive a user turn with your prompt at the time you choose; " +
	"list_followups shows what you scheduled and what came of it; cancel_followup withdraws one that is no longer needed."

// New returns the MCP endpoint, for POST requests: the streamable HTTP
// transport, stateless (each request stands alone, so any instance, a
// Lambda function included, can answer it) and answering with JSON rather
// than an event stream.
func New(o Options) http.Handler {
	if o.API == nil || o.ErrorObject == nil {
		panic("mcp.New: Options.API and Options.ErrorObject are required")
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := sdk.NewServer(&sdk.Implementation{Name: "followups", Title: "Followups", Version: serverVersion}, &sdk.ServerOptions{
		Instructions: instructions,
		// The tools never change, so there is nothing to notify: a client
		// then opens no subscription stream, which a stateless server
		// behind API Gateway could not hold.
		Capabilities: &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{}},
	})
	t := &tools{api: o.API, errorObject: o.ErrorObject, log: log}
	srv.AddTool(scheduleTool(o.Limits), t.schedule)
	srv.AddTool(listTool(), t.list)
	srv.AddTool(cancelTool(), t.cancel)
	return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, &sdk.StreamableHTTPOptions{
		Stateless:    true,
		JSONResponse: true,
		Logger:       log,
		// Callers authenticate as on every route (a bearer token, IAM).
		// The SDK's check that a loopback listener is reached by a
		// loopback Host name would refuse followupd behind a local
		// reverse proxy, and adds nothing to a token.
		DisableLocalhostProtection: true,
		MaxRequestBodyBytes:        followup.MaxBodyBytes,
	})
}
