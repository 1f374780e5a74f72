package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/followups/followups/shared/followup"
	"github.com/followups/followups/shared/mcp"
)

// newMCP returns the agent's tools. Their calls are requests to h, made
// with the caller's credentials, so a tool can do exactly what its caller
// could do through the HTTP routes, checked and answered the same way.
func newMCP(h *Handler, limits followup.Limits, log *slog.Logger) http.Handler {
	return mcp.New(mcp.Options{
		API:    h,
		Limits: limits,
		Log:    log,
		ErrorObject: func(err error) any {
			_, body := errorResponse(err)
			return body
		},
	})
}

// serveMCP serves POST /mcp. The request passes the checks of every
// body-bearing route first (Content-Type, size, then one JSON value), so
// they answer as everywhere else; the MCP transport's own refusals, which
// it writes as plain text, reach the client as the API's error object.
func (h *Handler) serveMCP(w http.ResponseWriter, r *http.Request) {
	body, release, err := h.readJSONBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	defer release()
	if !json.Valid(body) {
		writeError(w, followup.Errorf(followup.CodeInvalidJSON, "request body is not valid JSON"))
		return
	}
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	tw := &transportWriter{ResponseWriter: w}
	h.mcp.ServeHTTP(tw, r)
	tw.finish()
}

// transportWriter passes the MCP transport's answers through, except a
// plain-text refusal, whose text it keeps to write as an error object.
type transportWriter struct {
	http.ResponseWriter
	refused int // the status of the refusal being kept
	text    bytes.Buffer
}

func (t *transportWriter) WriteHeader(status int) {
	if status >= 400 && strings.HasPrefix(t.Header().Get("Content-Type"), "text/plain") {
		t.refused = status
		return
	}
	t.ResponseWriter.WriteHeader(status)
}

func (t *transportWriter) Write(b []byte) (int, error) {
	if t.refused != 0 {
		return t.text.Write(b)
	}
	return t.ResponseWriter.Write(b)
}

// Flush lets a short event stream (subscriptions/listen) through.
func (t *transportWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok && t.refused == 0 {
		f.Flush()
	}
}

// finish writes the kept refusal, if there is one.
func (t *transportWriter) finish() {
	if t.refused == 0 {
		return
	}
	code := followup.CodeInvalidArgument
	switch {
	case t.refused == http.StatusNotFound:
		code = followup.CodeNotFound
	case t.refused == http.StatusMethodNotAllowed:
		code = followup.CodeMethodNotAllowed
	case t.refused == http.StatusRequestEntityTooLarge:
		code = followup.CodePayloadTooLarge
	case t.refused == http.StatusUnsupportedMediaType:
		code = followup.CodeUnsupportedMediaType
	case t.refused >= 500:
		code = followup.CodeInternal
	}
	writeError(t.ResponseWriter, followup.Errorf(code, "%s", strings.TrimSpace(t.text.String())))
}
