package api

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/followups/followups/shared/followup"
)

// Options configure the API handler.
type Options struct {
	// Service does the work.
	Service *followup.Service
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every request the handler serves, unknown routes included.
	Token string
	// CursorKey seals list cursors; nil uses a fixed key, which makes
	// cursors tamper-evident though not secret (they only hold a position).
	CursorKey []byte
	// Log receives one line per request; nil logs nothing.
	Log *slog.Logger
	// Open are routes served without authentication, for probes and
	// scrapers (followupd's /healthz and /metrics), by exact path, for GET
	// and HEAD only.
	Open map[string]http.Handler
	// MaxInFlight bounds the requests worked on at once (their bodies
	// read, the store called); past it a request gets 503 unavailable
	// with Retry-After at once instead of waiting, so a flood of requests
	// costs bounded memory and the ones within the bound stay fast. Zero
	// means no bound (one Lambda invocation is one request).
	MaxInFlight int
	// MaxBodyBytesInFlight bounds the bytes of large request bodies
	// (over SmallBody) being read or worked on at once, by their declared
	// size (the 64 KiB limit when not declared). Past it such a request
	// gets 503 before its body is read. Small bodies, which every usual
	// create is, are never refused by it. Zero means no bound.
	MaxBodyBytesInFlight int64
}

// SmallBody is the body size under which MaxBodyBytesInFlight does not
// apply: a create with a short prompt.
const SmallBody = 8 << 10

// DefaultListLimit and MaxListLimit bound GET /threads/{thread_id}/followups.
const (
	DefaultListLimit = followup.DefaultListLimit
	MaxListLimit     = followup.MaxListLimit
)

var defaultCursorKey = []byte("followups list cursor v1")

// Handler serves the Followups API.
type Handler struct {
	open      map[string]http.Handler
	svc       *followup.Service
	token     string
	cursorKey []byte
	log       *slog.Logger
	mux       *http.ServeMux
	// slots holds one token per request being worked on; nil for no bound.
	slots chan struct{}
	// bodies is the budget of large bodies' bytes; nil for no bound.
	bodies *budget
	// mcp is the agent's tools (POST /mcp), which call the API back.
	mcp http.Handler
}

