package apigw_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"reflect"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/followups/followups/shared/apigw"
)

// event returns a minimal HTTP API event for method and rawPath.
func event(method, rawPath string) events.APIGatewayV2HTTPRequest {
	e := events.APIGatewayV2HTTPRequest{Version: "2.0", RouteKey: "$default", RawPath: rawPath, Headers: map[string]string{}}
	e.RequestContext.HTTP.Method = method
	e.RequestContext.HTTP.Path = rawPath
	e.RequestContext.HTTP.Protocol = "HTTP/1.1"
	e.RequestContext.HTTP.SourceIP = "203.0.113.10"
	e.RequestContext.RequestID = "Hq4mZgAbIAMEV-Q="
	e.RequestContext.DomainName = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
	return e
}

// threadMux routes like the API's thread listing, to read the path value.
func threadMux(got *string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /threads/{thread_id}/followups", func(w http.ResponseWriter, r *http.Request) {
		*got = r.PathValue("thread_id")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	})
	return mux
}

func TestPathValue(t *testing.T) {
	tests := []struct {
		name    string
		rawPath string
		rejoin  bool
		want    string // thread_id, or "" for no match
	}{
		{name: "plain", rawPath: "/threads/t-123/followups", want: "t-123"},
		{name: "encoded slash stays in its segment", rawPath: "/threads/team%2Fsupport/followups", want: "team/support"},
		{name: "encoded slash, lower-case hex", rawPath: "/threads/team%2fsupport/followups", want: "team/support"},
		{name: "encoded space and percent", rawPath: "/threads/a%20b%25c/followups", want: "a b%c"},
		{name: "encoded unicode", rawPath: "/threads/%CE%BB-%E4%B8%96/followups", want: "λ-世"},
		{name: "encoded question mark and hash", rawPath: "/threads/a%3Fb%23c/followups", want: "a?b#c"},
		{name: "decoded by the gateway: space", rawPath: "/threads/a b/followups", want: "a b"},
		{name: "decoded by the gateway: unicode", rawPath: "/threads/λ-世/followups", want: "λ-世"},
		{name: "decoded by the gateway: hash", rawPath: "/threads/a#b/followups", want: "a#b"},
		{name: "decoded by the gateway: literal percent", rawPath: "/threads/50%off/followups", want: "50%off"},
		{name: "decoded slash without Rejoin splits the segment", rawPath: "/threads/team/support/followups", want: ""},
		{name: "decoded slash with Rejoin", rawPath: "/threads/team/support/followups", rejoin: true, want: "team/support"},
		{name: "decoded slashes and a space with Rejoin", rawPath: "/threads//a/b c//followups", rejoin: true, want: "/a/b c/"},
		{name: "value that looks like the suffix, with Rejoin", rawPath: "/threads/x/followups/y/followups", rejoin: true, want: "x/followups/y"},
		{name: "encoded slash with Rejoin", rawPath: "/threads/team%2Fsupport/followups", rejoin: true, want: "team/support"},
		{name: "plain with Rejoin", rawPath: "/threads/t-1/followups", rejoin: true, want: "t-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			h := threadMux(&got)
			if tt.rejoin {
				h = apigw.Rejoin(h, "/threads/{thread_id}/followups")
			}
			if _, err := apigw.Handler(h)(context.Background(), event(http.MethodGet, tt.rawPath)); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("thread_id = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRejoinRejectsPatterns(t *testing.T) {
	for _, p := range []string{"/threads/followups", "/a/{x}/{y}", "/a/{x}b", "/a/{x...}"} {
		t.Run(p, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("Rejoin(%q) did not panic", p)
				}
			}()
			apigw.Rejoin(http.NotFoundHandler(), p)
		})
	}
}

