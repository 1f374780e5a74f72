package harness

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/followups/followups/shared/dispatch"
)

// ThreadRequest is one request the thread API received.
type ThreadRequest struct {
	RequestURI string
	Header     http.Header
	Body       []byte
	// ThreadID is the thread of the path, unescaped.
	ThreadID   string
	FollowupID string
	Attempt    int
	// Message is the body decoded.
	Message dispatch.Message
	// SignatureErr is the result of verifying X-Followup-Signature.
	SignatureErr error
	At           time.Time
}

// ThreadAnswer is how the thread API answers one request.
type ThreadAnswer struct {
	Status int
	Header http.Header
	Body   string
	// Hang holds the request open until the client gives up.
	Hang bool
}

// ThreadAPI is an httptest thread service: it records every request,
// checks its signature, and answers as a test says.
type ThreadAPI struct {
	*httptest.Server
	Secret []byte
	Token  string

	answer  func(ThreadRequest) ThreadAnswer
	mu      sync.Mutex
	got     []ThreadRequest
	closing chan struct{}
	once    sync.Once
}

// NewThreadAPI starts a thread API that answers with answer (201 when nil).
func NewThreadAPI(answer func(ThreadRequest) ThreadAnswer) *ThreadAPI {
	if answer == nil {
		answer = func(ThreadRequest) ThreadAnswer { return ThreadAnswer{Status: 201, Body: `{"ok":true}`} }
	}
	a := &ThreadAPI{Secret: []byte("e2e-signing-secret"), Token: "e2e-thread-token", answer: answer, closing: make(chan struct{})}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	return a
}

func (a *ThreadAPI) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := ThreadRequest{
		RequestURI: r.RequestURI, Header: r.Header.Clone(), Body: body, At: time.Now(),
		FollowupID: r.Header.Get(dispatch.FollowupIDHeader),
	}
	req.Attempt, _ = strconv.Atoi(r.Header.Get(dispatch.AttemptHeader))
	req.SignatureErr = dispatch.Verify(a.Secret, r.Header.Get(dispatch.SignatureHeader), body, time.Now(), 0)
	_ = json.Unmarshal(body, &req.Message)
	p := strings.TrimSuffix(strings.TrimPrefix(r.URL.EscapedPath(), "/threads/"), "/messages")
	req.ThreadID, _ = url.PathUnescape(p)
	a.mu.Lock()
	a.got = append(a.got, req)
	a.mu.Unlock()
	ans := a.answer(req)
	if ans.Hang {
		select {
		case <-r.Context().Done():
		case <-a.closing:
		}
		return
	}
	for k, vs := range ans.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ans.Status)
	_, _ = io.WriteString(w, ans.Body)
}

// Requests returns the requests for followup id (every request when id is
// empty), in arrival order.
func (a *ThreadAPI) Requests(id string) []ThreadRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []ThreadRequest
	for _, r := range a.got {
		if id == "" || r.FollowupID == id {
			out = append(out, r)
		}
	}
	return out
}

// Close releases hanging requests and stops the server.
func (a *ThreadAPI) Close() {
	a.once.Do(func() { close(a.closing) })
	a.Server.Close()
}