// New returns the API handler.
func New(o Options) *Handler {
	h := &Handler{svc: o.Service, token: o.Token, cursorKey: o.CursorKey, log: o.Log, open: o.Open}
	if o.MaxInFlight > 0 {
		h.slots = make(chan struct{}, o.MaxInFlight)
	}
	if o.MaxBodyBytesInFlight > 0 {
		h.bodies = &budget{left: o.MaxBodyBytesInFlight}
	}
	if h.cursorKey == nil {
		h.cursorKey = defaultCursorKey
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.mux = http.NewServeMux()
	for pattern, serve := range h.routes() {
		h.mux.HandleFunc(pattern, serve)
	}
	h.mcp = newMCP(h, h.svc.Limits(), h.log)
	h.open = withOpenAPI(o.Open, openAPIHandler(h.svc.Limits()))
	return h
}

// ServeHTTP checks authentication, then routes. Unknown routes and methods
// answer with the same JSON errors as everything else.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusWriter{ResponseWriter: w}
	route := h.serve(rec, r)
	// A request that went well is a DEBUG line: what it did has its own
	// INFO line ("followup scheduled", "followup cancelled"), and a line
	// per request was a twentieth of a create's CPU. A refused request is
	// INFO, a failed one WARN.
	level := slog.LevelDebug
	switch {
	case rec.status >= 500:
		level = slog.LevelWarn
	case rec.status >= 400:
		level = slog.LevelInfo
	}
	if !h.log.Enabled(r.Context(), level) {
		return
	}
	h.log.LogAttrs(r.Context(), level, "request",
		slog.String("method", r.Method), slog.String("route", route), slog.Int("status", rec.status),
		slog.Int64("duration_ms", time.Since(start).Milliseconds()), slog.String("request_id", RequestID(r)))
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) (route string) {
	defer func() {
		if p := recover(); p != nil {
			// Only the runtime's own errors are named: another panic value
			// might quote a request.
			var re runtime.Error
			detail := fmt.Sprintf("%T", p)
			if err, ok := p.(error); ok && errors.As(err, &re) {
				detail = re.Error()
			}
			h.log.ErrorContext(r.Context(), "panic serving request", "route", route, "panic", detail, "request_id", RequestID(r))
			writeError(w, followup.Errorf(followup.CodeInternal, "internal error"))
		}
	}()
	if open, ok := h.open[r.URL.Path]; ok {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, followup.Errorf(followup.CodeMethodNotAllowed, "method %s is not allowed on %s", r.Method, r.URL.Path))
			return "method_not_allowed"
		}
		open.ServeHTTP(w, r)
		return r.URL.Path
	}
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		writeError(w, followup.Errorf(followup.CodeUnauthorized, "missing or invalid bearer token"))
		return "unauthorized"
	}
	// A path with empty or dot segments names no route. ServeMux would
	// redirect it to a cleaned path; an API answers 404 instead, and a
	// proxy that cleans paths cannot make one request mean another.
	if p := r.URL.EscapedPath(); p != path.Clean(p) {
		writeError(w, followup.Errorf(followup.CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
		return "not_found"
	}
	if route, ok := h.threadRoute(w, r); ok {
		return route
	}
	handler, pattern := h.mux.Handler(r)
	if pattern == "" {
		// The mux would answer in plain text: a 405 for a known path with
		// another method, else a 404 (or a redirect to a cleaned path,
		// which an API should not do). Learn which, then answer in JSON.
		probe := &statusWriter{ResponseWriter: discard{header: http.Header{}}}
		handler.ServeHTTP(probe, r)
		if probe.status == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", probe.Header().Get("Allow"))
			writeError(w, followup.Errorf(followup.CodeMethodNotAllowed, "method %s is not allowed on %s", r.Method, r.URL.Path))
			return "method_not_allowed"
		}
		writeError(w, followup.Errorf(followup.CodeNotFound, "no route for %s %s", r.Method, r.URL.Path))
		return "not_found"
	}
	h.mux.ServeHTTP(w, r)
	return pattern
}

// threadRoute serves /threads/{thread_id}/followups. It is matched here
// rather than by ServeMux, which cannot route an escaped "/" that is the
// whole segment (/threads/%2F/followups): the thread id is the one escaped
// segment between the fixed prefix and suffix.
func (h *Handler) threadRoute(w http.ResponseWriter, r *http.Request) (route string, ok bool) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/threads/")
	if !ok {
		return "", false
	}
	seg, ok := strings.CutSuffix(rest, "/followups")
	if !ok || seg == "" || strings.Contains(seg, "/") {
		return "", false
	}
	id, err := url.PathUnescape(seg)
	if err != nil {
		return "", false
	}
	r.SetPathValue("thread_id", id)
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.list(w, r)
		return "GET /threads/{thread_id}/followups", true
	case http.MethodDelete:
		h.cancelThread(w, r)
		return "DELETE /threads/{thread_id}/followups", true
	}
	w.Header().Set("Allow", "GET, HEAD, DELETE")
	writeError(w, followup.Errorf(followup.CodeMethodNotAllowed, "method %s is not allowed on %s", r.Method, r.URL.Path))
	return "method_not_allowed", true
}

func (h *Handler) authorized(r *http.Request) bool {
	if h.token == "" {
		return true
	}
	// The scheme is case-insensitive (RFC 9110 §11.1).
	scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	return ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimLeft(got, " ")), []byte(h.token)) == 1
}

// RequestID returns the request's id: the X-Request-Id it came with, or the
// one the Lambda adapter set.
func RequestID(r *http.Request) string {
	return r.Header.Get("X-Request-Id")
}

// errBusy is the answer past MaxInFlight.
var errBusy = followup.Errorf(followup.CodeUnavailable, "too many requests at once; try again")

// work takes a slot for one request's work, or answers 503 and reports
// false when none is free. The caller calls done when finished.
func (h *Handler) work(w http.ResponseWriter) bool {
	if h.slots == nil {
		return true
	}
	select {
	case h.slots <- struct{}{}:
		return true
	default:
		writeError(w, errBusy)
		return false
	}
}

