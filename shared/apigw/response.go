package apigw

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// responseWriter collects what a handler writes; Lambda returns a response
// whole, so nothing is streamed.
type responseWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newResponseWriter() *responseWriter { return &responseWriter{header: http.Header{}} }

func (w *responseWriter) Header() http.Header { return w.header }

func (w *responseWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		return // informational: not part of the final response
	}
	if w.status == 0 {
		w.status = code
	}
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

// response is what API Gateway sends the client. Payload format 2.0 has no
// multi-value headers: repeated header values are joined with ", " (the
// HTTP list form), and Set-Cookie values go to cookies, one each. A body
// that is valid UTF-8 (JSON always is) is sent as text; any other body is
// base64-encoded. As net/http does, a missing Content-Type is sniffed and a
// HEAD response has no body.
func (w *responseWriter) response(method string) events.APIGatewayV2HTTPResponse {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	resp := events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{}}
	for k, vs := range w.header {
		if len(vs) == 0 {
			continue
		}
		if k == "Set-Cookie" {
			resp.Cookies = append(resp.Cookies, vs...)
			continue
		}
		resp.Headers[k] = strings.Join(vs, ", ")
	}
	b := w.body.Bytes()
	if _, ok := w.header["Content-Type"]; !ok && len(b) > 0 {
		resp.Headers["Content-Type"] = http.DetectContentType(b)
	}
	if method == http.MethodHead {
		return resp
	}
	if utf8.Valid(b) {
		resp.Body = string(b)
	} else {
		resp.Body = base64.StdEncoding.EncodeToString(b)
		resp.IsBase64Encoded = true
	}
	return resp
}
