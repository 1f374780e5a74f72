package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/followups/followups/shared/api/apitest"
)

// contract checks every response a followupd of these tests gives against
// the OpenAPI document: TestMain puts it under http.DefaultClient, which
// every request of the tests goes through, and startDaemon names the hosts
// it checks.
type contract struct {
	next  http.RoundTripper
	mu    sync.Mutex
	hosts map[string]bool
}

var checked = &contract{next: http.DefaultTransport, hosts: map[string]bool{}}

// watch checks the responses of the followupd at host from now on.
func (c *contract) watch(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hosts[host] = true
}

func (c *contract) watching(host string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hosts[host]
}

// RoundTrip answers a response that does not match the document as an
// error, which fails the request and so the test that made it.
func (c *contract) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := c.next.RoundTrip(req)
	if err != nil || !c.watching(req.URL.Host) {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	doc, err := apitest.Load()
	if err != nil {
		return nil, err
	}
	if err := doc.Check(req, res.StatusCode, res.Header, body); err != nil {
		return nil, fmt.Errorf("the response does not match openapi.json: %w", err)
	}
	return res, nil
}