func (h *Handler) done() {
	if h.slots != nil {
		<-h.slots
	}
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	body, release, err := h.readJSONBody(w, r)
	if err != nil {
		writeError(w, err)
		return
	}
	defer release()
	h.creates(w, r, func(key string) (followup.Created, error) {
		req, err := followup.ParseCreate(body)
		if err != nil {
			return followup.Created{}, err
		}
		return h.svc.Create(r.Context(), req, key)
	})
}

// creates runs a request that creates a followup (a create, a rearm)
// once its body is read: within the bound of work in flight, with its
// Idempotency-Key checked before create parses the body and creates.
func (h *Handler) creates(w http.ResponseWriter, r *http.Request, create func(key string) (followup.Created, error)) {
	if !h.work(w) {
		return
	}
	defer h.done()
	key, err := idempotencyKey(r)
	if err != nil {
		writeError(w, err)
		return
	}
	created, err := create(key)
	if err != nil {
		writeError(w, err)
		return
	}
	writeCreated(w, created)
}

// readJSONBody enforces Content-Type, then size, then the budget of large
// bodies. When it returns the body, release gives back what the body took
// of the budget; on an error it has given it back already.
func (h *Handler) readJSONBody(w http.ResponseWriter, r *http.Request) (_ []byte, release func(), _ error) {
	release = func() {}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" { // the usual one, without parsing
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, release, followup.Errorf(followup.CodeUnsupportedMediaType, "Content-Type must be application/json")
		}
	}
	tooLarge := func() error {
		return followup.Errorf(followup.CodePayloadTooLarge, "request body is larger than %d bytes", followup.MaxBodyBytes)
	}
	if r.ContentLength > followup.MaxBodyBytes {
		return nil, release, tooLarge()
	}
	if size := r.ContentLength; h.bodies != nil && (size < 0 || size > SmallBody) {
		if size < 0 {
			size = followup.MaxBodyBytes + 1
		}
		if !h.bodies.take(size) {
			return nil, release, errBusy
		}
		release = func() { h.bodies.give(size) }
	}
	// Read into one buffer of the declared size (the limit at most) and
	// the room ReadFrom wants to see the end, not one that doubles as
	// bytes arrive.
	buf := bytes.NewBuffer(make([]byte, 0, min(max(r.ContentLength, 0), followup.MaxBodyBytes+1)+bytes.MinRead))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, followup.MaxBodyBytes))
	body := buf.Bytes()
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		release()
		return nil, func() {}, tooLarge()
	case err != nil:
		release()
		return nil, func() {}, followup.Errorf(followup.CodeInvalidJSON, "could not read the request body")
	}
	return body, release, nil
}

// budget is a count of bytes that requests take and give back.
type budget struct {
	mu   sync.Mutex
	left int64
}

func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.left {
		return false
	}
	b.left -= n
	return true
}

func (b *budget) give(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.left += n
}

func idempotencyKey(r *http.Request) (string, error) {
	values, ok := r.Header["Idempotency-Key"]
	if !ok {
		return "", nil
	}
	if len(values) != 1 {
		return "", followup.FieldErrorf(followup.CodeInvalidArgument, "Idempotency-Key", "give one Idempotency-Key header, not %d", len(values))
	}
	if err := followup.ValidateIdempotencyKey(values[0]); err != nil {
		return "", err
	}
	return values[0], nil
}

