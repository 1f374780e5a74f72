package apigw

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// RequestIDHeader carries API Gateway's request id (requestContext.requestId)
// to the handler, which logs it with each request, so a log line can be
// found from the gateway's access log and the other way round. A value the
// client sent is replaced.
const RequestIDHeader = "X-Request-Id"

// Handler returns a Lambda handler for API Gateway HTTP API events (payload
// format 2.0) that serves each with h. It never returns an error: whatever
// h writes, a panic excepted, is the response.
func Handler(h http.Handler) func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return func(ctx context.Context, e events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		r := Request(ctx, e)
		w := newResponseWriter()
		h.ServeHTTP(w, r)
		return w.response(r.Method), nil
	}
}

// Request returns the *http.Request an HTTP API event stands for, with ctx
// as its context: method from requestContext.http.method, path from
// rawPath (see the package documentation), rawQueryString as is, headers
// (whose repeated values API Gateway has already joined with commas; the
// Host header becomes r.Host), the cookies as one Cookie header, the body
// (base64-decoded when isBase64Encoded), X-Request-Id from
// requestContext.requestId, and RemoteAddr from
// requestContext.http.sourceIp (an address without a port).
func Request(ctx context.Context, e events.APIGatewayV2HTTPRequest) *http.Request {
	method := e.RequestContext.HTTP.Method
	if method == "" {
		method = http.MethodGet
	}
	u := requestURL(e)
	header := make(http.Header, len(e.Headers)+2)
	for k, v := range e.Headers {
		header[http.CanonicalHeaderKey(k)] = []string{v}
	}
	if len(e.Cookies) > 0 {
		header.Set("Cookie", strings.Join(e.Cookies, "; "))
	}
	if id := e.RequestContext.RequestID; id != "" {
		header.Set(RequestIDHeader, id)
	}
	proto := e.RequestContext.HTTP.Protocol
	major, minor, ok := http.ParseHTTPVersion(proto)
	if !ok {
		proto, major, minor = "HTTP/1.1", 1, 1
	}
	// As net/http's server does, the Host header becomes r.Host.
	host := header.Get("Host")
	header.Del("Host")
	if host == "" {
		host = e.RequestContext.DomainName
	}
	r := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      proto,
		ProtoMajor: major,
		ProtoMinor: minor,
		Header:     header,
		Host:       host,
		RemoteAddr: e.RequestContext.HTTP.SourceIP,
		RequestURI: u.RequestURI(),
	}
	r.Body, r.ContentLength = body(e)
	return r.WithContext(ctx)
}

// requestURL reads rawPath as an escaped path when it unescapes cleanly,
// and as a decoded one otherwise (see the package documentation).
func requestURL(e events.APIGatewayV2HTTPRequest) *url.URL {
	raw := e.RawPath
	if raw == "" {
		raw = e.RequestContext.HTTP.Path
	}
	if !strings.HasPrefix(raw, "/") {
		raw = "/" + raw
	}
	u := &url.URL{RawQuery: e.RawQueryString}
	if p, err := url.PathUnescape(raw); err == nil {
		// url.URL keeps RawPath only while it is a valid encoding of Path;
		// otherwise EscapedPath escapes Path afresh, which is as right.
		u.Path, u.RawPath = p, raw
	} else {
		u.Path = raw
	}
	return u
}

// body returns the request body and its length. A body that claims to be
// base64 but is not reads as an error, which the handler answers as it
// answers any unreadable body (a 400, not a failed invocation).
func body(e events.APIGatewayV2HTTPRequest) (io.ReadCloser, int64) {
	if e.Body == "" {
		return http.NoBody, 0
	}
	if !e.IsBase64Encoded {
		return io.NopCloser(strings.NewReader(e.Body)), int64(len(e.Body))
	}
	b, err := base64.StdEncoding.DecodeString(e.Body)
	if err != nil {
		return io.NopCloser(errReader{fmt.Errorf("decode base64 request body: %w", err)}), -1
	}
	return io.NopCloser(bytes.NewReader(b)), int64(len(b))
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