func TestRequest(t *testing.T) {
	type want struct {
		method, path, escapedPath, rawQuery string
		query                               map[string][]string
		header                              map[string]string
		body                                string
		contentLength                       int64
		remoteAddr, host                    string
	}
	tests := []struct {
		name string
		edit func(e *events.APIGatewayV2HTTPRequest)
		want want
	}{
		{
			name: "query string kept escaped",
			edit: func(e *events.APIGatewayV2HTTPRequest) {
				e.RawPath = "/threads/t-1/followups"
				e.RawQueryString = "status=scheduled&limit=2&cursor=a%2Bb%3D&x=1&x=2"
			},
			want: want{
				method: "GET", path: "/threads/t-1/followups", escapedPath: "/threads/t-1/followups",
				rawQuery: "status=scheduled&limit=2&cursor=a%2Bb%3D&x=1&x=2",
				query:    map[string][]string{"status": {"scheduled"}, "limit": {"2"}, "cursor": {"a+b="}, "x": {"1", "2"}},
			},
		},
		{
			name: "headers, joined values, cookies, request id",
			edit: func(e *events.APIGatewayV2HTTPRequest) {
				e.Headers = map[string]string{
					"content-type": "application/json", "accept": "application/json,text/plain",
					"x-request-id": "client-chosen", "host": "api.example.com", "idempotency-key": "k-1",
				}
				e.Cookies = []string{"a=1", "b=2"}
			},
			want: want{
				method: "GET", path: "/", escapedPath: "/",
				header: map[string]string{
					"Content-Type": "application/json", "Accept": "application/json,text/plain",
					"X-Request-Id": "Hq4mZgAbIAMEV-Q=", "Cookie": "a=1; b=2", "Idempotency-Key": "k-1",
				},
				host: "api.example.com",
			},
		},
		{
			name: "text body",
			edit: func(e *events.APIGatewayV2HTTPRequest) {
				e.RequestContext.HTTP.Method = "POST"
				e.RawPath = "/followups"
				e.Body = `{"thread_id":"t-1"}`
			},
			want: want{method: "POST", path: "/followups", escapedPath: "/followups", body: `{"thread_id":"t-1"}`, contentLength: 19},
		},
		{
			name: "base64 body",
			edit: func(e *events.APIGatewayV2HTTPRequest) {
				e.RequestContext.HTTP.Method = "POST"
				e.RawPath = "/followups"
				e.Body = base64.StdEncoding.EncodeToString([]byte("{\"prompt\":\"caf\u00e9 \u2615\"}"))
				e.IsBase64Encoded = true
			},
			want: want{method: "POST", path: "/followups", escapedPath: "/followups", body: "{\"prompt\":\"caf\u00e9 \u2615\"}", contentLength: 22},
		},
		{
			name: "method, source address and host from the request context",
			edit: func(e *events.APIGatewayV2HTTPRequest) {
				e.RequestContext.HTTP.Method = "DELETE"
				e.RawPath = "/followups/fu_1"
			},
			want: want{
				method: "DELETE", path: "/followups/fu_1", escapedPath: "/followups/fu_1",
				remoteAddr: "203.0.113.10", host: "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com",
			},
		},
		{
			name: "empty rawPath falls back to the context path",
			edit: func(e *events.APIGatewayV2HTTPRequest) {
				e.RawPath = ""
				e.RequestContext.HTTP.Path = "/followups/fu_2"
			},
			want: want{method: "GET", path: "/followups/fu_2", escapedPath: "/followups/fu_2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := event(http.MethodGet, "/")
			tt.edit(&e)
			ctx := context.WithValue(context.Background(), ctxKey{}, "kept")
			r := apigw.Request(ctx, e)
			if r.Context().Value(ctxKey{}) != "kept" {
				t.Error("request context is not the invocation's")
			}
			if r.Method != tt.want.method {
				t.Errorf("method = %q, want %q", r.Method, tt.want.method)
			}
			if r.URL.Path != tt.want.path || r.URL.EscapedPath() != tt.want.escapedPath {
				t.Errorf("path = %q (escaped %q), want %q (%q)", r.URL.Path, r.URL.EscapedPath(), tt.want.path, tt.want.escapedPath)
			}
			if r.URL.RawQuery != tt.want.rawQuery {
				t.Errorf("raw query = %q, want %q", r.URL.RawQuery, tt.want.rawQuery)
			}
			if tt.want.query != nil && !reflect.DeepEqual(map[string][]string(r.URL.Query()), tt.want.query) {
				t.Errorf("query = %v, want %v", r.URL.Query(), tt.want.query)
			}
			for k, v := range tt.want.header {
				if got := r.Header.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("header %s = %q, want [%q]", k, got, v)
				}
			}
			b, err := io.ReadAll(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want.body || r.ContentLength != tt.want.contentLength {
				t.Errorf("body = %q (length %d), want %q (%d)", b, r.ContentLength, tt.want.body, tt.want.contentLength)
			}
			if tt.want.remoteAddr != "" && r.RemoteAddr != tt.want.remoteAddr {
				t.Errorf("remote address = %q, want %q", r.RemoteAddr, tt.want.remoteAddr)
			}
			if tt.want.host != "" && r.Host != tt.want.host {
				t.Errorf("host = %q, want %q", r.Host, tt.want.host)
			}
			if r.RequestURI != r.URL.RequestURI() || r.ProtoMajor != 1 || r.ProtoMinor != 1 {
				t.Errorf("request URI %q, proto %d.%d", r.RequestURI, r.ProtoMajor, r.ProtoMinor)
			}
		})
	}
}

