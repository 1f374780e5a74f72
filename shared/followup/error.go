package followup

import (
	"errors"
	"fmt"
)

// Code classifies an error the way a client sees it. The HTTP edge maps each
// code to one status (shared/api).
type Code string

// The API's error codes (the README's API section lists them).
const (
	CodeInvalidJSON          Code = "invalid_json"
	CodeInvalidArgument      Code = "invalid_argument"
	CodeOutOfRange           Code = "out_of_range"
	CodeUnauthorized         Code = "unauthorized"
	CodeNotFound             Code = "not_found"
	CodeMethodNotAllowed     Code = "method_not_allowed"
	CodeConflict             Code = "conflict"
	CodeIdempotencyConflict  Code = "idempotency_conflict"
	CodePayloadTooLarge      Code = "payload_too_large"
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	CodeInternal             Code = "internal"
	CodeUnavailable          Code = "unavailable"
)

// Error is an error a client may see: a code, a message safe to show, and the
// input field at fault when there is one.
type Error struct {
	Code    Code
	Message string
	Field   string
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an *Error about one input field.
func FieldErrorf(code Code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, or CodeInternal when err carries none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ConflictError is returned by Store.Apply when the stored followup does not
// satisfy the transition's conditions. Current is the followup as it stands,
// so the caller can decide what to do without another read.
type ConflictError struct {
	Current *Followup
	Reason  string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("followup %s is %s: %s", e.Current.ID, e.Current.Status, e.Reason)
}

// Is lets errors.Is(err, ErrConflict) match any *ConflictError.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// ErrConflict matches every *ConflictError with errors.Is.
var ErrConflict = errors.New("followup state conflict")

// IsConflict reports whether a store refused a transition because of the
// followup's state, or because it is gone: the write lost a race and the
// caller may look again, as opposed to the store failing.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) }

// ErrNotFound is returned (wrapped in an *Error with CodeNotFound) by stores
// for a followup that does not exist; match it with errors.Is.
var ErrNotFound = &Error{Code: CodeNotFound, Message: "followup not found"}

// ErrExists is returned by Store.Create when the id is already taken.
var ErrExists = errors.New("followup id already exists")
