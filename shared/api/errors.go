package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/followups/followups/shared/followup"
)

// statusOf is the one table from error code to HTTP status.
var statusOf = map[followup.Code]int{
	followup.CodeInvalidJSON:          http.StatusBadRequest,
	followup.CodeInvalidArgument:      http.StatusBadRequest,
	followup.CodeOutOfRange:           http.StatusBadRequest,
	followup.CodeUnauthorized:         http.StatusUnauthorized,
	followup.CodeNotFound:             http.StatusNotFound,
	followup.CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	followup.CodeConflict:             http.StatusConflict,
	followup.CodeIdempotencyConflict:  http.StatusConflict,
	followup.CodePayloadTooLarge:      http.StatusRequestEntityTooLarge,
	followup.CodeUnsupportedMediaType: http.StatusUnsupportedMediaType,
	followup.CodeInternal:             http.StatusInternalServerError,
	followup.CodeUnavailable:          http.StatusServiceUnavailable,
}

// retryAfterSeconds is the Retry-After of a 503.
const retryAfterSeconds = "5"

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    followup.Code `json:"code"`
	Message string        `json:"message"`
	Field   string        `json:"field,omitempty"`
}

// writeError writes err as the API's error object, {"error":{"code","message","field"}}.
func writeError(w http.ResponseWriter, err error) {
	status, body := errorResponse(err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfterSeconds)
	}
	writeJSON(w, status, body)
}

// errorResponse is the status and the error object of err. An error
// without a code is internal, and its text is never shown.
func errorResponse(err error) (int, errorBody) {
	var e *followup.Error
	if !errors.As(err, &e) {
		e = &followup.Error{Code: followup.CodeInternal}
	}
	if e.Code == followup.CodeInternal {
		e = &followup.Error{Code: followup.CodeInternal, Message: "internal error"}
	}
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	return status, errorBody{Error: errorDetail{Code: e.Code, Message: e.Message, Field: e.Field}}
}

// jsonAppender is a value that writes its own JSON without reflection
// (a followup: the answer of most requests).
type jsonAppender interface{ AppendJSON([]byte) []byte }

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b []byte
	if a, ok := v.(jsonAppender); ok {
		b = a.AppendJSON(make([]byte, 0, 1024))
	} else {
		var err error
		if b, err = json.Marshal(v); err != nil {
			status = http.StatusInternalServerError
			b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