type ctxKey struct{}

func TestRequestBadBase64Body(t *testing.T) {
	e := event(http.MethodPost, "/followups")
	e.Body, e.IsBase64Encoded = "not base64!", true
	r := apigw.Request(context.Background(), e)
	if _, err := io.ReadAll(r.Body); err == nil {
		t.Fatal("reading a body that is not base64 succeeded")
	}
}

func TestResponse(t *testing.T) {
	tests := []struct {
		name   string
		method string
		serve  http.HandlerFunc
		want   events.APIGatewayV2HTTPResponse
	}{
		{
			name: "status, headers and JSON body",
			serve: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Location", "/followups/fu_1")
				w.Header().Add("Vary", "Accept")
				w.Header().Add("Vary", "Authorization")
				w.WriteHeader(http.StatusCreated)
				io.WriteString(w, `{"id":"fu_1","prompt":"café"}`+"\n")
			},
			want: events.APIGatewayV2HTTPResponse{
				StatusCode: 201,
				Headers:    map[string]string{"Content-Type": "application/json", "Location": "/followups/fu_1", "Vary": "Accept, Authorization"},
				Body:       `{"id":"fu_1","prompt":"café"}` + "\n",
			},
		},
		{
			name: "implicit 200, sniffed content type",
			serve: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "ok")
			},
			want: events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "text/plain; charset=utf-8"}, Body: "ok"},
		},
		{
			name:  "nothing written",
			serve: func(w http.ResponseWriter, r *http.Request) {},
			want:  events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{}},
		},
		{
			name: "informational status ignored, first final status kept",
			serve: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusEarlyHints)
				w.WriteHeader(http.StatusServiceUnavailable)
				w.WriteHeader(http.StatusOK)
			},
			want: events.APIGatewayV2HTTPResponse{StatusCode: 503, Headers: map[string]string{}},
		},
		{
			name: "cookies",
			serve: func(w http.ResponseWriter, r *http.Request) {
				http.SetCookie(w, &http.Cookie{Name: "a", Value: "1"})
				http.SetCookie(w, &http.Cookie{Name: "b", Value: "2"})
			},
			want: events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{}, Cookies: []string{"a=1", "b=2"}},
		},
		{
			name: "binary body",
			serve: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.Write([]byte{0xff, 0x00, 0xfe})
			},
			want: events.APIGatewayV2HTTPResponse{
				StatusCode: 200, Headers: map[string]string{"Content-Type": "application/octet-stream"},
				Body: "/wD+", IsBase64Encoded: true,
			},
		},
		{
			name:   "HEAD has no body",
			method: http.MethodHead,
			serve: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{}`)
			},
			want: events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/json"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			got, err := apigw.Handler(tt.serve)(context.Background(), event(method, "/"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("response =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}
