package harness

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Transport carries HTTP requests through API Gateway to the schedule
// function, as Do sends them, checking each response against openapi.json:
// for clients that speak HTTP themselves, such as the MCP SDK's. It fails
// the test with Errorf only, so any goroutine may use it.
func (e *Env) Transport() http.RoundTripper { return gateway{e} }

type gateway struct{ e *Env }

func (g gateway) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	headers := map[string]string{}
	for k, vs := range r.Header {
		headers[k] = strings.Join(vs, ",")
	}
	resp, err := g.e.API.Do(r.Context(), r.Method, r.URL.RequestURI(), string(body), headers)
	if err != nil {
		return nil, err
	}
	g.e.checkContract(r.Method, r.URL.RequestURI(), headers, resp)
	res := &http.Response{
		Status: fmt.Sprintf("%d %s", resp.Status, http.StatusText(resp.Status)), StatusCode: resp.Status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(resp.Body)), ContentLength: int64(len(resp.Body)), Request: r,
	}
	for k, v := range resp.Header {
		res.Header.Set(k, v)
	}
	return res, nil
}
