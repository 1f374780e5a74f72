package api

import (
	"bufio"
	"io"
	"net/http"

	"github.com/followups/followups/shared/followup"
)

// rearm serves POST /followups/{id}/rearm. Its body is optional: a request
// without one needs no Content-Type; one with a body is checked as a
// create's is (Content-Type, size), then the Idempotency-Key, then the body.
func (h *Handler) rearm(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if hasBody(r) {
		b, release, err := h.readJSONBody(w, r)
		if err != nil {
			writeError(w, err)
			return
		}
		defer release()
		body = b
	}
	h.creates(w, r, func(key string) (followup.Created, error) {
		req, err := followup.ParseRearm(body)
		if err != nil {
			return followup.Created{}, err
		}
		id := r.PathValue("id")
		created, err := h.svc.Rearm(r.Context(), id, req, key)
		return created, notFoundID(err, id)
	})
}

// writeCreated answers a create or a re-arm: 201 with the new followup and
// its Location, or 200 with the original when an Idempotency-Key replayed
// an earlier request.
func writeCreated(w http.ResponseWriter, created followup.Created) {
	if created.Replayed {
		writeJSON(w, http.StatusOK, created.Followup)
		return
	}
	w.Header().Set("Location", "/followups/"+created.Followup.ID)
	writeJSON(w, http.StatusCreated, created.Followup)
}

// hasBody reports whether r carries a body. One of unknown length (chunked)
// is peeked at: if it ends at once, there is none.
func hasBody(r *http.Request) bool {
	switch {
	case r.ContentLength > 0:
		return true
	case r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody:
		return false
	}
	peek := bufio.NewReader(r.Body)
	_, err := peek.Peek(1)
	r.Body = struct {
		io.Reader
		io.Closer
	}{peek, r.Body}
	return err == nil
}