func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	if !h.work(w) {
		return
	}
	defer h.done()
	f, err := h.svc.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, notFoundID(err, r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func (h *Handler) cancel(w http.ResponseWriter, r *http.Request) {
	if !h.work(w) {
		return
	}
	defer h.done()
	f, err := h.svc.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, notFoundID(err, r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, f)
}

func notFoundID(err error, id string) error {
	if followup.ErrorCode(err) == followup.CodeNotFound {
		return followup.NotFound(id)
	}
	return err
}

type listResponse struct {
	Followups  []*followup.Followup `json:"followups"`
	NextCursor string               `json:"next_cursor,omitempty"`
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	if !h.work(w) {
		return
	}
	defer h.done()
	q, err := h.listQuery(r)
	if err != nil {
		writeError(w, err)
		return
	}
	page, more, err := h.svc.List(r.Context(), q)
	if err != nil {
		writeError(w, err)
		return
	}
	resp := listResponse{Followups: page}
	if resp.Followups == nil {
		resp.Followups = []*followup.Followup{}
	}
	if more && len(page) > 0 {
		resp.NextCursor = encodeCursor(h.cursorKey, q, followup.PositionOf(page[len(page)-1]))
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *Handler) listQuery(r *http.Request) (followup.ListQuery, error) {
	q := followup.ListQuery{ThreadID: r.PathValue("thread_id"), Limit: DefaultListLimit}
	if err := followup.ValidateThreadID(q.ThreadID); err != nil {
		return q, err
	}
	params, err := queryParams(r.URL.RawQuery)
	if err != nil {
		return q, err
	}
	if vs, ok := params["status"]; ok {
		q.Status = followup.Status(vs[0])
		if len(vs) != 1 || !q.Status.Valid() {
			return q, followup.FieldErrorf(followup.CodeInvalidArgument, "status",
				"status must be one of scheduled, dispatching, delivered, failed_dropped, cancelled; got %q", vs[0])
		}
	}
	if vs, ok := params["limit"]; ok {
		n, err := strconv.Atoi(vs[0])
		if len(vs) != 1 || err != nil || n < 1 || n > MaxListLimit {
			return q, followup.FieldErrorf(followup.CodeInvalidArgument, "limit", "limit must be an integer in 1..%d, got %q", MaxListLimit, vs[0])
		}
		q.Limit = n
	}
	if vs, ok := params["cursor"]; ok {
		if len(vs) != 1 {
			return q, followup.FieldErrorf(followup.CodeInvalidArgument, "cursor", "give one cursor")
		}
		pos, err := decodeCursor(h.cursorKey, q, vs[0])
		if err != nil {
			return q, err
		}
		q.After = &pos
	}
	return q, nil
}

// queryParams parses a query string, naming the parameter that is not
// well escaped instead of silently dropping it as url.Values does.
func queryParams(raw string) (url.Values, error) {
	params, err := url.ParseQuery(raw)
	if err == nil {
		return params, nil
	}
	for pair := range strings.SplitSeq(raw, "&") {
		key, value, _ := strings.Cut(pair, "=")
		if _, kerr := url.QueryUnescape(key); kerr != nil {
			return nil, followup.Errorf(followup.CodeInvalidArgument, "query string is not well escaped")
		}
		if _, verr := url.QueryUnescape(value); verr != nil {
			name, _ := url.QueryUnescape(key)
			return nil, followup.FieldErrorf(followup.CodeInvalidArgument, name, "query parameter %s is not well escaped", name)
		}
	}
	return nil, followup.Errorf(followup.CodeInvalidArgument, "query string is not well formed: %v", err)
}

type cancelThreadResponse struct {
	Cancelled int      `json:"cancelled"`
	IDs       []string `json:"ids"`
}

func (h *Handler) cancelThread(w http.ResponseWriter, r *http.Request) {
	if !h.work(w) {
		return
	}
	defer h.done()
	threadID := r.PathValue("thread_id")
	if err := followup.ValidateThreadID(threadID); err != nil {
		writeError(w, err)
		return
	}
	cancelled, err := h.svc.CancelThread(r.Context(), threadID)
	if err != nil {
		writeError(w, err)
		return
	}
	resp := cancelThreadResponse{Cancelled: len(cancelled), IDs: make([]string, 0, len(cancelled))}
	for _, f := range cancelled {
		resp.IDs = append(resp.IDs, f.ID)
	}
	writeJSON(w, http.StatusOK, resp)
}

// statusWriter remembers the status written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// discard is a ResponseWriter that keeps headers and drops the body.
type discard struct{ header http.Header }

func (d discard) Header() http.Header         { return d.header }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

var _ http.Handler = (*Handler)(nil)
