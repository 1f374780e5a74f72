package dispatch

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/followups/followups/shared/followup"
)

// maxExcerpt is how much of the thread's answer an Attempt.Error keeps.
const maxExcerpt = 256

// classifyAnswer turns the thread API's answer into an Attempt: 2xx
// delivered; 404 and 410 thread_not_found; 409 thread_inactive; any other
// 4xx but 408, 425 and 429 rejected; everything else, 1xx and 3xx
// included, retryable, with the answer's Retry-After.
func classifyAnswer(status int, header http.Header, body []byte, now time.Time) followup.Attempt {
	a := followup.Attempt{HTTPStatus: status}
	switch {
	case status >= 200 && status <= 299:
		a.Outcome = followup.OutcomeSuccess
		return a
	case status == http.StatusNotFound || status == http.StatusGone:
		a.Outcome, a.DropReason = followup.OutcomeDrop, followup.DropThreadNotFound
	case status == http.StatusConflict:
		a.Outcome, a.DropReason = followup.OutcomeDrop, followup.DropThreadInactive
	case status == http.StatusRequestTimeout || status == http.StatusTooEarly || status == http.StatusTooManyRequests:
		a.Outcome = followup.OutcomeRetryableError
	case status >= 400 && status <= 499:
		a.Outcome, a.DropReason = followup.OutcomeDrop, followup.DropRejected
	default:
		a.Outcome = followup.OutcomeRetryableError
	}
	if a.Outcome == followup.OutcomeRetryableError {
		a.RetryAfter = parseRetryAfter(header.Get("Retry-After"), now)
	}
	a.Error = answerError(status, header, body)
	return a
}

// answerError names an answer: "thread API answered 503 Service
// Unavailable: {start of the body}".
func answerError(status int, header http.Header, body []byte) string {
	var b strings.Builder
	b.WriteString("thread API answered ")
	b.WriteString(strconv.Itoa(status))
	if text := http.StatusText(status); text != "" {
		b.WriteString(" " + text)
	}
	if status >= 300 && status <= 399 {
		b.WriteString(" (redirects are not followed")
		if loc := excerpt([]byte(header.Get("Location"))); loc != "" {
			b.WriteString("; Location: " + loc)
		}
		b.WriteString(")")
	}
	if e := excerpt(body); e != "" {
		b.WriteString(": " + e)
	}
	return b.String()
}

// excerpt is at most maxExcerpt bytes of b as valid UTF-8, cut on a whole
// character and trimmed; bytes that are not UTF-8 read as U+FFFD.
func excerpt(b []byte) string {
	var s strings.Builder
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if s.Len()+utf8.RuneLen(r) > maxExcerpt {
			break
		}
		s.WriteRune(r)
		b = b[size:]
	}
	return strings.TrimSpace(s.String())
}

// parseRetryAfter reads a Retry-After value, delta-seconds or an HTTP date
// (relative to now), as a wait: 0 when absent, unreadable or past, and at
// most followup.MaxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if isDigits(v) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n > int64(followup.MaxRetryAfter/time.Second) {
			return followup.MaxRetryAfter // only digits: err is an overflow
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	// Round up: the date is the earliest moment the thread wants us back.
	d := t.Sub(now)
	if rem := d % time.Second; rem > 0 {
		d += time.Second - rem
	}
	return min(max(d, 0), followup.MaxRetryAfter)
}

// classifyFailure turns a request that got no answer into a retryable
// Attempt. ctx is the attempt's context: when it ended, its cause (our
// timeout, or the caller's cancellation or deadline) is what went wrong.
func classifyFailure(ctx context.Context, err error) followup.Attempt {
	if ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return followup.Attempt{
		Outcome: followup.OutcomeRetryableError,
		Error:   "thread API request failed: " + describeFailure(err),
	}
}

// classifyUnsendable drops a followup that no request can carry: retrying
// cannot change it.
func classifyUnsendable(err error) followup.Attempt {
	return followup.Attempt{
		Outcome:    followup.OutcomeDrop,
		DropReason: followup.DropInvalidMessage,
		Error:      "cannot send to the thread API: " + err.Error(),
	}
}

// timeoutError ends an attempt that outlived Options.Timeout. It is the
// cause of the attempt's context, which tells our timeout apart from the
// caller's deadline.
type timeoutError struct{ after time.Duration }

func (e *timeoutError) Error() string { return "timeout after " + e.after.String() }
func (e *timeoutError) Timeout() bool { return true }

// describeFailure names a transport error by what it does, not by its text.
func describeFailure(err error) string {
	// The URL of a *url.Error only repeats the request; the cause is inside.
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	var (
		ours    *timeoutError
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		timeout interface{ Timeout() bool }
	)
	switch {
	case errors.As(err, &ours):
		return ours.Error()
	case errors.Is(err, context.Canceled):
		return "canceled before the thread API answered"
	case errors.Is(err, context.DeadlineExceeded):
		return "the caller's deadline passed before the thread API answered"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused" + where(err)
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by peer" + where(err)
	case errors.As(err, &dnsErr):
		return "cannot resolve host " + dnsErr.Name + ": " + dnsErr.Err
	case errors.As(err, &certErr):
		return "TLS certificate rejected: " + certErr.Err.Error()
	case errors.As(err, &timeout) && timeout.Timeout():
		return "timeout: " + err.Error()
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before the thread API answered"
	}
	return err.Error()
}

// where is " ({op} {address})" of a network error, when it has one.
func where(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil {
		return " (" + op.Op + " " + op.Addr.String() + ")"
	}
	return ""
}
