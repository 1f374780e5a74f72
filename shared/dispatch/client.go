package dispatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/followups/followups/shared/followup"
)

// DefaultTimeout bounds one attempt when Options.Timeout is zero (FOLLOWUPS_DISPATCH_TIMEOUT's default).
const DefaultTimeout = 10 * time.Second

// UserAgent identifies Followups to the thread API.
const UserAgent = "followups/1"

// maxDrain is how much of an answer's body is read and discarded after the
// excerpt, so the connection can carry the next request. A longer body costs
// a new connection rather than an unbounded read.
const maxDrain = 64 << 10

// Options configures a Client.
type Options struct {
	// BaseURL is THREAD_API_URL. Its path is kept as a prefix:
	// http://h/api posts to http://h/api/threads/{thread_id}/messages.
	// A query is kept too; a fragment is dropped.
	BaseURL *url.URL
	// Token, when set, is sent as "Authorization: Bearer {Token}".
	Token string
	// SigningSecret, when set, signs every request (X-Followup-Signature).
	SigningSecret []byte
	// Timeout bounds one attempt, the answer's body included. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// HTTPClient sends the requests; nil means one on a copy of
	// http.DefaultTransport that keeps up to IdleConns connections to the
	// thread API open between attempts. The Client works on a copy that
	// never follows redirects.
	HTTPClient *http.Client
	// IdleConns is how many idle connections to keep for reuse when
	// HTTPClient is nil; zero means DefaultIdleConns. Set it to the number
	// of concurrent attempts: http.DefaultTransport keeps only two per host,
	// so a burst of attempts would open a new connection for nearly each.
	IdleConns int
	// Clock stamps signatures and reads Retry-After dates; nil means
	// followup.SystemClock{}.
	Clock followup.Clock
}

// DefaultIdleConns is Options.IdleConns's default.
const DefaultIdleConns = 64

// Client dispatches followups to the thread API, one request per attempt.
// It is safe for concurrent use.
type Client struct {
	base        url.URL // scheme, host, user and query of every request
	basePath    string  // BaseURL's path without trailing slashes
	baseRawPath string  // the same, escaped as BaseURL spelled it
	token       string
	secret      []byte
	timeout     time.Duration
	http        *http.Client
	clock       followup.Clock
}

// New returns a Client for o, or an error naming the option that is unusable.
func New(o Options) (*Client, error) {
	u := o.BaseURL
	switch {
	case u == nil:
		return nil, errors.New("thread API URL is required")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("thread API URL %q: scheme must be http or https", u.Redacted())
	case u.Opaque != "" || u.Host == "":
		return nil, fmt.Errorf("thread API URL %q: no host", u.Redacted())
	case !validHeaderValue(o.Token):
		return nil, errors.New("thread API token: contains a control character")
	case o.Timeout < 0:
		return nil, fmt.Errorf("dispatch timeout %s: must not be negative", o.Timeout)
	}
	c := &Client{
		base:        *u,
		basePath:    strings.TrimRight(u.Path, "/"),
		baseRawPath: strings.TrimRight(u.EscapedPath(), "/"),
		token:       o.Token,
		secret:      append([]byte(nil), o.SigningSecret...),
		timeout:     o.Timeout,
		clock:       o.Clock,
	}
	c.base.Fragment, c.base.RawFragment = "", ""
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.clock == nil {
		c.clock = followup.SystemClock{}
	}
	hc := http.Client{}
	if o.HTTPClient != nil {
		hc = *o.HTTPClient
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = cmp.Or(o.IdleConns, DefaultIdleConns)
		t.MaxIdleConnsPerHost = t.MaxIdleConns
		hc.Transport = t
	}
	// A redirect is an endpoint that moved: an operator's fix, not ours to
	// follow (and following it would replay a signed POST elsewhere).
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.http = &hc
	return c, nil
}

// Dispatch makes attempt number attempt (from 1) to post f to its thread.
// It never returns an error: every way the attempt ends is an Attempt.
func (c *Client) Dispatch(ctx context.Context, f *followup.Followup, attempt int) followup.Attempt {
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, &timeoutError{after: c.timeout})
	defer cancel()
	req, err := c.newRequest(ctx, f, attempt)
	if err != nil {
		return classifyUnsendable(err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return classifyFailure(ctx, err)
	}
	body := readAnswer(resp.Body)
	return classifyAnswer(resp.StatusCode, resp.Header, body, c.clock.Now())
}

// readAnswer returns the start of an answer's body, enough for an excerpt of
// maxExcerpt bytes that ends on a whole character, then drains a bounded
// rest and closes the body so the connection can be reused.
func readAnswer(body io.ReadCloser) []byte {
	defer body.Close()
	b, _ := io.ReadAll(io.LimitReader(body, maxExcerpt+utf8.UTFMax))
	_, _ = io.Copy(io.Discard, io.LimitReader(body, maxDrain))
	return b
}

var _ followup.Dispatcher = (*Client)(nil)
